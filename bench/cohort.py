"""`python -m bench.cohort`: the cohort page, its statistics and the cohort API at scale on PostgreSQL.

Seeds a throwaway database (`facet_bench_cohort` on DATABASE_URL's server, dropped and recreated) with one
study of 250 subjects in two arms, each with a pre and a post visit of two photos (frontal and left 45°):
1,000 photos, 4,000 analysis results (landmarks, zones, wrinkles, normality per photo) and 500 assessed
comparison pairs. The results are SYNTHETIC: the atlas's mean face with per-subject jitter and made-up
zone, wrinkle and normality figures of realistic size (every zone, as the workers store them); they
exercise the queries, the measures, the statistics and the charts, not any model.

Measured in the benchmark process through Django's test client (middleware, view, queries, statistics,
charts and template rendering; no HTTP transport): the cohort page with its statistics cache cold (cleared
before each request) and warm, for the lip measures and for the wrinkle zones (with the atlas chart), the
cohort statistics API, and the number of database queries of each. Goal: cohort page p95 ≤ 200 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASE = "facet_bench_cohort"
DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
SUBJECTS = 250
P95_GOAL_MS = 200.0


def _bench_database(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _recreate_database(url: str) -> str:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _png(seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (150 + seed % 40, 120, 105)).save(buffer, format="PNG")
    return buffer.getvalue()


def _result_data(kind: str, points, rng) -> dict[str, Any]:
    """Synthetic result JSON shaped like the workers' (every atlas zone, outlines included)."""
    from ml.zones.atlas import ZONES

    if kind == "landmarks":
        face = {"box": [20, 20, 220, 240], "score": 0.99, "landmarks": points.round(2).tolist()}
        face["pose"] = {"yaw": float(rng.normal(0, 1)), "pitch": float(rng.normal(0, 1)), "roll": 0.0}
        return {"faces": [face], "subject": 0, "quality": {"ok": True, "reasons": [], "measures": {}}}
    if kind == "zones":
        zones = [
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "area_px": int(rng.integers(200, 2000)),
                "face_fraction": float(rng.uniform(0.005, 0.05)),
                "outlines": [rng.integers(0, 256, size=60).tolist()],
            }
            for zone in ZONES
        ]
        return {"zones": zones, "face_area_px": 40000, "notes": ["SYNTHETIC benchmark data"]}
    if kind == "wrinkles":
        zones = []
        for zone in ZONES:
            fraction = float(rng.uniform(0, 0.08))
            zones.append(
                {
                    "number": zone.number,
                    "abbreviation": zone.abbreviation,
                    "name": zone.name,
                    "zone_area_px": 1000,
                    "wrinkle_area_px": int(1000 * fraction),
                    "area_fraction": fraction,
                    "total_length_px": float(rng.uniform(0, 200)),
                    "mean_width_px": 2.0,
                    "count": int(rng.integers(0, 6)),
                }
            )
        return {"zones": zones, "notes": ["SYNTHETIC benchmark data"]}
    return {
        "score": float(rng.normal(-1, 0.3)),
        "rating": {"value": float(rng.uniform(2, 6))},
        "region": "mouth_nose",
    }


def seed(subjects: int) -> dict[str, Any]:
    """The study, its subjects, photos, results and assessed pairs; returns the study and its coordinator."""
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from ml.zones.render import mean_shape
    from webapp.analysis.models import AnalysisJob, Result
    from webapp.analysis.pairs import comparisons_create_for_study
    from webapp.studies.models import Photo, Subject, Visit
    from webapp.studies.services import study_create, study_update

    rng = np.random.default_rng(0)
    coordinator = get_user_model().objects.create_user("bench-coordinator", password="bench-password-0")
    study = study_create(name="Cohort benchmark", creator=coordinator)
    study_update(study=study, actor=coordinator, arms=["filler", "control"], analyses=["landmarks"])
    base = mean_shape() * 0.5
    now = timezone.now()
    counter = 0
    for index in range(subjects):
        subject = Subject.objects.create(
            study=study,
            code=f"B{index:04d}",
            arm="filler" if index % 2 else "control",
            sex="female",
            age_band="30-39",
        )
        shape = base + rng.normal(0, 1.0, size=base.shape)
        for label, role in (("baseline", "pre"), ("week 12", "post")):
            visit = Visit.objects.create(subject=subject, label=label, role=role)
            for view in ("frontal", "left45"):
                counter += 1
                content = _png(counter)
                digest = hashlib.sha256(content + str(counter).encode()).hexdigest()
                photo = Photo(
                    study=study,
                    visit=visit,
                    view=view,
                    content_hash=digest,
                    image_hash=digest,
                    source_format="PNG",
                    width=256,
                    height=256,
                    uploaded_by=coordinator,
                )
                photo.image.save("p.png", ContentFile(content), save=False)
                photo.thumbnail.save("t.jpg", ContentFile(content), save=False)
                photo.save()
                points = shape + rng.normal(0, 0.3, size=shape.shape)
                if role == "post" and subject.arm == "filler":
                    points[49:54, 1] -= 1.5  # SYNTHETIC: a fuller upper lip after "treatment"
                jobs = AnalysisJob.objects.bulk_create(
                    [
                        AnalysisJob(
                            kind=kind,
                            photo=photo,
                            model_name=f"bench-{kind}",
                            model_version="bench",
                            status="succeeded",
                            finished_at=now,
                            progress=1.0,
                        )
                        for kind in ("landmarks", "zones", "wrinkles", "normality")
                    ]
                )
                Result.objects.bulk_create(
                    [
                        Result(
                            job=job,
                            data=_result_data(job.kind, points, rng),
                            model_name=job.model_name,
                            model_version="bench",
                            weights_sha256="0" * 64,
                            code_version="bench",
                        )
                        for job in jobs
                    ]
                )
    comparisons_create_for_study(study=study, actor=coordinator)
    return {"study": study, "coordinator": coordinator}


def _time(client, url: str, params: dict[str, str], runs: int, clear_cache: bool) -> dict[str, Any]:
    import numpy
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timings = []
    compute = []
    queries = []
    for _ in range(runs):
        if clear_cache:
            cache.clear()
        with CaptureQueriesContext(connection) as captured:
            start, start_cpu = time.perf_counter(), time.process_time()
            response = client.get(url, params)
            timings.append(1000 * (time.perf_counter() - start))
            compute.append(1000 * (time.process_time() - start_cpu))
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
        queries.append(len(captured))
    ordered = sorted(timings)
    return {
        "runs": runs,
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(float(numpy.percentile(ordered, 95)), 1),
        "max_ms": round(ordered[-1], 1),
        # Process CPU time of the request (the web process's share; PostgreSQL's work is not in it):
        # what the request costs when it does not wait for the CPU on a loaded machine.
        "compute_median_ms": round(statistics.median(compute), 1),
        "compute_p95_ms": round(float(numpy.percentile(compute, 95)), 1),
        "queries": max(queries),
        "bytes": len(response.content),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cohort", description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=SUBJECTS)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time the database an earlier run seeded (same seed) instead of seeding",
    )
    args = parser.parse_args(argv)
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        print("bench.cohort needs DATABASE_URL on a PostgreSQL server.", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = _bench_database(base) if args.reuse else _recreate_database(base)
    os.environ.pop(
        "REDIS_URL", None
    )  # statistics cache in process memory: the benchmark times Facet, not Redis
    media = tempfile.mkdtemp(prefix="facet-bench-cohort-")
    os.environ["FACET_MEDIA_ROOT"] = media
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ["FACET_HTTPS"] = "0"  # the test client speaks plain HTTP
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from bench.machine import machine_info
    from bench.report import write_report

    call_command("migrate", verbosity=0)
    start = time.perf_counter()
    if args.reuse:
        from django.contrib.auth import get_user_model

        from webapp.studies.models import Study

        seeded = {
            "study": Study.objects.get(name="Cohort benchmark"),
            "coordinator": get_user_model().objects.get(username="bench-coordinator"),
        }
    else:
        seeded = seed(args.subjects)
    # The planner's row counts, as autovacuum would have them on a live database after a bulk load.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    seed_seconds = time.perf_counter() - start
    from webapp.analysis.models import ComparisonPair, Result
    from webapp.studies.models import Photo

    counts = {
        "subjects": args.subjects,
        "photos": Photo.objects.count(),
        "results": Result.objects.count(),
        "pairs": ComparisonPair.objects.count(),
        "pairs_included": sum(pair.included for pair in ComparisonPair.objects.all()),
    }
    study = seeded["study"]
    # Static files by plain names: no collectstatic manifest is built for a throwaway run.
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(ALLOWED_HOSTS=["testserver"], STORAGES=storages):
        client = Client()
        client.force_login(seeded["coordinator"])
        page = f"/studies/{study.pk}/cohort/"
        api = f"/api/studies/{study.pk}/cohort-statistics/"
        client.get(page)  # the first request loads templates and the atlas outlines
        scenarios = {
            "cohort page, lips, statistics cached": (page, {"group": "lips"}, args.runs, False),
            "cohort page, lips, statistics computed (cache cleared)": (
                page,
                {"group": "lips"},
                args.runs // 3,
                True,
            ),
            "cohort page, wrinkles + atlas, statistics cached": (
                page,
                {"group": "wrinkles"},
                args.runs,
                False,
            ),
            "cohort page, wrinkles + atlas, statistics computed": (
                page,
                {"group": "wrinkles"},
                args.runs // 3,
                True,
            ),
            "cohort page, arm filter, cached": (page, {"group": "lips", "arm": "filler"}, args.runs, False),
            "API cohort statistics, lips, cached": (api, {"group": "lips"}, args.runs, False),
        }
        results = {
            name: _time(client, url, params, runs, clear)
            for name, (url, params, runs, clear) in scenarios.items()
        }
    report = {
        "machine": machine_info(),
        "load_average": os.getloadavg(),
        "counts": counts,
        "seed_seconds": round(seed_seconds, 1),
        "goal_p95_ms": P95_GOAL_MS,
        "scenarios": results,
    }
    lines = [
        "# Cohort page at scale",
        "",
        f"`python -m bench.cohort --subjects {args.subjects} --runs {args.runs}"
        f"{' --reuse' if args.reuse else ''}` on PostgreSQL "
        f"({report['machine']['date']}, code {report['machine']['code_version']}); "
        f"{report['machine']['cpu_model']}, {report['machine']['cpus_available']} CPUs available, "
        f"load average {report['load_average'][0]:.1f} (shared machine).",
        "",
        f"Seeded: {counts['subjects']} subjects, {counts['photos']} photos, {counts['results']} results, "
        f"{counts['pairs']} comparison pairs ({counts['pairs_included']} comparable)"
        f"{' by an earlier run' if args.reuse else f' in {seed_seconds:.0f} s'}. "
        "The results are SYNTHETIC (module docstring). Timed through Django's test client, without HTTP "
        "transport. Goal: cohort page p95 ≤ 200 ms. Wall time includes waiting for a CPU on this shared "
        "machine; CPU time is the web process's own work (PostgreSQL's is not in it).",
        "",
        "| scenario | runs | median ms | p95 ms | max ms | CPU median ms | CPU p95 ms | queries | bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} | {row['runs']} | {row['median_ms']} | {row['p95_ms']} | {row['max_ms']} | "
            f"{row['compute_median_ms']} | {row['compute_p95_ms']} | {row['queries']} | {row['bytes']} |"
        )
    write_report(args.out, "cohort", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
