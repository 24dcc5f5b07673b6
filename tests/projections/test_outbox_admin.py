"""Dead-lettered changes are visible in the admin and an operator can retry them."""

import pytest

from catalog.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead_event() -> OutboxEvent:
    return OutboxEvent.objects.create(
        aggregate_type="product", aggregate_id=4242, status=OutboxEvent.Status.DEAD, attempts=5,
        last_error=(
            "PermanentProjectionError: product#4242: document is 512,000 bytes; DynamoDB items are limited to 400 KB"
        ),
    )


def test_dead_letters_are_listed_with_their_error(admin_client, dead_event):
    response = admin_client.get("/admin/catalog/outboxevent/?status__exact=dead")
    assert response.status_code == 200
    assert b"4242" in response.content and b"400 KB" in response.content


def test_retry_action_makes_them_pending_again(admin_client, dead_event):
    response = admin_client.post(
        "/admin/catalog/outboxevent/", {"action": "retry", "_selected_action": [dead_event.pk]}
    )
    assert response.status_code == 302
    dead_event.refresh_from_db()
    assert dead_event.status == OutboxEvent.Status.PENDING and dead_event.attempts == 0


def test_anonymous_is_sent_to_login(client, dead_event):
    response = client.get("/admin/catalog/outboxevent/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_stats_command_prints_backlog_and_lag(dead_event, redis_clean):
    from io import StringIO

    from django.core.management import call_command

    from projections import metrics

    metrics.incr("relay.rows", 7)
    metrics.observe_lag([10.0, 20.0, 30.0])
    out = StringIO()
    call_command("projections_stats", "--reset", stdout=out)
    lines = out.getvalue().splitlines()
    assert "relay.rows=7" in lines
    assert "outbox.pending=0 outbox.dead=1" in lines
    assert "lag_ms samples=3 p50=20.0 p95=29.0 p99=29.8" in lines
    assert metrics.snapshot() == {}
