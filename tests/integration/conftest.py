"""Fixtures that run jobs on a real Celery worker process against the test database.

`celery_worker` starts `celery -A workers worker` (prefork, concurrency 1, queues quick, cpu and gpu) with
DATABASE_URL pointing at pytest-django's test database, this test's media folder and the test
process's broker. Use it with `transactional_db` (which `live_server` implies): the worker is
another process and only sees committed rows.
"""

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from bench.worker import (
    RunningWorker,
    WorkerStartError,
    database_url,
    purge_broker,
    start_worker,
    stop_worker,
    worker_environment,
)

JOB_TIMEOUT_SECONDS = 120.0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Lets fixtures know at teardown whether the test failed, to print the worker log only then.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


class WorkerLauncher:
    """Starts real workers for one test (`launcher()` → RunningWorker) and remembers them for teardown."""

    def __init__(self, env: Mapping[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: list[RunningWorker] = []

    def __call__(self) -> RunningWorker:
        try:
            worker = start_worker(
                self.env, self.log_dir / f"worker-{len(self.workers) + 1}.log", name_prefix="test"
            )
        except WorkerStartError as error:
            pytest.fail(str(error))
        self.workers.append(worker)
        return worker

    def logs(self, characters: int = 6000) -> str:
        if not self.workers:
            return "(no worker was started)"
        return "\n".join(
            f"----- log of Celery worker {worker.hostname} (running: {worker.is_alive()}) -----\n"
            f"{worker.log_tail(characters)}"
            for worker in self.workers
        )

    def stop_all(self) -> None:
        for worker in self.workers:
            stop_worker(worker)


@pytest.fixture
def start_celery_worker(request: pytest.FixtureRequest, transactional_db, settings, tmp_path: Path):
    """A `WorkerLauncher` on the test database; the broker is purged once, at set-up.

    Messages sent after set-up and before a worker starts (a job cancelled while no worker ran, say)
    stay queued for it. Workers are stopped at teardown, and their logs printed if the test failed.
    """
    from django.db import connection

    purge_broker()
    env = worker_environment(
        database=database_url(connection.settings_dict), media_root=Path(settings.MEDIA_ROOT)
    )
    launcher = WorkerLauncher(env, tmp_path)
    yield launcher
    launcher.stop_all()
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call")
    )
    if failed:
        print(launcher.logs(20_000))


@pytest.fixture
def celery_worker(start_celery_worker: WorkerLauncher) -> RunningWorker:
    """A real Celery worker process, ready (its heartbeat is in the test database), on a purged broker."""
    return start_celery_worker()


@pytest.fixture
def wait_for_job(start_celery_worker: WorkerLauncher) -> Callable[..., object]:
    """`wait_for_job(job_id, timeout=120, expect="succeeded")` → the finished AnalysisJob.

    Polls the database until the job is neither queued nor running. Fails on timeout, or when the job
    ends in another status than `expect` (None: any), with the job's error and the worker log.
    """
    from django.db import close_old_connections

    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import ACTIVE_STATUSES, RunStatus

    def wait(job_id: int, timeout: float = JOB_TIMEOUT_SECONDS, expect: str | None = RunStatus.SUCCEEDED):
        deadline = time.monotonic() + timeout
        while True:
            close_old_connections()
            job = AnalysisJob.objects.get(pk=job_id)
            if job.status not in ACTIVE_STATUSES:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Job {job_id} is still {job.status} ({job.progress_message!r}) after {timeout:.0f} s."
                    f"\n{start_celery_worker.logs()}"
                )
            time.sleep(0.2)
        if expect is not None and job.status != expect:
            pytest.fail(
                f"Job {job_id} ended {job.status}, expected {expect}; error: {job.error or '(none)'}"
                f"\n{start_celery_worker.logs()}"
            )
        return job

    return wait


# --- browser tests --------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A headless Debian Chromium page driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; Django's ORM refuses that unless told.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        # Every browser test doubles as a Content-Security-Policy check: nothing the pages do is refused.
        csp_violations = []
        page.on(
            "console",
            lambda message: (
                csp_violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        yield page
        context.close()
        browser.close()
        # While Playwright's event loop runs, the ORM in this thread uses its own connections;
        # close them or the test database cannot be dropped.
        connections.close_all()
    assert not csp_violations, "The Content-Security-Policy refused:\n" + "\n".join(csp_violations)


@pytest.fixture
def log_in(browser_page, live_server) -> Callable[[str, str], None]:
    """Log the browser page in through the login form."""

    def submit(username: str, password: str) -> None:
        browser_page.goto(f"{live_server.url}/accounts/login/")
        browser_page.fill("#id_username", username)
        browser_page.fill("#id_password", password)
        browser_page.click("button[type=submit]")
        browser_page.wait_for_url(lambda url: "/accounts/login/" not in url)

    return submit
