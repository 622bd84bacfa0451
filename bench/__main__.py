"""`python -m bench [--photos N] [--out DIR]`: run the benchmarks and write DIR/landmarks.{json,md}.

The benchmark never touches the site's data: by default it uses a throwaway SQLite database,
filesystem broker and media folder in a temporary directory. When DATABASE_URL is set it uses (and
drops and recreates) a database named `facet_bench` on that server; when REDIS_URL is set it uses
that Redis and purges its quick, cpu and gpu queues, so point REDIS_URL at a Redis database nothing else uses.
"""

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BENCH_DATABASE = "facet_bench"
DEFAULT_OUT = Path(__file__).resolve().parent / "reports"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--photos", type=int, default=20, help="landmark jobs to measure (at least 20; default 20)"
    )
    parser.add_argument(
        "--ingest-runs", type=int, default=5, help="ingests of a 12-megapixel JPEG (at least 5; default 5)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    parser.add_argument(
        "--keep-temp", action="store_true", help="keep the temporary folder (worker log, media)"
    )
    args = parser.parse_args(argv)
    if args.photos < 20:
        parser.error("--photos must be at least 20: a p95 over fewer jobs means little.")
    if args.ingest_runs < 5:
        parser.error("--ingest-runs must be at least 5.")
    return args


def _bench_database_url(configured: str) -> str:
    """The configured PostgreSQL server with the database name replaced by facet_bench, recreated empty."""
    import psycopg

    parts = urlsplit(configured)
    if not parts.scheme.startswith("postgres"):
        raise SystemExit(
            f"bench: DATABASE_URL must be PostgreSQL (or unset for SQLite), not {parts.scheme!r}."
        )
    maintenance = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}"')
        connection.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _configure_environment(temp: Path) -> None:
    """Point this process (and so the worker it starts) at throwaway storage, before Django reads settings."""
    os.environ["FACET_VAR_DIR"] = str(temp / "var")
    os.environ["FACET_MEDIA_ROOT"] = str(temp / "media")
    os.environ["DJANGO_SETTINGS_MODULE"] = "webapp.settings"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if configured := os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = _bench_database_url(configured)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    from ml.config import data_dir_or_none

    data_dir = data_dir_or_none()
    if data_dir is None:
        print(
            "bench: the face data directory is absent (set FACET_DATA_DIR, default ../shared/data); "
            "the benchmarks need real faces.",
            file=sys.stderr,
        )
        return 2
    from bench.landmarks import BenchmarkDataError, data_faces

    try:
        faces = data_faces(data_dir, args.photos + 1)
    except BenchmarkDataError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 2

    temp = Path(tempfile.mkdtemp(prefix="facet-bench-"))
    try:
        _configure_environment(temp)
        report = _run(args, faces, temp)
    finally:
        if args.keep_temp:
            print(f"bench: kept {temp}")
        else:
            shutil.rmtree(temp, ignore_errors=True)
    from bench.report import landmarks_markdown, write_report

    write_report(args.out, "landmarks", report, landmarks_markdown(report))
    print(f"bench: wrote {args.out / 'landmarks.json'} and {args.out / 'landmarks.md'}")
    return 0


def _run(args: argparse.Namespace, faces: list[Path], temp: Path) -> dict:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from bench.landmarks import bench_direct_analysis, bench_ingest_12mp, bench_worker_latency
    from bench.machine import machine_info
    from bench.worker import celery_worker, database_url, purge_broker, worker_environment

    def log(message: str) -> None:
        print(message, flush=True)

    log(
        f"bench: database {connection.vendor} {connection.settings_dict['NAME']}, "
        f"broker {'redis' if settings.REDIS_URL else 'filesystem'}"
    )
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user(username=f"bench-{os.getpid()}", password=None)

    log(f"bench: ingest of a 12-megapixel JPEG, {args.ingest_runs} runs")
    ingest = bench_ingest_12mp(user, faces[0], args.ingest_runs)

    log(f"bench: landmark jobs on a real worker, 1 warm-up + {args.photos} photos")
    purge_broker()
    env = worker_environment(
        database=database_url(connection.settings_dict), media_root=Path(settings.MEDIA_ROOT)
    )
    with celery_worker(env, temp / "worker.log", name_prefix="bench"):
        latency, photos = bench_worker_latency(user, faces, log)

    log("bench: analyze_landmarks called directly")
    direct = bench_direct_analysis(photos, faces[0])
    return {
        "machine": machine_info(),
        "setup": {
            "database": connection.vendor,
            "broker": "redis" if settings.REDIS_URL else "filesystem (kombu, polls every 1 s)",
            "worker": "celery prefork, concurrency 1, queues quick, cpu and gpu",
            "photos": args.photos,
        },
        "landmark_jobs": latency,
        "ingest_12mp_jpeg": ingest,
        "direct_analyze_landmarks": direct,
    }


if __name__ == "__main__":
    sys.exit(main())
