"""`python -m bench.exports [--subjects 250] [--repeats 5]`: the study exports at scale.

Seeds a throwaway PostgreSQL database (`facet_bench_exports` on DATABASE_URL's server, dropped and
recreated) with the issue's scale: 250 subjects, each with a pre and a post visit holding a frontal and
a left-45° photo (1,000 photos), four succeeded analyses per photo (landmarks, zones, wrinkles,
normality: 4,000 results; made-up figures, not measurements), one comparison per subject and its two
photo pairs, whose measures and sources are those `webapp.analysis.pairs.pair_assess` stores
(`ml.measures.catalogue.photo_measures` of the results; the colour figures, which need the photo files,
are left out). Then it downloads each export through the real view (Django's test client, logged in
as the coordinator: permission check, query, writing, audit event) `--repeats` times and reports the
wall time and the number of SQL queries of each, side by side: XLSX, CSV, REDCap.

Goal (issue 15): the XLSX export ≤ 5 s. The machine's load average is reported with the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
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


def _face(rng) -> list[list[float]]:
    """A plausible iBUG-68 frontal face in a 1,000-pixel photo, varied per photo (made-up)."""
    import numpy as np

    points = np.zeros((68, 2))
    jaw = np.linspace(0, np.pi, 17)
    points[0:17] = np.c_[500 - 300 * np.cos(jaw), 560 + 360 * np.sin(jaw)]
    points[17:22] = np.c_[np.linspace(290, 460, 5), [430, 412, 405, 412, 425]]
    points[22:27] = np.c_[np.linspace(540, 710, 5), [425, 412, 405, 412, 430]]
    points[27:31] = np.c_[[500] * 4, np.linspace(500, 650, 4)]
    points[31:36] = np.c_[np.linspace(445, 555, 5), [665, 675, 680, 675, 665]]
    ring = np.linspace(0, 2 * np.pi, 7)[:-1]
    points[36:42] = np.c_[370 - 50 * np.cos(ring), 510 - 18 * np.sin(ring)]
    points[42:48] = np.c_[630 - 50 * np.cos(ring), 510 - 18 * np.sin(ring)]
    outer = np.linspace(0, 2 * np.pi, 13)[:-1]
    points[48:60] = np.c_[500 - 105 * np.cos(outer), 790 - 38 * np.sin(outer)]
    inner = np.linspace(0, 2 * np.pi, 9)[:-1]
    points[60:68] = np.c_[500 - 75 * np.cos(inner), 790 - 12 * np.sin(inner)]
    return (points + rng.normal(0, 3.0, points.shape)).tolist()


def _seed(subjects: int) -> dict:
    """Bulk-create the study; returns the study id, the coordinator's id and the row counts."""
    import datetime

    import numpy as np
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from ml.measures.catalogue import photo_measures
    from ml.zones.atlas import ZONES
    from webapp.analysis.models import AnalysisJob, ComparisonPair, Result
    from webapp.runs.models import RunStatus
    from webapp.studies.models import AnalysisKind, Comparison, Photo, PhotoView, Subject, Visit, VisitRole
    from webapp.studies.services import study_create

    rng = np.random.default_rng(15)
    user = get_user_model().objects.create_user("bench-coordinator", password="bench-password-0")
    study = study_create(name="Export benchmark", creator=user)
    study.arms = ["filler", "control"]
    study.save(update_fields=["arms"])
    people = Subject.objects.bulk_create(
        Subject(study=study, code=f"B-{index:04d}", arm=study.arms[index % 2]) for index in range(subjects)
    )
    visits = Visit.objects.bulk_create(
        Visit(
            subject=subject,
            label=label,
            role=role,
            date=datetime.date(2026, 1, 5) + datetime.timedelta(days=84 * offset),
        )
        for subject in people
        for offset, (label, role) in enumerate((("baseline", VisitRole.PRE), ("week 12", VisitRole.POST)))
    )
    views = (PhotoView.FRONTAL, PhotoView.LEFT_45)
    photos = Photo.objects.bulk_create(
        Photo(
            study=study,
            visit=visit,
            view=view,
            image=f"photos/bench/{visit.pk}-{view}.png",
            thumbnail=f"thumbnails/bench/{visit.pk}-{view}.jpg",
            content_hash=f"{visit.pk:032d}{index:032d}",
            image_hash=f"{visit.pk:032d}{index:032d}",
            source_format="JPEG",
            width=1000,
            height=1200,
        )
        for visit in visits
        for index, view in enumerate(views)
    )
    now = timezone.now()
    kinds = (AnalysisKind.LANDMARKS, AnalysisKind.ZONES, AnalysisKind.WRINKLES, AnalysisKind.NORMALITY)
    jobs = AnalysisJob.objects.bulk_create(
        AnalysisJob(
            kind=kind,
            photo=photo,
            model_name=f"bench-{kind}",
            model_version="bench",
            status=RunStatus.SUCCEEDED,
            progress=1.0,
            attempts=1,
            started_at=now,
            finished_at=now,
        )
        for photo in photos
        for kind in kinds
    )
    data_by_job = {}
    for job in jobs:
        if job.kind == AnalysisKind.LANDMARKS:
            data = {"faces": [{"box": [200, 300, 800, 950], "score": 0.99, "landmarks": _face(rng)}]}
        elif job.kind == AnalysisKind.ZONES:
            fractions = rng.dirichlet(np.ones(len(ZONES)))
            data = {
                "zones": [
                    {
                        "number": zone.number,
                        "abbreviation": zone.abbreviation,
                        "name": zone.name,
                        "area_px": int(fraction * 400_000),
                        "face_fraction": float(fraction),
                        "outlines": [[10, 10, 40, 10, 40, 40, 10, 40]],
                    }
                    for zone, fraction in zip(ZONES, fractions, strict=True)
                ]
            }
        elif job.kind == AnalysisKind.WRINKLES:
            data = {
                "zones": [
                    {
                        "number": zone.number,
                        "abbreviation": zone.abbreviation,
                        "name": zone.name,
                        "zone_area_px": 10_000,
                        "wrinkle_area_px": int(area * 10_000),
                        "area_fraction": float(area),
                        "total_length_px": float(area * 3_000),
                        "count": 3,
                    }
                    for zone, area in zip(ZONES, rng.uniform(0, 0.2, len(ZONES)), strict=True)
                ]
            }
        else:
            data = {"score": float(rng.normal(-1.0, 0.4)), "rating": {"value": float(rng.uniform(2, 6))}}
        data_by_job[job.pk] = data
    results = Result.objects.bulk_create(
        Result(
            job=job,
            data=data_by_job[job.pk],
            model_name=job.model_name,
            model_version="bench",
            weights_sha256=f"{job.kind:0>64}"[-64:],
            code_version="bench",
        )
        for job in jobs
    )
    by_photo: dict[int, dict[str, Result]] = {}
    for job, result in zip(jobs, results, strict=True):
        by_photo.setdefault(job.photo_id, {})[job.kind] = result
    comparisons = Comparison.objects.bulk_create(
        Comparison(
            subject=subject, pre_visit=visits[2 * index], post_visit=visits[2 * index + 1], created_by=user
        )
        for index, subject in enumerate(people)
    )
    photo_of = {(photo.visit_id, photo.view): photo for photo in photos}
    pairs = []
    for comparison in comparisons:
        for view in views:
            sides = {
                "pre": photo_of[(comparison.pre_visit_id, view)],
                "post": photo_of[(comparison.post_visit_id, view)],
            }
            measures, sources = {}, {}
            for side, photo in sides.items():
                found = by_photo[photo.pk]
                measures[side] = photo_measures(
                    **{kind: result.data for kind, result in found.items()},
                    zones_of_interest=study.zones_of_interest,
                )
                sources[side] = {
                    kind: {
                        "result": result.pk,
                        "model": result.model_name,
                        "version": result.model_version,
                        "weights_sha256": result.weights_sha256,
                    }
                    for kind, result in found.items()
                }
            pairs.append(
                ComparisonPair(
                    comparison=comparison,
                    view=view,
                    pre_photo=sides["pre"],
                    post_photo=sides["post"],
                    measures={
                        key: [measures["pre"][key], measures["post"][key]]
                        for key in measures["pre"]
                        if key in measures["post"]
                    },
                    sources=sources,
                    assessed_at=now,
                )
            )
    ComparisonPair.objects.bulk_create(pairs)
    return {
        "study_id": study.pk,
        "user_id": user.pk,
        "subjects": len(people),
        "visits": len(visits),
        "photos": len(photos),
        "results": len(results),
        "comparisons": len(comparisons),
        "pairs": len(pairs),
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
        f"({report['rows']} measure rows). Figures are made up; the timings are real.",
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
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.SECURE_SSL_REDIRECT = False
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
