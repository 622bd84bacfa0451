"""Sending work to the workers: Celery tasks sent by name, after the transaction commits.

The web process never imports ``workers``; it publishes through a small producer app of its own
(:func:`webapp.celery.celery_app`). Sending never raises into the request and never waits long:
with the broker down a send fails at once (no publish retry, short socket timeouts), is logged,
and the run stays queued in the database, where the sweeper (``webapp.runs.sweeper``) finds it
and sends it again once the broker is back. A photo and its jobs therefore never depend on the
broker being up.
"""

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import Any

from celery import Celery
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver

from webapp.celery import celery_app

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


def send_task_on_commit(name: str, *, args: Sequence[Any], queue: str) -> None:
    """Publish task ``name`` once the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send_task(name, args=args, queue=queue), robust=True)
