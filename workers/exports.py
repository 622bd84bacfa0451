"""The background export task: build one study export (``webapp.exports.services.study_export_build``)
and store its file. A run (``webapp.runs``): ``workers.runs.execute`` claims it, keeps its heartbeat,
stops it when cancelled (the DICOM export reports each photo) and records failures. And the periodic
purge (Celery beat) of the exports built more than FACET_EXPORT_RETENTION_HOURS ago."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webapp.runs import task_names
from workers.celery import app

if TYPE_CHECKING:
    from workers.runs import RunContext


@app.task(bind=True, name=task_names.STUDY_EXPORT, acks_late=True, reject_on_worker_lost=True)
def build_study_export(self, export_id: int) -> None:
    from webapp.exports.models import StudyExport
    from workers.runs import execute

    execute(StudyExport, export_id, self.request.hostname or "worker", build)


def build(context: RunContext) -> None:
    from webapp.exports import services

    built = services.study_export_build(context.run, context.progress)
    context.progress(1.0, "Storing the file")
    services.study_export_succeed(export_id=context.run.pk, attempt=context.attempt, built=built)


@app.task(name=task_names.PURGE_EXPIRED_EXPORTS, acks_late=True)
def purge_expired_exports() -> int:
    """Delete the files of exports built more than FACET_EXPORT_RETENTION_HOURS ago (each audited)."""
    from webapp.exports import services

    return services.purge_expired_exports(via="worker")
