"""D11: /healthz checks the database and the broker and says which failed."""

import pytest
from django.db import connection
from django.test import Client

pytestmark = pytest.mark.django_db


def test_healthy():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_broker_down_is_a_503_naming_the_broker(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "unreachable"}


def test_database_down_is_a_503_naming_the_database(monkeypatch):
    def fail(*args, **kwargs):
        raise connection.OperationalError("database is down (test)")

    monkeypatch.setattr(connection, "cursor", fail)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable" and "down" not in response.content.decode()
