"""`python -m bench.feedback [--photos N] [--baseline-photos M]`: upload → quality verdict while normality
jobs run (issue 16, item 4; goal p95 ≤ 2 s). Writes bench/reports/feedback.{json,md}.

Each photo is ingested here (the upload service: validation, decoding, storage, its jobs queued on
commit) into a study that runs landmarks (with the quality verdict) and the normality score, so every
upload adds a normality job too and the normality worker never runs dry. The figure is the time from
the start of the upload to the moment the landmark job's verdict is stored (the job's finished_at), one
photo at a time. Two set-ups, side by side:

* ``split`` (what ``make run`` and docker-compose start): a worker on the quick queue (landmarks and
  quality) and another on the cpu and gpu queues (normality), concurrency 1 each;
* ``single`` (the earlier ``make run``): one worker, concurrency 1, on every queue, so a verdict waits
  behind the normality jobs queued before it.

Like ``python -m bench`` it uses a database of its own (``facet_bench_feedback`` on the DATABASE_URL
server, or a temporary SQLite file) and the REDIS_URL Redis, whose queues it purges: point REDIS_URL at
a Redis database nothing else uses. The machine's load average is recorded before and after: on a
shared machine other work slows every figure.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASE = "facet_bench_feedback"
DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
GOAL_P95_SECONDS = 2.0
# Normality jobs queued before the first measured upload, so one is running from the start.
NORMALITY_BACKLOG = 3
VERDICT_TIMEOUT_SECONDS = 900.0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.feedback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="measured uploads, split workers (≥ 20)")
    parser.add_argument(
        "--baseline-photos", type=int, default=5, help="measured uploads, single worker (0 skips it)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    args = parser.parse_args(argv)
    if args.photos < 20:
        parser.error("--photos must be at least 20: a p95 over fewer uploads means little.")
    return args


def _configure_environment(temp: Path) -> None:
    """Throwaway storage and database for this process and its workers, before Django reads settings."""
    os.environ["FACET_VAR_DIR"] = str(temp / "var")
    os.environ["FACET_MEDIA_ROOT"] = str(temp / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        return
    import psycopg

    parts = urlsplit(configured)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(f"bench: DATABASE_URL must be PostgreSQL (or unset), not {parts.scheme!r}.")
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}"')
        connection.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _wait_verdict(job_id: int, normality_seen: Callable[[], None]) -> Any:
    """The finished landmark job; ``normality_seen`` is called at each poll to note running normality jobs."""
    from django.db import close_old_connections

    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import ACTIVE_STATUSES, RunStatus

    deadline = time.monotonic() + VERDICT_TIMEOUT_SECONDS
    while True:
        close_old_connections()
        normality_seen()
        job = AnalysisJob.objects.get(pk=job_id)
        if job.status not in ACTIVE_STATUSES:
            if job.status != RunStatus.SUCCEEDED:
                raise RuntimeError(f"Landmark job {job_id} ended {job.status}: {job.error}")
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"Landmark job {job_id} has no verdict after {VERDICT_TIMEOUT_SECONDS:.0f} s.")
        time.sleep(0.02)


def _wait_normality_running(study) -> None:
    """Measure only once the normality worker has started a job (its first one loads the models)."""
    from django.db import close_old_connections

    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import RunStatus

    deadline = time.monotonic() + VERDICT_TIMEOUT_SECONDS
    while not AnalysisJob.objects.filter(
        photo__study=study, kind="normality", status=RunStatus.RUNNING
    ).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("No normality job started; see the worker logs.")
        time.sleep(0.2)
        close_old_connections()


def _measure(study, user, faces: list[Path], log: Callable[[str], None]) -> dict[str, Any]:
    """Upload each face and wait for its verdict; the first upload warms the workers up and is not counted."""
    from django.utils import timezone

    from bench.landmarks import _new_visit, _upload, summarise
    from webapp.analysis.models import AnalysisJob
    from webapp.analysis.services import photo_upload
    from webapp.runs.models import RunStatus

    visit = _new_visit(study, user, f"FB{time.time_ns() % 10**8}")
    rows = []
    for index, face in enumerate(faces):
        running_normality: set[int] = set()

        def normality_seen(found: set[int] = running_normality) -> None:
            found.update(
                AnalysisJob.objects.filter(
                    photo__study=study, kind="normality", status=RunStatus.RUNNING
                ).values_list("pk", flat=True)
            )

        normality_seen()
        upload = _upload(face.read_bytes(), face.name, "image/jpeg")
        started = timezone.now()
        photo = photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=user)
        uploaded = (timezone.now() - started).total_seconds()
        job = _wait_verdict(AnalysisJob.objects.get(photo=photo, kind="landmarks").pk, normality_seen)
        row = {
            "photo": f"{face.parent.name}/{face.name}",
            "upload_s": round(uploaded, 3),
            "verdict_s": round((job.finished_at - started).total_seconds(), 3),
            "queue_wait_s": round((job.started_at - job.created_at).total_seconds(), 3),
            "run_s": round((job.finished_at - job.started_at).total_seconds(), 3),
            "quality_ok": bool(job.result.data["quality"]["ok"]),
            "normality_running": len(running_normality),
            "normality_waiting": AnalysisJob.objects.filter(
                photo__study=study, kind="normality", status=RunStatus.QUEUED
            ).count(),
        }
        if index == 0:
            log(f"  warm-up upload: verdict after {row['verdict_s']} s")
            continue
        rows.append(row)
        log(
            f"  {len(rows)}: verdict after {row['verdict_s']} s, "
            f"{row['normality_running']} normality job(s) running"
        )
    verdicts = [row["verdict_s"] for row in rows]
    return {
        "uploads": rows,
        "verdict": summarise(verdicts),
        "during_normality": sum(1 for row in rows if row["normality_running"]),
    }


def _new_study(user, name: str, backlog: list[Path]):
    """A study running landmarks and normality, with ``backlog`` photos whose jobs are queued at once:
    their normality jobs keep the normality worker busy from the first measured upload on."""
    from bench.landmarks import _new_visit, _upload
    from webapp.analysis.services import photo_upload
    from webapp.studies.services import study_create

    study = study_create(name=f"Feedback benchmark ({name})", creator=user)
    study.analyses = ["landmarks", "normality"]
    study.save()
    visit = _new_visit(study, user, "BACKLOG")
    for face in backlog:
        upload = _upload(face.read_bytes(), face.name, "image/jpeg")
        photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=user)
    return study


def _setup(name: str, queues: list[str], env: dict[str, str], temp: Path, user, faces, backlog, log) -> dict:
    from bench.worker import purge_broker, start_worker, stop_worker
    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import ACTIVE_STATUSES, RunStatus

    purge_broker()
    study = _new_study(user, name, backlog)
    log(f"bench: {name}: workers on {' and '.join(queues)}")
    workers = [
        start_worker(env, temp / f"{name}-{index}.log", name_prefix=f"feedback-{name}-{index}", queues=queue)
        for index, queue in enumerate(queues)
    ]
    try:
        _wait_normality_running(study)
        measured = _measure(study, user, faces, log)
    finally:
        for worker in workers:
            stop_worker(worker)
        # What the measured set-up left queued is not run by the next one.
        AnalysisJob.objects.filter(status__in=ACTIVE_STATUSES).update(status=RunStatus.CANCELLED)
    return {"workers": queues, **measured}


def _run(args: argparse.Namespace, faces: list[Path], temp: Path, log: Callable[[str], None]) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from bench.machine import machine_info
    from bench.worker import database_url, worker_environment

    log(f"bench: database {connection.vendor}, broker {'redis' if settings.REDIS_URL else 'filesystem'}")
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username=f"bench-feedback-{os.getpid()}", password=None)
    env = worker_environment(
        database=database_url(connection.settings_dict), media_root=Path(settings.MEDIA_ROOT)
    )
    backlog, measured = faces[:NORMALITY_BACKLOG], faces[NORMALITY_BACKLOG:]
    load_before = os.getloadavg()
    split = _setup("split", ["quick", "cpu,gpu"], env, temp, user, measured[: args.photos + 1], backlog, log)
    single = None
    if args.baseline_photos:
        photos = measured[: args.baseline_photos + 1]
        single = _setup("single", ["quick,cpu,gpu"], env, temp, user, photos, backlog, log)
    load_after = os.getloadavg()
    return {
        "machine": machine_info(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
        "goal_p95_s": GOAL_P95_SECONDS,
        "goal_met": split["verdict"]["p95"] <= GOAL_P95_SECONDS,
        "setup": {
            "database": connection.vendor,
            "broker": "redis" if settings.REDIS_URL else "filesystem (kombu, polls every 1 s)",
            "study_analyses": ["landmarks", "normality"],
            "normality_backlog": NORMALITY_BACKLOG,
            "concurrency": 1,
        },
        "split": split,
        "single": single,
    }


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        "# Upload → quality verdict while normality jobs run",
        "",
        "`python -m bench.feedback` (through `/work/bin/heavy` on the shared machine). Each upload (ingest, "
        "storage, jobs queued) into a study that runs landmarks with the quality verdict and the normality "
        "score; the figure is upload start → verdict stored, one photo at a time, after one warm-up upload.",
        "",
        "| set-up | uploads | during a normality job | median (s) | p95 (s) | max (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (
        ("split", "quick worker + cpu/gpu worker (make run, docker-compose)"),
        ("single", "one worker on every queue (before)"),
    ):
        part = report.get(name)
        if not part:
            continue
        summary = part["verdict"]
        lines.append(
            f"| {label} | {summary['n']} | {part['during_normality']} | {summary['median']:.2f} | "
            f"{summary['p95']:.2f} | {summary['max']:.2f} |"
        )
    met = "met" if report["goal_met"] else "NOT met"
    lines += [
        "",
        f"Goal: p95 ≤ {report['goal_p95_s']:.0f} s with the split workers: **{met}** "
        f"(p95 {report['split']['verdict']['p95']:.2f} s).",
        "",
        f"Load average (1, 5, 15 min) before {report['load_average_before']}, after "
        f"{report['load_average_after']} on {machine['cpus_available']} CPUs: other people's work ran on "
        "the same CPUs, so every figure is slower than on an idle machine.",
        "",
        "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()),
        "",
        "Per upload (split workers): verdict, queue wait and run time of the landmark job, running and "
        "waiting normality jobs.",
        "",
        "| photo | upload s | verdict s | queue wait s | run s | quality ok | normality running | waiting |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in report["split"]["uploads"]:
        lines.append(
            f"| {row['photo']} | {row['upload_s']} | {row['verdict_s']} | {row['queue_wait_s']} "
            f"| {row['run_s']} | {row['quality_ok']} | {row['normality_running']} "
            f"| {row['normality_waiting']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from ml.config import data_dir_or_none

    data_dir = data_dir_or_none()
    if data_dir is None:
        print("bench: the face data directory is absent (FACET_DATA_DIR); the benchmark needs real faces.")
        return 2
    from bench.landmarks import data_faces

    faces = data_faces(data_dir, args.photos + 1 + NORMALITY_BACKLOG)
    temp = Path(tempfile.mkdtemp(prefix="facet-feedback-"))

    def log(message: str) -> None:
        print(message, flush=True)

    try:
        _configure_environment(temp)
        report = _run(args, faces, temp, log)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    from bench.report import write_report

    write_report(args.out, "feedback", report, markdown(report))
    print(f"bench: wrote {args.out / 'feedback.json'} and {args.out / 'feedback.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
