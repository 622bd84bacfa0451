"""Start and stop a real Celery worker subprocess on a given database, broker and media folder.

Used by the benchmarks and by the integration tests' fixtures (tests/integration/conftest.py), so
both run jobs exactly as production does: a separate `celery worker` process, prefork pool,
concurrency 1, consuming the quick, cpu and gpu queues (or the queues given).
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 30.0
# Nothing may download weights at run time, in the worker either.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1", "YOLO_AUTOINSTALL": "False"}


class WorkerStartError(RuntimeError):
    """The worker exited or did not report ready in time; the message ends with its log."""


@dataclass
class RunningWorker:
    process: subprocess.Popen
    hostname: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, characters: int = 4000) -> str:
        return self.log()[-characters:]

    def is_alive(self) -> bool:
        return self.process.poll() is None


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """A DATABASE_URL naming the database Django is connected to (for tests: the test database)."""
    engine = settings_dict["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    if engine.startswith("django.db.backends.postgresql"):
        user = quote(settings_dict.get("USER") or "", safe="")
        password = settings_dict.get("PASSWORD") or ""
        credentials = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{credentials}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"
    raise ValueError(
        f"Cannot hand the database engine {engine!r} to a worker process; use SQLite or PostgreSQL."
    )


def worker_environment(
    *, database: str, media_root: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """This process's environment, pointed at `database` and `media_root`, with the same broker.

    The broker is the same because REDIS_URL (or, without it, FACET_VAR_DIR and its broker folder)
    is inherited from the settings this process runs with.
    """
    from django.conf import settings

    env = {**os.environ, **OFFLINE_ENV}
    env.update(
        DATABASE_URL=database,
        FACET_MEDIA_ROOT=str(media_root),
        FACET_VAR_DIR=str(settings.VAR_DIR),
        DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "webapp.settings"),
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    else:
        env.pop("REDIS_URL", None)
    env.update(extra or {})
    return env


def purge_broker() -> int:
    """Drop every message waiting in the quick, cpu and gpu queues, and on Redis the unacknowledged ones too.

    Messages left by earlier runs name jobs of another database state; a fresh test database reuses
    their ids. Returns the number of waiting messages purged.
    """
    from workers.celery import app

    purged = app.control.purge() or 0
    with app.connection_for_write() as connection:
        if connection.transport.driver_type == "redis":
            channel = connection.default_channel
            channel.client.delete(channel.unacked_key, channel.unacked_index_key)
    return purged


def _worker_ready(hostname: str) -> bool:
    from django.db import close_old_connections

    from webapp.runs.models import WorkerHeartbeat

    close_old_connections()
    return WorkerHeartbeat.objects.filter(hostname=hostname).exists()


def start_worker(
    env: Mapping[str, str],
    log_path: Path,
    *,
    name_prefix: str = "worker",
    queues: str = "quick,cpu,gpu",
) -> RunningWorker:
    """Start `celery -A workers worker` on ``queues`` and wait until its heartbeat row appears in the
    database."""
    celery = Path(sys.executable).parent / "celery"
    node = f"{name_prefix}-{uuid.uuid4().hex[:12]}"
    hostname = f"{node}@{socket.gethostname()}"
    command = [
        str(celery),
        "-A",
        "workers",
        "worker",
        "-Q",
        queues,
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"{node}@%h",
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        # Its own process group, so that a stuck worker can be killed with its pool children.
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = RunningWorker(process=process, hostname=hostname, log_path=log_path)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _worker_ready(hostname):
        if not worker.is_alive():
            raise WorkerStartError(
                f"The Celery worker exited with code {process.returncode}:\n{worker.log_tail()}"
            )
        if time.monotonic() > deadline:
            stop_worker(worker)
            raise WorkerStartError(
                f"The Celery worker wrote no heartbeat within {READY_TIMEOUT_SECONDS:.0f} s:\n"
                f"{worker.log_tail()}"
            )
        time.sleep(0.2)
    return worker


def stop_worker(worker: RunningWorker) -> None:
    """Warm shutdown (SIGTERM lets a running task finish), then SIGKILL of its process group."""
    if not worker.is_alive():
        return
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
    _wait_for_process_group_exit(worker.process.pid)


def _wait_for_process_group_exit(group_id: int, timeout: float = 10.0) -> None:
    # Pool children may outlive the main process briefly; until they exit they hold database sessions,
    # which would stop the test database from being dropped.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group_id, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    try:
        os.killpg(group_id, signal.SIGKILL)
    except ProcessLookupError:
        return


@contextmanager
def celery_worker(
    env: Mapping[str, str], log_path: Path, *, name_prefix: str = "worker"
) -> Iterator[RunningWorker]:
    """A running worker for the duration of the block, stopped cleanly afterwards."""
    worker = start_worker(env, log_path, name_prefix=name_prefix)
    try:
        yield worker
    finally:
        stop_worker(worker)
