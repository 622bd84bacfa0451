"""D4, D5, D6, D11 (token endpoint), D13: log-in throttling per account and per real client address,
password-reset throttling, expiring and revocable API tokens."""

import datetime

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from webapp.audit.models import AuditAction, AuditEvent
from webapp.audit.services import client_ip

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.FACET_LOGIN_FAILURES_PER_ACCOUNT = 5
    settings.FACET_LOGIN_FAILURES_PER_ADDRESS = 8
    settings.FACET_PASSWORD_RESETS_PER_EMAIL = 3
    settings.FACET_PASSWORD_RESETS_PER_ADDRESS = 5


def html_login(username: str, password: str, **extra):
    return Client(**extra).post(reverse("login"), {"username": username, "password": password})


def token_login(username: str, password: str, **extra):
    return APIClient(**extra).post("/api/auth/token/", {"username": username, "password": password})


# Log-in throttle ------------------------------------------------------------------------------------


@pytest.mark.parametrize("login", [html_login, token_login])
def test_an_account_is_throttled_after_repeated_failures_even_with_the_right_password(login, make_user):
    make_user("alice")
    statuses = [login("alice", "wrong").status_code for _ in range(5)]
    assert 429 not in statuses
    refused = login("alice", PASSWORD)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed log-ins for this account" in refused.content.decode()


def test_the_html_login_page_is_throttled_within_40_fast_attempts(make_user):
    make_user("bob")
    statuses = [html_login("bob", f"guess{n}").status_code for n in range(40)]
    assert statuses.count(429) == 35


def test_a_success_resets_the_account_count(make_user):
    make_user("carol")
    for _ in range(4):
        html_login("carol", "wrong")
    assert html_login("carol", PASSWORD).status_code == 302
    for _ in range(4):
        assert html_login("carol", "wrong").status_code == 200


def test_one_address_guessing_many_accounts_is_throttled(make_user):
    for n in range(10):
        make_user(f"user{n}")
    statuses = [html_login(f"user{n}", "wrong").status_code for n in range(10)]
    assert statuses[:8] == [200] * 8 and statuses[8:] == [429, 429]
    # Another address may still log in to an account that is not throttled.
    assert html_login("user9", PASSWORD, REMOTE_ADDR="10.9.9.9").status_code == 302


def test_a_rotating_x_forwarded_for_does_not_bypass_the_address_limit(make_user, settings):
    """D5: the probe rotated X-Forwarded-For and got 60 of 60 attempts through."""
    settings.FACET_LOGIN_FAILURES_PER_ACCOUNT = 1000
    make_user("dave")
    statuses = [
        token_login("dave", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(60)
    ]
    assert statuses.count(429) == 52


def test_the_client_address_comes_from_the_configured_number_of_proxies(rf, settings):
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7")
    settings.FACET_TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.FACET_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "198.51.100.7"  # what our proxy saw; the client wrote 6.6.6.6
    settings.FACET_TRUSTED_PROXY_COUNT = 3  # fewer entries than proxies: not through the proxies
    assert client_ip(request) == "10.0.0.2"


def test_behind_a_proxy_addresses_are_told_apart_by_the_proxys_entry(make_user, settings):
    settings.FACET_TRUSTED_PROXY_COUNT = 1
    settings.FACET_LOGIN_FAILURES_PER_ACCOUNT = 1000
    make_user("erin")
    for n in range(8):
        html_login("erin", "wrong", HTTP_X_FORWARDED_FOR=f"6.6.6.{n}, 198.51.100.7")
    response = html_login("erin", "wrong", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7")
    assert response.status_code == 429
    assert html_login("erin", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8").status_code == 302


def test_the_admin_login_is_throttled_too(make_user):
    make_user("root", staff=True)
    for _ in range(5):
        Client().post("/admin/login/", {"username": "root", "password": "wrong"})
    page = Client().post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert "Too many failed log-ins" in page.content.decode()


def test_the_token_endpoint_works_with_the_cache_down(make_user, settings):
    """D11: the old throttle kept its counts in Redis and answered 500 while Redis was down."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    make_user("frank")
    assert token_login("frank", "wrong").status_code == 400
    assert token_login("frank", PASSWORD).status_code == 200


# Password reset --------------------------------------------------------------------------------------


def test_password_reset_requests_are_throttled_and_audited(make_user):
    make_user("gina")
    statuses = [
        Client().post(reverse("password_reset"), {"email": "gina@example.org"}).status_code for _ in range(15)
    ]
    assert statuses[:3] == [302] * 3 and set(statuses[3:]) == {429}
    assert len(mail.outbox) == 3
    assert AuditEvent.objects.filter(action=AuditAction.PASSWORD_RESET).count() == 3
    other = [
        Client().post(reverse("password_reset"), {"email": f"x{n}@example.org"}).status_code for n in range(3)
    ]
    assert other == [302, 302, 429]  # the address limit (5) counts every e-mail asked for


# API tokens ----------------------------------------------------------------------------------------


def authed(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_tokens_expire(make_user, settings):
    make_user("hank")
    body = token_login("hank", PASSWORD).json()
    assert "expires_at" in body
    assert authed(body["token"]).get("/api/studies/").status_code == 200
    Token.objects.filter(key=body["token"]).update(created=timezone.now() - datetime.timedelta(days=2))
    refused = authed(body["token"]).get("/api/studies/")
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]
    fresh = token_login("hank", PASSWORD).json()["token"]
    assert fresh != body["token"] and authed(fresh).get("/api/studies/").status_code == 200


def test_logout_revokes_api_tokens(make_user):
    make_user("ivy")
    token = token_login("ivy", PASSWORD).json()["token"]
    browser = Client()
    browser.post(reverse("login"), {"username": "ivy", "password": PASSWORD})
    browser.post(reverse("logout"))
    assert authed(token).get("/api/studies/").status_code == 401


def test_delete_revokes_the_callers_token(make_user):
    make_user("jack")
    token = token_login("jack", PASSWORD).json()["token"]
    assert authed(token).delete("/api/auth/token/").status_code == 204
    assert authed(token).get("/api/studies/").status_code == 401


def test_password_change_revokes_api_tokens(make_user):
    make_user("kim")
    token = token_login("kim", PASSWORD).json()["token"]
    browser = Client()
    browser.post(reverse("login"), {"username": "kim", "password": PASSWORD})
    new = "another long passphrase 42"
    response = browser.post(
        reverse("password_change"), {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    assert authed(token).get("/api/studies/").status_code == 401


def test_password_reset_revokes_api_tokens(make_user):
    user = make_user("lee")
    token = token_login("lee", PASSWORD).json()["token"]
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    client = Client()
    start = client.get(
        reverse("password_reset_confirm", args=[uid, default_token_generator.make_token(user)])
    )
    new = "another long passphrase 42"
    done = client.post(start["Location"], {"new_password1": new, "new_password2": new})
    assert done.status_code == 302
    assert authed(token).get("/api/studies/").status_code == 401


def test_a_last_login_update_does_not_revoke_tokens(make_user):
    make_user("max")
    token = token_login("max", PASSWORD).json()["token"]
    assert html_login("max", PASSWORD).status_code == 302  # saves last_login only
    assert authed(token).get("/api/studies/").status_code == 200
