"""Reads over every kind of run: the queue page's list and counts, worker health, warnings about the
broker and stale runs, and access-checked lookups for the status, cancel and retry endpoints."""

import datetime
import heapq
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from webapp.runs.kinds import run_model, run_models
from webapp.runs.models import Run, RunStatus, WorkerHeartbeat
from webapp.studies.access import Capability, not_found, require

User = AbstractBaseUser | AnonymousUser

BROKER_CHECK_CACHE_SECONDS = 10.0


def get_run(user: User, run_kind: str, run_id: int, capability: Capability = Capability.VIEW) -> Run:
    """The run, if ``user`` has ``capability`` in its study: the one "No such job." 404 for a missing id
    and for outsiders, 403 for members without the capability (both audited)."""
    run = run_model(run_kind).objects.filter(pk=run_id).first()
    if run is None:
        raise not_found(user, "job", run_id)
    require(user, run.run_study(), capability, what="job", object_id=run_id)
    return run


def control_capability(run: Run) -> Capability:
    return Capability(run.control_capability)


def is_stale(run: Run, now: datetime.datetime | None = None) -> bool:
    """Running, but its worker has sent no heartbeat for longer than the stale limit."""
    if run.status != RunStatus.RUNNING:
        return False
    limit = datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS)
    return run.heartbeat_at is None or run.heartbeat_at < (now or timezone.now()) - limit


def is_unsent(run: Run) -> bool:
    """Queued, and no broker has taken its task yet (the broker was down when it was sent)."""
    return run.status == RunStatus.QUEUED and run.dispatched_at is None


def _filtered(model: type[Run], status: str, queue: str, study_id: int | None) -> QuerySet:
    runs = model.objects.all()
    if status:
        runs = runs.filter(status=status)
    if queue:
        runs = runs.filter(queue=queue)
    if study_id:
        runs = runs.filter(**{model.study_lookup: study_id})
    return runs.select_related(*model.list_related)


def runs_filtered(
    *,
    kind: str = "",
    status: str = "",
    queue: str = "",
    study_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Run], int]:
    """Runs of every kind (or of ``kind``), newest first, one page of them, and how many match."""
    models = [run_model(kind)] if kind else run_models()
    querysets = [_filtered(model, status, queue, study_id) for model in models]
    total = sum(queryset.count() for queryset in querysets)
    # Each kind's newest offset+limit rows suffice to find the page of the merged order.
    newest = [list(queryset.order_by("-created_at", "-pk")[: offset + limit]) for queryset in querysets]
    merged = heapq.merge(*newest, key=lambda run: run.created_at, reverse=True)
    return list(merged)[offset : offset + limit], total


def status_counts() -> dict[str, int]:
    counts = dict.fromkeys(RunStatus.values, 0)
    for model in run_models():
        for status, n in model.objects.values_list("status").annotate(n=Count("id")).order_by():
            counts[status] += n
    return counts


def runs_of_study_active(study_id: int) -> list[Run]:
    """The study's queued and running runs of every kind (for a study's warnings)."""
    found: list[Run] = []
    for model in run_models():
        found += list(
            model.objects.filter(
                **{model.study_lookup: study_id}, status__in=[RunStatus.QUEUED, RunStatus.RUNNING]
            )
        )
    return found


_broker_state: dict[str, object] = {"checked": 0.0, "problem": None}
_broker_lock = threading.Lock()


def broker_problem() -> str | None:
    """A sentence when the broker cannot be reached (checked at most every 10 s per process), else None."""
    from webapp.runs.dispatch import broker_reachable

    with _broker_lock:
        if time.monotonic() - float(_broker_state["checked"]) < BROKER_CHECK_CACHE_SECONDS:
            return _broker_state["problem"]  # type: ignore[return-value]
    problem = broker_reachable()
    with _broker_lock:
        _broker_state.update(checked=time.monotonic(), problem=problem)
    return problem


def forget_broker_check() -> None:
    with _broker_lock:
        _broker_state.update(checked=0.0, problem=None)


@dataclass(frozen=True)
class WorkerHealth:
    heartbeat: WorkerHeartbeat
    healthy: bool
    seconds_since_seen: float


@dataclass
class QueueOverview:
    counts: dict[str, int]
    workers: list[WorkerHealth]
    oldest_queued_at: datetime.datetime | None
    warnings: list[str] = field(default_factory=list)


def queue_overview(now: datetime.datetime | None = None) -> QueueOverview:
    """Run counts by status, worker health, and warnings: a broker that cannot be reached, runs waiting
    to be sent, queues nobody consumes, runs whose worker stopped responding."""
    now = now or timezone.now()
    stale_after = 3 * settings.FACET_WORKER_HEARTBEAT_SECONDS
    workers = [
        WorkerHealth(
            beat,
            (now - beat.last_seen).total_seconds() <= stale_after,
            (now - beat.last_seen).total_seconds(),
        )
        for beat in WorkerHeartbeat.objects.all()
    ]
    served = {queue for worker in workers if worker.healthy for queue in worker.heartbeat.queues}
    warnings: list[str] = []
    problem = broker_problem()
    if problem:
        warnings.append(
            f"The job broker cannot be reached ({problem}). New jobs are kept in the database and sent "
            "automatically when it is back."
        )
    waiting: dict[str, int] = {}
    unsent = stale = 0
    oldest: datetime.datetime | None = None
    stale_limit = now - datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS)
    for model in run_models():
        queued = model.objects.filter(status=RunStatus.QUEUED)
        for queue, n in queued.values_list("queue").annotate(n=Count("id")).order_by():
            waiting[queue] = waiting.get(queue, 0) + n
        first = queued.aggregate(first=Min("created_at"))["first"]
        oldest = min(filter(None, (oldest, first)), default=None)
        unsent += queued.filter(dispatched_at__isnull=True).count()
        stale += model.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=stale_limit).count()
        stale += model.objects.filter(status=RunStatus.RUNNING, heartbeat_at__isnull=True).count()
    if unsent:
        warnings.append(
            f"{unsent} queued job(s) have not reached the broker yet; they are sent again automatically."
        )
    for queue in sorted(waiting):
        if queue not in served:
            warnings.append(
                f"{waiting[queue]} job(s) wait on the {queue} queue, but no healthy worker consumes it."
            )
    if stale:
        warnings.append(
            f"{stale} running job(s) have had no sign of life from their worker for more than "
            f"{settings.FACET_RUN_STALE_SECONDS} s; they are handed to another worker automatically."
        )
    return QueueOverview(counts=status_counts(), workers=workers, oldest_queued_at=oldest, warnings=warnings)


def served_queues(now: datetime.datetime | None = None) -> set[str]:
    """The queues at least one healthy worker (heartbeat within three beats) consumes."""
    seen_after = (now or timezone.now()) - datetime.timedelta(
        seconds=3 * settings.FACET_WORKER_HEARTBEAT_SECONDS
    )
    healthy = WorkerHeartbeat.objects.filter(last_seen__gte=seen_after)
    return {queue for queues in healthy.values_list("queues", flat=True) for queue in queues}


def unserved_queue_banner(user: User) -> str:
    """A sentence for the top of every page when runs of the user's studies wait on a queue that no
    healthy worker consumes (they would otherwise only look "queued" for ever); empty otherwise."""
    from webapp.studies.selectors import study_ids_for_user

    if not user.is_authenticated:
        return ""
    study_ids = study_ids_for_user(user)
    # One query whatever the number of run kinds (every page shows the banner): a UNION of each kind's
    # queued runs counted per queue.
    first, *others = [
        model.objects.filter(status=RunStatus.QUEUED, **{f"{model.study_lookup}__in": study_ids})
        .values_list("queue")
        .annotate(n=Count("id"))
        .order_by()
        for model in run_models()
    ]
    waiting: dict[str, int] = {}
    for queue, n in first.union(*others, all=True):
        waiting[queue] = waiting.get(queue, 0) + n
    if not waiting:
        return ""
    unserved = sorted(queue for queue in waiting if queue not in served_queues())
    if not unserved:
        return ""
    jobs = sum(waiting[queue] for queue in unserved)
    names = " and ".join(f"“{queue}”" for queue in unserved)
    return (
        f"No worker is running for the {names} queue{'s' if len(unserved) > 1 else ''}: {jobs} job(s) of "
        "your studies wait and will not start until a site administrator starts one "
        f"(celery -A workers worker -Q {','.join(unserved)}). Nothing is lost meanwhile."
    )
