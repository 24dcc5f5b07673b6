"""GET /api/health/ checks every dependency for real; staff and monitoring (HEALTH_TOKEN) see which
one is down, anonymous callers only the overall status from a short-lived snapshot."""

from __future__ import annotations

import socket

import pytest

from devtools.net import free_port
from hybridsite import dynamodb
from projections.tables import ProductDocument
from tests.services import TcpProxy

SERVICES = {"postgres", "redis", "dynamodb", "broker"}

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(client, settings):
    """The detailed view, as monitoring sees it."""
    settings.HEALTH_TOKEN = "monitoring-token"
    client.defaults["HTTP_AUTHORIZATION"] = "Bearer monitoring-token"
    return client


def get_health(client) -> tuple[int, dict]:
    response = client.get("/api/health/")
    assert response["Content-Type"] == "application/json"
    return response.status_code, response.json()


def assert_up(body: dict, *names: str) -> None:
    for name in names:
        service = body["services"][name]
        assert service["status"] == "up", service
        assert isinstance(service["latency_ms"], float)
        assert service["latency_ms"] >= 0


def test_all_services_up(client) -> None:
    status, body = get_health(client)
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["down"] == []
    assert set(body["services"]) == SERVICES
    assert_up(body, *SERVICES)


def test_dead_dynamodb_is_reported_and_recovers(client, dynamodb_proxy: TcpProxy) -> None:
    status, body = get_health(client)
    assert status == 200, body
    assert dynamodb.connection(ProductDocument).host == dynamodb_proxy.url

    dynamodb_proxy.down()
    status, body = get_health(client)
    assert status == 503
    assert body["status"] == "down"
    assert body["down"] == ["dynamodb"]
    assert body["services"]["dynamodb"]["status"] == "down"
    assert body["services"]["dynamodb"]["error"]
    assert_up(body, "postgres", "redis", "broker")

    dynamodb_proxy.up()
    status, body = get_health(client)
    assert status == 200, body
    assert body["down"] == []


def test_hanging_dynamodb_costs_one_attempt(client, monkeypatch) -> None:
    """A health check that retries answers after several timeouts; the balancer gives up first.

    The endpoint completes TCP handshakes in the kernel but never answers, so every attempt the
    check makes is one queued connection, counted afterwards.
    """
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        monkeypatch.setattr(ProductDocument.Meta, "host", f"http://127.0.0.1:{hole.getsockname()[1]}")
        monkeypatch.setattr(ProductDocument.Meta, "read_timeout_seconds", 0.3)
        monkeypatch.setattr(ProductDocument, "_connection", None)

        status, body = get_health(client)

        hole.setblocking(False)
        attempts = 0
        while True:
            try:
                conn, _ = hole.accept()
            except BlockingIOError:
                break
            conn.close()
            attempts += 1
    assert status == 503
    assert body["down"] == ["dynamodb"]
    assert "timeout" in body["services"]["dynamodb"]["error"].lower()
    assert attempts == 1


def test_dead_broker_is_reported(client, settings) -> None:
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    status, body = get_health(client)
    assert status == 503
    assert body["status"] == "down"
    assert body["down"] == ["broker"]
    assert body["services"]["broker"]["status"] == "down"
    assert "error" in body["services"]["broker"]
    assert_up(body, "postgres", "redis", "dynamodb")


def test_health_is_never_cached(client) -> None:
    """A cached "ok" in front of a load balancer would hide an outage."""
    response = client.get("/api/health/")
    assert "no-cache" in response["Cache-Control"]
    assert "no-store" in response["Cache-Control"]


def test_health_only_answers_get(client) -> None:
    assert client.post("/api/health/").status_code == 405
