"""The worker side of every run, whatever its kind: claim it, keep a heartbeat while it runs, report
progress (which stops the work when someone cancelled it), and record the outcome with the retry
policy of ``webapp.runs.services``.

Each Celery task is one call of :func:`execute` with the work of its kind. The work raises
:class:`ml.progress.Cancelled`, the one cancellation exception, when its progress callback learns that
the run was cancelled or taken over.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection

from ml.progress import Cancelled
from webapp.runs import dispatch
from webapp.runs import services as runs
from webapp.runs.models import Run

logger = logging.getLogger(__name__)

# Failures worth another attempt: the database, the storage or the network briefly unreachable.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, ConnectionError, TimeoutError)
# Exceptions whose message is written for the user: bad input (ValueError and its kin: no face, an
# unreadable image, bad labels), missing weights, and the errors Facet's own modules define.
READABLE_ERRORS = (ValueError, FileNotFoundError)
FACET_MODULES = ("ml.", "webapp.", "workers.")


def expected_failure(error: BaseException) -> bool:
    """Whether the run failed on its input (no face, an unreadable image, bad labels), an outcome of bad
    input rather than a crash: the ValueErrors that Facet's own modules define for it. A bare ValueError
    may come from a library's bug, so it counts as a crash."""
    return isinstance(error, ValueError) and type(error).__module__.startswith(FACET_MODULES)


def failure_message(error: BaseException) -> str:
    """What a clinician reads about a failed run: the error's own sentence when it was written for them,
    else a plain statement that points to the worker log. Never an exception class name."""
    message = str(error).strip()
    if isinstance(error, TRANSIENT_ERRORS):
        detail = message.splitlines()[0] if message else "no details"
        return f"The worker lost contact with the database, the photo storage or the network ({detail})."
    readable = isinstance(error, READABLE_ERRORS) or type(error).__module__.startswith(FACET_MODULES)
    if readable and message:
        return message
    return (
        "The job stopped because of an unexpected error in the worker (the details are in the worker's "
        "log). Retry it; if it fails again, report it to the site administrators."
    )


@dataclass
class RunContext:
    """The claimed run and its attempt, as the work of a task sees them."""

    model: type[Run]
    run: Run
    attempt: int
    _lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, message: str) -> None:
        """Store progress; raise :class:`Cancelled` when the run is no longer this attempt's."""
        if self._lost.is_set() or not runs.run_progress(
            self.model, run_id=self.run.pk, attempt=self.attempt, fraction=fraction, message=message
        ):
            raise Cancelled(f"{self.run.run_label} {self.run.pk} was cancelled or handed to another worker.")

    def cancelled(self) -> bool:
        """Whether the run was cancelled or taken over (a cancel hook for long ml loops)."""
        if not self._lost.is_set() and not runs.run_heartbeat(
            self.model, run_id=self.run.pk, attempt=self.attempt
        ):
            self._lost.set()
        return self._lost.is_set()


class _Heartbeat(threading.Thread):
    """Writes the run's heartbeat every FACET_RUN_HEARTBEAT_SECONDS while the work runs, so that the
    sweeper can tell a slow run from one whose worker died."""

    def __init__(self, context: RunContext) -> None:
        super().__init__(name=f"heartbeat-{context.model.run_kind}-{context.run.pk}", daemon=True)
        self.context = context
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.FACET_RUN_HEARTBEAT_SECONDS):
                try:
                    if not self.context.cancelled():
                        continue
                except Exception:  # a database hiccup: the next beat tries again
                    logger.warning("Could not write the heartbeat of %s", self.name, exc_info=True)
                    continue
                return
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def execute(model: type[Run], run_id: int, worker: str, work: Callable[[RunContext], None]) -> None:
    """Claim run ``run_id`` of ``model`` on ``worker`` and do ``work(context)``, which records the
    success itself (with ``context.attempt``). A cancel stops quietly, a transient failure is retried
    by the policy, any other failure is recorded with a message a clinician can read."""
    claim = runs.run_claim(model, run_id=run_id, worker=worker)
    if not claim.should_run:
        logger.info("Not running %s %s: %s", model.__name__, run_id, claim.reason)
        return
    context = RunContext(model, claim.run, claim.attempt)
    heartbeat = _Heartbeat(context)
    heartbeat.start()
    try:
        work(context)
    except Cancelled:
        logger.info("%s %s stopped: it was cancelled or handed to another worker", model.__name__, run_id)
    except SoftTimeLimitExceeded:
        runs.run_fail(
            model,
            run_id=run_id,
            attempt=claim.attempt,
            error="The job took longer than its time limit and was stopped.",
        )
    except TRANSIENT_ERRORS as error:
        logger.warning("%s %s hit a transient error: %s", model.__name__, run_id, error)
        delay = runs.run_fail(
            model, run_id=run_id, attempt=claim.attempt, error=failure_message(error), transient=True
        )
        if delay is not None:
            dispatch.send_run(claim.run, countdown=delay)
    except Exception as error:
        if expected_failure(error):
            # Recorded on the run for the user; a traceback would only bury the real crashes in the log.
            logger.warning("%s %s failed on its input: %s", model.__name__, run_id, error)
        else:
            logger.exception("%s %s failed", model.__name__, run_id)
        runs.run_fail(model, run_id=run_id, attempt=claim.attempt, error=failure_message(error))
    finally:
        heartbeat.stop()
