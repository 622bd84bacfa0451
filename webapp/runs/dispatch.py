"""Sending work to the workers: Celery tasks sent by name, after the transaction commits.

The web process never imports ``workers``; it publishes through a small producer app of its own
(:func:`webapp.celery.celery_app`). Sending never raises into the request and never waits long:
with the broker down a send fails at once (no publish retry, short socket timeouts), is logged,
and the run stays queued in the database, where the sweeper (``webapp.runs.sweeper``) finds it
and sends it again once the broker is back. A photo and its jobs therefore never depend on the
broker being up.
"""

import json
import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from webapp.celery import celery_app
from webapp.runs.models import Run, RunStatus

logger = logging.getLogger(__name__)

# A broker that does not answer must not hold a web request for long.
BROKER_SOCKET_TIMEOUT_SECONDS = 3.0

_producer: Celery | None = None
_producer_lock = threading.Lock()


def producer() -> Celery:
    """The web process's Celery app, used only to publish; built on first use."""
    global _producer
    with _producer_lock:
        if _producer is None:
            app = celery_app("facet-web")
            if str(app.conf.broker_url or "").startswith(("redis://", "rediss://")):
                app.conf.broker_transport_options = {
                    **(app.conf.broker_transport_options or {}),
                    "socket_connect_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
                    "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
                }
            _producer = app
        return _producer


@receiver(setting_changed)
def _forget_producer(*, setting: str, **kwargs: Any) -> None:
    # Tests point the broker elsewhere with `settings.CELERY_BROKER_URL = ...`.
    global _producer
    if setting.startswith("CELERY_"):
        with _producer_lock:
            _producer = None


def send_task(
    name: str, *, args: Sequence[Any], queue: str, task_id: str | None = None, countdown: float | None = None
) -> str | None:
    """Publish task ``name`` now; the task id when the broker took it, ``None`` when it could not.

    Never raises: a broker outage is logged and the caller's run stays queued for the sweeper.
    """
    task_id = task_id or uuid.uuid4().hex
    try:
        producer().send_task(
            name, args=list(args), queue=queue, task_id=task_id, countdown=countdown, retry=False
        )
    except Exception as error:  # any broker or network error: the run waits for the sweeper
        logger.warning("Could not send %s%s to the %s queue: %s", name, tuple(args), queue, error)
        return None
    return task_id


def send_run(run: Run, countdown: float | None = None) -> bool:
    """Send ``run``'s task to its queue now; on success record when and the task id on the run (while
    it still waits). False when the broker could not take it: the sweeper sends it later."""
    task_id = send_task(run.task_name, args=[run.pk], queue=run.queue, countdown=countdown)
    if task_id is None:
        return False
    type(run).objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
        dispatched_at=timezone.now(), task_id=task_id
    )
    return True


def send_run_on_commit(run: Run) -> None:
    """Send ``run`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send_run(run), robust=True)


def broker_reachable() -> str | None:
    """None when the broker answers, else a short description of why it does not (for warnings)."""
    try:
        with producer().connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_SOCKET_TIMEOUT_SECONDS
            )
            if connection.transport.driver_type == "redis":
                connection.default_channel.client.ping()
    except Exception as error:  # any broker or network error means "cannot be reached"
        return str(error) or type(error).__name__
    return None


def queued_task_ids() -> set[str] | None:
    """Ids of the tasks the broker holds: waiting in the cpu and gpu queues, or delivered to a worker and
    not yet acknowledged. None where the broker cannot be inspected (not Redis) or cannot be reached."""
    from webapp.celery import QUEUE_NAMES

    try:
        with producer().connection_for_read() as connection:
            if connection.transport.driver_type != "redis":
                return None
            channel = connection.default_channel
            client = channel.client
            raw = [
                payload
                for queue in QUEUE_NAMES
                for priority in channel.priority_steps
                for payload in client.lrange(channel._q_for_pri(queue, priority), 0, -1)
            ]
            # An unacknowledged entry is [message, exchange, routing key].
            raw += [json.loads(entry)[0] for entry in client.hvals(channel.unacked_key)]
    except Exception as error:  # the broker is down: nothing can be compared now
        logger.warning("Could not inspect the broker's queues: %s", error)
        return None
    found = set()
    for payload in raw:
        message = json.loads(payload) if isinstance(payload, bytes | str) else payload
        task_id = (message.get("headers") or {}).get("id")
        if task_id:
            found.add(task_id)
    return found
