"""What /api/health/ tells whom: anonymous callers get the overall status from a snapshot at most
HEALTH_CACHE_SECONDS old; details (and the error texts naming hosts) only for staff or a token."""

from __future__ import annotations

import orjson
import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client

from devtools.net import free_port

pytestmark = pytest.mark.django_db


class ConnectionCounter:
    """Connections a Redis server has accepted, read over one connection of its own."""

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.redis.ping()

    def __call__(self) -> int:
        return int(self.redis.info("stats")["total_connections_received"])


@pytest.fixture
def own_broker(settings, broker):
    """The health check's broker is the suite's own Redis, whose connections we can count."""
    settings.CELERY_BROKER_URL = broker.url
    return broker


def test_anonymous_callers_get_the_status_only(client, own_broker):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert orjson.loads(response.content) == {"status": "ok"}


def test_anonymous_callers_never_see_internal_hosts(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = client.get("/api/health/")
    assert response.status_code == 503
    assert orjson.loads(response.content) == {"status": "down"}
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content


def test_anonymous_polls_share_one_check(client, own_broker, settings):
    """A load balancer polling every second must not open a broker connection (or list DynamoDB
    tables) per request."""
    settings.HEALTH_CACHE_SECONDS = 3600
    connections_received = ConnectionCounter(own_broker.url)
    before = connections_received()
    assert client.get("/api/health/").status_code == 200
    after_first = connections_received()
    assert after_first > before  # the first poll checked the broker for real
    for _ in range(4):
        assert client.get("/api/health/").status_code == 200
    assert connections_received() == after_first


def test_staff_see_the_details(client, own_broker):
    staff = get_user_model().objects.create_user("ops", password="x", is_staff=True)
    client.force_login(staff)
    body = orjson.loads(client.get("/api/health/").content)
    assert body["status"] == "ok" and set(body["services"]) == {"postgres", "redis", "dynamodb", "broker"}


def test_a_logged_in_customer_does_not(client, own_broker):
    client.force_login(get_user_model().objects.create_user("customer", password="x"))
    assert orjson.loads(client.get("/api/health/").content) == {"status": "ok"}


def test_the_token_must_match(client, own_broker, settings):
    settings.HEALTH_TOKEN = "right"
    assert "services" in orjson.loads(client.get("/api/health/", HTTP_AUTHORIZATION="Bearer right").content)
    assert orjson.loads(client.get("/api/health/", HTTP_AUTHORIZATION="Bearer wrong").content) == {"status": "ok"}
    settings.HEALTH_TOKEN = ""
    assert orjson.loads(client.get("/api/health/", HTTP_AUTHORIZATION="Bearer ").content) == {"status": "ok"}


def test_health_is_rate_limited_per_client(own_broker, settings, redis_clean):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "health": 3}
    one, other = Client(REMOTE_ADDR="203.0.113.1"), Client(REMOTE_ADDR="203.0.113.2")
    assert [one.get("/api/health/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert other.get("/api/health/").status_code == 200
