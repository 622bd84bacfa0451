"""One lifecycle for every piece of work a worker runs: analysis jobs, model training, campaigns.

:class:`Run` is abstract: each kind of run is a concrete model of its own app (``AnalysisJob``,
``TrainingJob``, ``Campaign``) that adds what it works on and declares, as class attributes, its
label, its Celery task and who may control it. :mod:`webapp.runs.services` moves every kind through
the same states; :mod:`webapp.runs.kinds` lists the kinds for the queue page and the sweeper.

States: ``queued`` → ``running`` → ``succeeded`` | ``failed``, and ``cancelled`` from either active
state. A failure the retry policy allows goes back to ``queued``; a run whose worker stopped sending
heartbeats is taken back to ``queued`` by the sweeper. ``attempts`` counts the claims, and the
attempt number is the fencing token: a worker may only write progress or a result for the attempt it
claimed.
"""

from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import models


class RunStateError(Exception):
    """The run is not in a state that allows the requested change; the message says why."""


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
FINISHED_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


class Queue(models.TextChoices):
    # Quick checks (landmarks and the quality verdict, well under a second) have a queue and a worker
    # process of their own, so that they never wait behind minute-long normality or wrinkle jobs.
    QUICK = "quick", "Quick (landmarks, quality)"
    CPU = "cpu", "CPU"
    GPU = "gpu", "GPU"


class Run(models.Model):
    """Status, progress with a message, timings, attempts, error, cancel request, worker and broker
    bookkeeping of one run. Concrete kinds set the class attributes below and :meth:`run_study`."""

    # What a kind declares (see webapp.runs.kinds).
    run_kind: ClassVar[str] = ""
    run_label: ClassVar[str] = ""
    task_name: ClassVar[str] = ""
    # The study capability needed to cancel or retry a run of this kind (webapp.studies.access).
    control_capability: ClassVar[str] = "manage_study"
    # How to filter and list runs by study.
    study_lookup: ClassVar[str] = "study_id"
    list_related: ClassVar[tuple[str, ...]] = ("study",)

    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    queue = models.CharField(max_length=10, choices=Queue.choices, default=Queue.CPU)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker last accepted its task; empty: not sent yet."
    )
    task_id = models.CharField(max_length=64, blank=True, help_text="Celery id of the last sent task.")
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life from the worker running it."
    )

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status in (RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def run_study(self) -> models.Model:
        """The study this run belongs to (access control, audit and the queue page's filter)."""
        raise NotImplementedError

    def run_title(self) -> str:
        """What the run works on, in a few words, for lists."""
        return f"{self.run_label} {self.pk}"

    def run_url(self) -> str:
        """The page that shows this run's subject (its photo, study labels page or campaign)."""
        raise NotImplementedError

    def on_claim(self) -> None:
        """Called, with the run locked, when a worker claims it: clear what an earlier attempt left."""

    def check_retry(self) -> None:
        """Called, with the run locked, before a retry; raise ``RunStateError`` to refuse it."""

    def status_extra(self) -> dict[str, object]:
        """Kind-specific fields of the status JSON (e.g. where an analysis job's result is)."""
        return {}

    def badge(self) -> "RunBadge":
        """What the run's status badge says. A kind whose finished run has a verdict (a quality check
        that passes or fails, an analysis that does not apply) says the verdict, never a bare
        "Succeeded" that would read as a clean result."""
        return RunBadge(label=self.get_status_display(), tone=self.status)


@dataclass(frozen=True)
class RunBadge:
    """A status badge: its words and its tone, one of the run statuses or ``ok``, ``warn``, ``bad``, ``na``
    (the CSS classes ``badge-<tone>``)."""

    label: str
    tone: str


class WorkerHeartbeat(models.Model):
    """Written by each Celery worker every few seconds; the queue page reads worker health from it."""

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    concurrency = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
