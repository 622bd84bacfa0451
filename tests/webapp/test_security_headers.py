"""D12 and issue 16 item 9: production settings are secure by default (docker-compose's environment
passes `manage.py check --deploy`), and pages send CSP, framing, cache and cookie protections."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.test import Client
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def compose_environment() -> dict[str, str]:
    """The web service's environment in docker-compose.yml, with each `${VAR:-default}` at its default."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    environment = compose["x-app"]["environment"]
    return {
        name: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)).replace("${DJANGO_SECRET_KEY:-}", "")
        for name, value in environment.items()
    }


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "FACET_HTTPS"))}
    env.update(compose_environment())
    # A deployment sets its own key (docker-compose reads it from .env); the rest is compose's default.
    env.update(DJANGO_SECRET_KEY=secrets.token_urlsafe(60), **overrides)
    env.update(DATABASE_URL=os.environ.get("DATABASE_URL", ""), REDIS_URL=os.environ.get("REDIS_URL", ""))
    env["FACET_MEDIA_ROOT"] = str(ROOT / "var" / "media")
    return {key: value for key, value in env.items() if value != "" or key == "DJANGO_CSRF_TRUSTED_ORIGINS"}


def test_check_deploy_is_clean_with_the_compose_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
# Pages render here without `collectstatic` (the production manifest is built at deployment).
settings.STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
client = Client(raise_request_exception=False, HTTP_HOST="localhost")
plain = client.get("/accounts/login/")
secure = client.get("/accounts/login/", secure=True)
via_proxy = client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https")
health = client.get("/healthz")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "secure_headers": dict(secure.headers),
    "csrf_cookie_secure": bool(secure.cookies["csrftoken"]["secure"]),
    "csrf_cookie_samesite": secure.cookies["csrftoken"]["samesite"],
    "csrf_cookie_httponly": bool(secure.cookies["csrftoken"]["httponly"]),
    "via_proxy": via_proxy.status_code,
    "health": health.status_code,
}))
"""


def test_production_answers_are_https_only_with_hsts_and_csp():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=production_env(DJANGO_SETTINGS_MODULE="webapp.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://localhost/accounts/login/"]
    assert seen["via_proxy"] == 200  # docker-compose sets DJANGO_BEHIND_TLS_PROXY: the proxy's HTTPS counts
    assert seen["health"] in (200, 503)  # health checks inside the host speak plain HTTP
    headers = seen["secure_headers"]
    assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert seen["csrf_cookie_secure"] and seen["csrf_cookie_httponly"]
    assert seen["csrf_cookie_samesite"] == "Lax"


@pytest.mark.django_db
def test_pages_and_api_answers_send_csp_and_no_store(study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    client = Client()
    client.force_login(study_with_members["clinician"])
    for url in (
        reverse("studies:photo_detail", args=[photo.pk]),
        f"/api/photos/{photo.pk}/",
        "/api/nothing/",
    ):
        response = client.get(url)
        assert "no-store" in response["Cache-Control"], url
        assert "default-src 'self'" in response["Content-Security-Policy"], url
    assert "no-store" in client.get(reverse("studies:photo_image", args=[photo.pk]))["Cache-Control"]


def test_no_template_has_an_inline_script_or_event_handler():
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        offenders += [f"{template.relative_to(ROOT)}: {match}" for match in INLINE_SCRIPT.findall(text)]
        offenders += [f"{template.relative_to(ROOT)}: {match}" for match in INLINE_HANDLER.findall(text)]
    assert not offenders, "\n".join(offenders)
