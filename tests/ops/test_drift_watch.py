"""The drift watch: a sampled check stored per run, drift confirmed before it is reported, logged at
error level, repaired from the admin; beat runs it on its schedule."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from catalog import services
from catalog.models import Category, OutboxEvent, Product
from devtools.net import wait_for
from ops.drift_watch import drift_watch_run
from ops.models import DriftRun
from projections import relay
from projections.drift import check
from projections.tables import ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def projected(dynamodb, redis_clean) -> list[Product]:
    category = Category.objects.create(slug="tools", name="Tools")
    products = [services.product_create(sku=f"SKU-{n}", name=f"Tool {n}", category=category) for n in range(5)]
    relay.drain()
    assert check().clean
    return products


def test_a_clean_run_is_stored_clean(projected):
    run = drift_watch_run(sample=10)
    assert run.is_clean and run.checked == 5 + 1  # the products and the category tree
    assert DriftRun.objects.get() == run


def test_a_lost_document_is_reported_at_error_level_and_repaired_from_the_admin(projected, admin_client, caplog):
    ProductDocument.get("SKU-3").delete()  # a write DynamoDB lost, as an operator would find it
    with caplog.at_level(logging.ERROR, logger="ops.drift_watch"):
        run = drift_watch_run(sample=10)
    assert run.drifted == [["product", projected[3].pk]]
    assert run.missing == 1
    assert "drift watch: 1 aggregates drifted" in caplog.text

    page = admin_client.get("/admin/ops/driftrun/")
    assert page.status_code == 200 and 'value="repair"' in page.content.decode()
    response = admin_client.post("/admin/ops/driftrun/", {"action": "repair", "_selected_action": [run.pk]})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.repaired == 1 and run.repaired_at is not None
    assert check().clean


def test_a_change_in_flight_is_not_drift(projected):
    """Committed, not yet projected: the outbox row is pending, the relay will fix it."""
    services.price_set(product=projected[0], currency="EUR", amount=Decimal("1.00"))
    Category.objects.create(slug="garden", name="Garden")  # the tree too
    assert OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists()
    assert not check(sample=10).clean  # the raw check sees it ...
    assert drift_watch_run(sample=10).is_clean  # ... the watch knows it is in flight


def test_staff_without_the_repair_permission_get_no_repair_action(projected, client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_driftrun"))
    client.force_login(user)
    ProductDocument.get("SKU-1").delete()
    run = drift_watch_run(sample=10)
    page = client.get("/admin/ops/driftrun/").content.decode()
    assert "drift check" in page.lower() or "drift run" in page.lower()  # the list is shown
    assert 'value="repair"' not in page
    client.post("/admin/ops/driftrun/", {"action": "repair", "_selected_action": [run.pk]})
    run.refresh_from_db()
    assert run.repaired_at is None


@pytest.mark.integration
def test_beat_runs_the_watch_on_its_schedule(start_worker, projected):
    start_worker(DRIFT_WATCH_SECONDS="1")
    wait_for(lambda: DriftRun.objects.exists(), 60, 0.5, "a drift run by beat")
    assert DriftRun.objects.first().checked == 6
