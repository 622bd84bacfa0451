"""The analysis task: run the job's kind through its runner and record the result (``workers.runs``).

Task modules import Django models inside the task: Celery imports them before Django is set up.
"""

from webapp.runs import task_names
from workers.celery import app


@app.task(bind=True, name=task_names.ANALYSIS, acks_late=True, reject_on_worker_lost=True)
def run_analysis_job(self, job_id: int) -> None:
    from webapp.analysis.models import AnalysisJob
    from workers.runs import execute

    execute(AnalysisJob, job_id, self.request.hostname or "worker", analyse)


def analyse(context) -> None:
    from ml.config import code_version
    from webapp.analysis.services import job_succeed
    from workers.runners import RUNNERS

    job = context.run
    outcome = RUNNERS[job.kind](job, context.progress)
    job_succeed(
        job_id=job.pk,
        attempt=context.attempt,
        data=outcome.data,
        model=outcome.model,
        parameters=outcome.parameters,
        code_version=code_version(),
        artifacts=outcome.artifacts,
    )
