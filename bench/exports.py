"""`python -m bench.exports [--subjects 250] [--repeats 5]`: the study exports at scale.

Seeds a throwaway PostgreSQL database (`facet_bench_exports` on DATABASE_URL's server, dropped and
recreated) with the cohort benchmark's study (`bench.cohort.seed`, the same data as `bench.cohort`):
250 subjects in two arms, each with a pre and a post visit holding a frontal and a left-45° photo
(1,000 photos), four succeeded analyses per photo (landmarks, zones, wrinkles, normality: 4,000
results; SYNTHETIC figures, not measurements) and the 500 assessed comparison pairs that
`comparisons_create_for_study` makes. Then it downloads each export through the real view (Django's
test client, logged in as the coordinator: permission check, query, writing, audit event) `--repeats`
times and reports the wall and CPU time and the number of SQL queries of each, side by side: XLSX,
CSV, REDCap.

Goal (issue 15): the XLSX export ≤ 5 s. The machine's load average is reported with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.machine import machine_info
from bench.report import write_report

BENCH_DATABASE = "facet_bench_exports"
DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
XLSX_GOAL_S = 5.0
FORMATS = ("xlsx", "csv", "redcap")


def _recreate_database(url: str) -> str:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _seed(subjects: int) -> dict:
    """The cohort benchmark's study (`bench.cohort.seed`), with its row counts."""
    from bench.cohort import seed
    from webapp.analysis.models import ComparisonPair, Result
    from webapp.studies.models import Comparison, Photo, Visit

    seeded = seed(subjects)
    study = seeded["study"]
    return {
        "study_id": study.pk,
        "user_id": seeded["coordinator"].pk,
        "subjects": study.subjects.count(),
        "visits": Visit.objects.filter(subject__study=study).count(),
        "photos": Photo.objects.filter(study=study).count(),
        "results": Result.objects.filter(job__photo__study=study).count(),
        "comparisons": Comparison.objects.filter(subject__study=study).count(),
        "pairs": ComparisonPair.objects.filter(comparison__subject__study=study).count(),
    }


def _measure(seeded: dict, repeats: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    client = Client()
    client.force_login(get_user_model().objects.get(pk=seeded["user_id"]))
    url = reverse("exports:study_measures", args=[seeded["study_id"]])
    found = {}
    for export_format in FORMATS:
        times, cpu_times, sizes, queries = [], [], [], []
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as captured:
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(url, {"format": export_format})
                body = response.content
                times.append(time.perf_counter() - started)
                cpu_times.append(time.process_time() - cpu_started)
            if response.status_code != 200:
                raise SystemExit(f"The {export_format} export answered {response.status_code}.")
            sizes.append(len(body))
            queries.append(len(captured.captured_queries))
        found[export_format] = {
            "runs_s": [round(value, 3) for value in times],
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "cpu_runs_s": [round(value, 3) for value in cpu_times],
            "cpu_median_s": round(statistics.median(cpu_times), 3),
            "bytes": sizes[-1],
            "queries": max(queries),
        }
    return found


def _markdown(report: dict) -> str:
    machine, seeded, exports = report["machine"], report["seeded"], report["exports"]
    xlsx = exports["xlsx"]
    lines = [
        "# Study exports at scale",
        "",
        f"Measured {machine['date']} with `python -m bench.exports --subjects {seeded['subjects']} "
        f"--repeats {report['repeats']}` (DATABASE_URL: PostgreSQL); code {machine['code_version']}.",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cpus_available']} CPUs available; load average "
        f"before the run {report['load_average'][0]:.2f} (1 min), shared with other work.",
        "",
        f"Seeded: {seeded['subjects']} subjects, {seeded['visits']} visits, {seeded['photos']} photos, "
        f"{seeded['results']} results, {seeded['comparisons']} comparisons, {seeded['pairs']} photo pairs "
        f"({report['rows']} measure rows), seeded by `bench.cohort.seed`. Figures are synthetic; the "
        "timings are real.",
        "",
        "Each export is downloaded through its view (permission check, reads, writing, audit event).",
        "",
        "Wall: elapsed time of the request; CPU: this process's CPU time (the web process's own work, "
        "without waiting for the other jobs on the machine or for PostgreSQL).",
        "",
        "| export | wall median (s) | wall max (s) | CPU median (s) | SQL queries | size (bytes) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for export_format, found in exports.items():
        cells = [found[key] for key in ("median_s", "max_s", "cpu_median_s", "queries", "bytes")]
        lines.append(f"| {export_format} | " + " | ".join(str(cell) for cell in cells) + " |")
    verdict = "meets" if xlsx["max_s"] <= XLSX_GOAL_S else "misses"
    lines += [
        "",
        f"Goal: XLSX ≤ {XLSX_GOAL_S:g} s. Slowest of {report['repeats']} runs: {xlsx['max_s']} s wall, "
        f"median CPU {xlsx['cpu_median_s']} s — the wall time {verdict} the goal.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        print("bench.exports needs DATABASE_URL pointing at a PostgreSQL server.", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = _recreate_database(base)
    os.environ["FACET_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="facet-bench-exports-")
    os.environ["FACET_HTTPS"] = "0"  # the test client speaks plain HTTP
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0)
    load = os.getloadavg()
    seeded = _seed(args.subjects)
    from webapp.exports.tables import export_rows
    from webapp.studies.models import Study

    rows = len(export_rows(Study.objects.get(pk=seeded["study_id"])))
    report = {
        "machine": machine_info(),
        "load_average": list(load),
        "repeats": args.repeats,
        "seeded": seeded,
        "rows": rows,
        "exports": _measure(seeded, args.repeats),
        "goal_xlsx_s": XLSX_GOAL_S,
    }
    write_report(args.out, "exports", report, _markdown(report))
    print(_markdown(report))
    shutil.rmtree(os.environ["FACET_MEDIA_ROOT"], ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
