"""`python -m bench.ratings_load`: 100 raters submitting ratings at once against a local server.

A throwaway PostgreSQL database (`facet_bench_ratings` on DATABASE_URL's server, dropped and recreated) and
gunicorn on 127.0.0.1 serve one open survey of 20 photos (London set, or plain images without the data).
100 external raters open their invitation links and rate every photo concurrently (asyncio + httpx, one
cookie jar each), in two scenarios side by side:

* human: each rater looks 2–4 s at a photo before answering (the pace of people rating faces);
* quick: 0.5–1.5 s (raters hurrying: about 100 submits a second from 100 raters);
* burst: no thinking time at all (100 requests in flight all the time: the worst case).

10 % of submissions are sent twice with the same submission id (a retry after a lost response). At the end
the database must hold exactly one active rating per presentation and every acknowledged submission id.
Bounded: loopback only, 100 raters × 20 photos per scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.machine import machine_info
from bench.report import write_report

BENCH_DATABASE = "facet_bench_ratings"
DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
RATERS = 100
PHOTOS = 20
P95_GOAL_MS = 100.0


def _database_url(base: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{BENCH_DATABASE}"))


def _recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")


def _setup(env: dict[str, str], scenarios: list[str]) -> dict[str, list[str]]:
    """Migrate, collect static files and create one open survey with 100 invitations per scenario."""
    script = r"""
import json, sys, django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("collectstatic", verbosity=0, interactive=False)
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
import hashlib, io
from pathlib import Path
from PIL import Image
from ml.config import data_dir_or_none
from webapp.studies.models import Photo, Subject, Visit
from webapp.studies.services import study_create
from webapp.ratings import services
scenarios, raters, count = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
user = get_user_model().objects.create_user("bench-coordinator", password="bench-password-0")
study = study_create(name="Rating load benchmark", creator=user)
data = data_dir_or_none()
sources = sorted((data / "london" / "neutral").glob("*.jpg"))[:count] if data else []
photos = []
for index in range(count):
    if index < len(sources):
        content = sources[index].read_bytes()
        image = Image.open(io.BytesIO(content)).convert("RGB")
    else:
        image = Image.new("RGB", (900, 900), (100 + index, 120, 110))
    buffer = io.BytesIO(); image.save(buffer, format="PNG"); content = buffer.getvalue()
    subject = Subject.objects.create(study=study, code=f"S{index:03d}")
    visit = Visit.objects.create(subject=subject, label="baseline", role="pre")
    digest = hashlib.sha256(content).hexdigest()
    photo = Photo(study=study, visit=visit, view="frontal", content_hash=digest, image_hash=digest,
                  source_format="PNG", width=image.width, height=image.height)
    photo.image.save("p.png", ContentFile(content), save=False)
    photo.thumbnail.save("t.jpg", ContentFile(content), save=False)
    photo.save()
    photos.append(photo)
links = {}
for scenario in scenarios:
    survey = services.survey_create(study=study, actor=user, title=f"Load {scenario}", photos=photos,
        question="How normal does this face look?", anchors=[], region="whole", repeat_share=0,
        attention_checks=0, target_ratings_per_photo=raters)
    services.survey_open(survey=survey, actor=user)
    links[scenario] = [i.token for i in services.invitations_create(survey=survey, count=raters, actor=user)]
print(json.dumps(links))
"""
    import json

    completed = subprocess.run(
        [sys.executable, "-c", script, json.dumps(scenarios), str(RATERS), str(PHOTOS)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"Benchmark set-up failed:\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _start_server(env: dict[str, str], port: int, workers: int, threads: int, log: Path) -> subprocess.Popen:
    import httpx

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "webapp.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--backlog",
            "2048",
            "--timeout",
            "60",
        ],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.terminate()
    raise RuntimeError(f"gunicorn did not start; log:\n{log.read_text()[-3000:]}")


async def _rater(base: str, token: str, think: tuple[float, float], rng: random.Random, out: dict) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False) as client:
        await client.get(f"/rate/i/{token}")
        await client.get("/rate/")  # sets the CSRF cookie, as the browser's page load does
        headers = {"X-CSRFToken": client.cookies.get("csrftoken", "")}
        state = (await client.get("/rate/state")).json()
        while state["current"]:
            if think[1]:
                await asyncio.sleep(rng.uniform(*think))
            body = {
                "token": state["current"],
                "rating": rng.randint(1, 7),
                "submission_id": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            response = await _post_until_answered(client, body, headers, out)
            out["latencies_ms"].append(1000 * (time.perf_counter() - started))
            if response.status_code not in (200, 201):
                out["errors"].append(f"{response.status_code}: {response.text[:200]}")
                state = (await client.get("/rate/state")).json()
                continue
            out["acknowledged"].append(body["submission_id"])
            if rng.random() < 0.1:  # the response "was lost": the client sends the same submission again
                retried = await _post_until_answered(client, body, headers, out)
                out["retries"] += 1
                if retried.status_code != 200 or retried.json().get("stored") is not False:
                    out["errors"].append(f"retry answered {retried.status_code} {retried.text[:120]}")
            state = response.json()["state"]


async def _post_until_answered(client: Any, body: dict, headers: dict, out: dict) -> Any:
    """POST the submission, re-sending it with the same id after a dropped connection (as rate.js does)."""
    import httpx

    for attempt in range(5):
        try:
            return await client.post("/rate/submit", json=body, headers=headers)
        except httpx.TransportError:
            out["transport_retries"] += 1
            await asyncio.sleep(0.05 * 2**attempt)
    return await client.post("/rate/submit", json=body, headers=headers)


async def _scenario(base: str, tokens: list[str], think: tuple[float, float]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "latencies_ms": [],
        "acknowledged": [],
        "errors": [],
        "retries": 0,
        "transport_retries": 0,
    }
    started = time.perf_counter()
    await asyncio.gather(
        *(_rater(base, token, think, random.Random(index), out) for index, token in enumerate(tokens))
    )
    out["seconds"] = time.perf_counter() - started
    return out


def _verify(env: dict[str, str], scenario: str, acknowledged: list[str]) -> dict[str, Any]:
    import json

    script = r"""
import json, sys, django
django.setup()
from django.db.models import Count
from webapp.ratings.models import Assignment, Rating
title, acknowledged = sys.argv[1], set(json.loads(sys.stdin.read()))
ratings = Rating.objects.filter(rater__survey__title=title, undone_at__isnull=True)
stored = set(str(value) for value in ratings.values_list("submission_id", flat=True))
per_assignment = ratings.values("assignment").annotate(n=Count("id")).filter(n__gt=1).count()
print(json.dumps({
    "presentations": Assignment.objects.filter(rater__survey__title=title).count(),
    "ratings_stored": ratings.count(),
    "duplicated_presentations": per_assignment,
    "acknowledged_missing": len(acknowledged - stored),
}))
"""
    completed = subprocess.run(
        [sys.executable, "-c", script, f"Load {scenario}"],
        input=json.dumps(acknowledged),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _markdown(report: dict[str, Any]) -> str:
    machine, setup = report["machine"], report["setup"]
    lines = [
        "# Rating submit under load: 100 raters at once",
        "",
        f"Measured {machine['date']} with `python -m bench.ratings_load` (DATABASE_URL, REDIS_URL set); "
        f"code {machine['code_version']}.",
        "",
        f"Server: gunicorn {setup['server']} on 127.0.0.1, PostgreSQL database `{BENCH_DATABASE}`, "
        "Redis cache; "
        f"{setup['raters']} raters × {setup['photos']} photos per scenario ({setup['photo_source']}); "
        f"client: asyncio + httpx, one session per rater; 10 % of submissions re-sent with the same id. "
        f"Machine: {machine['cpu_model']}, {machine['cpus_available']} CPUs available, shared with other "
        "work "
        f"(load average {setup['load_average']}).",
        "",
        "| scenario | submits | p50 ms | p95 ms | p99 ms | max ms | submits/s | errors | stored | "
        "duplicated | acknowledged but missing | p95 ≤ 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, result in report["scenarios"].items():
        check = result["check"]
        lines.append(
            f"| {name} | {result['submits']} | {result['p50_ms']:.1f} | {result['p95_ms']:.1f} | "
            f"{result['p99_ms']:.1f} | {result['max_ms']:.1f} | {result['throughput_per_s']:.0f} | "
            f"{result['errors']} | {check['ratings_stored']}/{check['presentations']} | "
            f"{check['duplicated_presentations']} | {check['acknowledged_missing']} | "
            f"{'yes' if result['p95_ms'] <= P95_GOAL_MS else 'no'} |"
        )
    lines += [
        "",
        "Thinking time between a rater's ratings: human 2–4 s, quick 0.5–1.5 s, burst none (every rater "
        "submits again as soon as the previous answer arrives, so 100 requests are always in flight). The "
        "client (100 asyncio sessions) runs on the same CPUs as the server. Every acknowledged rating was "
        "stored and no presentation holds two ratings when the last three columns read "
        "`N/N`, `0`, `0`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ratings_load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (2)")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker (8)")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        parser.error("Set DATABASE_URL to a PostgreSQL server (and REDIS_URL): this benchmark measures them.")
    scenarios = {"human": (2.0, 4.0), "quick": (0.5, 1.5), "burst": (0.0, 0.0)}
    with tempfile.TemporaryDirectory(prefix="facet-ratings-load-") as scratch:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(os.environ["DATABASE_URL"]),
            "FACET_VAR_DIR": scratch,
            "FACET_MEDIA_ROOT": str(Path(scratch) / "media"),
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "FACET_LOG_LEVEL": "WARNING",
            # Loopback HTTP: no TLS redirect or secure-only cookies (production serves HTTPS).
            "FACET_HTTPS": "0",
        }
        _recreate_database(env["DATABASE_URL"])
        links = _setup(env, list(scenarios))
        server = _start_server(env, args.port, args.workers, args.threads, Path(scratch) / "gunicorn.log")
        try:
            results = {}
            for name, think in scenarios.items():
                raw = asyncio.run(_scenario(f"http://127.0.0.1:{args.port}", links[name], think))
                latencies = raw["latencies_ms"]
                results[name] = {
                    "think_s": list(think),
                    "submits": len(latencies),
                    "retries": raw["retries"],
                    "transport_retries": raw["transport_retries"],
                    "p50_ms": statistics.median(latencies),
                    "p95_ms": _percentile(latencies, 0.95),
                    "p99_ms": _percentile(latencies, 0.99),
                    "max_ms": max(latencies),
                    "seconds": raw["seconds"],
                    "throughput_per_s": len(latencies) / raw["seconds"],
                    "errors": len(raw["errors"]),
                    "error_samples": raw["errors"][:5],
                    "check": _verify(env, name, raw["acknowledged"]),
                }
        finally:
            server.terminate()
            server.wait(timeout=30)
    report = {
        "machine": machine_info(),
        "setup": {
            "server": f"{args.workers} workers × {args.threads} threads (gthread)",
            "raters": RATERS,
            "photos": PHOTOS,
            "photo_source": "London set neutral photos" if links else "",
            "load_average": " / ".join(f"{value:.1f}" for value in os.getloadavg()),
            "goal_p95_ms": P95_GOAL_MS,
        },
        "scenarios": results,
    }
    write_report(args.out, "ratings-load", report, _markdown(report))
    print(_markdown(report))
    failed = any(
        result["check"]["duplicated_presentations"]
        or result["check"]["acknowledged_missing"]
        or result["errors"]
        for result in results.values()
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
