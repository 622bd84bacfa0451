"""The Celery application. Configuration comes from Django settings (CELERY_* names)."""

import logging
import os

from celery import bootsteps
from celery.signals import worker_process_init
from django.utils import timezone

from webapp.celery import celery_app

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

logger = logging.getLogger(__name__)

app = celery_app("facet")
# Task modules of the workers package: analysis jobs, model training, landmark campaigns, rating fits.
for task_module in ("tasks", "training", "campaigns", "ratings", "exports"):
    app.autodiscover_tasks(["workers"], related_name=task_module, force=True)


class WorkerHeartbeatStep(bootsteps.StartStopStep):
    """Writes this worker's heartbeat to the database, which the admins' queue page reads."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None
        self.started_at = timezone.now()

    def start(self, worker) -> None:
        from django.conf import settings

        self.beat(worker)
        self.timer_ref = worker.timer.call_repeatedly(
            settings.FACET_WORKER_HEARTBEAT_SECONDS, self.beat, (worker,), priority=10
        )

    def stop(self, worker) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()

    def beat(self, worker) -> None:
        from django.db import close_old_connections

        from webapp.runs.services import worker_heartbeat

        try:
            close_old_connections()
            worker_heartbeat(
                hostname=worker.hostname,
                queues=sorted(queue.name for queue in worker.app.amqp.queues.consume_from.values()),
                pid=os.getpid(),
                started_at=self.started_at,
                concurrency=worker.concurrency or 1,
            )
        except Exception:  # a database hiccup must not take the worker down
            logger.exception("Could not write the worker heartbeat")


class RunSweeperStep(bootsteps.StartStopStep):
    """Runs the sweeper (``webapp.runs.sweeper``) every FACET_SWEEP_SECONDS in each worker: runs whose
    worker died are handed on, and queued runs the broker lost or never got are sent again. Every
    worker sweeps, so nothing else needs to be deployed; the sweeper's updates are conditional, so two
    workers sweeping at once do each repair once."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.timer_ref = None

    def start(self, worker) -> None:
        from django.conf import settings

        self.timer_ref = worker.timer.call_repeatedly(
            settings.FACET_SWEEP_SECONDS, self.sweep, (), priority=20
        )

    def stop(self, worker) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()

    def sweep(self) -> None:
        from django.db import close_old_connections

        from webapp.runs.sweeper import sweep

        try:
            close_old_connections()
            sweep()
        except Exception:  # a database or broker hiccup must not take the worker down
            logger.exception("The run sweeper failed; it tries again at its next turn")


app.steps["worker"].add(WorkerHeartbeatStep)
app.steps["worker"].add(RunSweeperStep)


@worker_process_init.connect
def warm_up_models(**kwargs) -> None:
    """One torch thread per pool process, then load the configured models, so the first job does not
    pay for it. Several pool processes each running torch's default (one thread per core) contend for
    the same cores and slow every job several-fold (issue 13: 50-58 s instead of 5.6 s per photo)."""
    from django.conf import settings

    from ml.config import apply_torch_threads
    from ml.registry import registry

    apply_torch_threads(default=1)

    for name in settings.FACET_WARM_MODELS:
        try:
            registry.load(name)
        except Exception:  # the job that needs the model will report the error to its user
            logger.exception("Could not warm up model %s", name)
