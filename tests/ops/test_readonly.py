"""Read-only mode: writes refused from outside (API 503, admin refuses catalog edits), reads and
the relay unaffected, and the check costs no query per request."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from waffle.models import Switch

from catalog.models import OutboxEvent, Price, Product
from devtools.net import free_port, wait_for
from ops.readonly import READ_ONLY_SWITCH, is_read_only, read_only_set
from projections import relay
from projections.tables import ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def clerk() -> Client:
    """A staff API client allowed to change prices."""
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename="change_price"))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def put_price(client: Client, amount: str):
    return client.put(
        "/api/internal/products/SKU-1/price/", orjson.dumps({"currency": "EUR", "amount": amount}),
        content_type="application/json",
    )


def test_write_apis_answer_503_with_retry_after_while_reads_go_on(product, clerk, client, settings):
    read_only_set(on=True)
    response = put_price(clerk, "1.00")
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.READ_ONLY_RETRY_AFTER_SECONDS)
    assert orjson.loads(response.content)["error"]["code"] == "read_only"
    assert Price.objects.get(product=product).amount == Decimal("9.99")

    read = client.get("/api/products/SKU-1/")
    assert read.status_code == 200
    assert orjson.loads(read.content)["sku"] == "SKU-1"

    read_only_set(on=False)
    assert put_price(clerk, "1.00").status_code == 200
    assert Price.objects.get(product=product).amount == Decimal("1.00")


def test_the_check_costs_no_query_once_cached(product, clerk, settings):
    settings.CACHES = {**settings.CACHES, "flags": {**settings.CACHES["flags"], "TIMEOUT": 300}}  # no expiry mid-test
    read_only_set(on=True)
    assert put_price(clerk, "1.00").status_code == 503  # fills the cache
    with CaptureQueriesContext(connection) as queries:
        assert put_price(clerk, "2.00").status_code == 503
    assert [q["sql"] for q in queries.captured_queries] == []


def test_the_relay_keeps_draining(product):
    assert OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).exists()
    read_only_set(on=True)
    relay.drain()
    assert not OutboxEvent.objects.exists()
    assert ProductDocument.get("SKU-1", consistent_read=True).version == Product.objects.get(sku="SKU-1").version


def test_the_admin_shows_a_banner_and_refuses_catalog_edits(product, admin_client):
    change_url = f"/admin/catalog/product/{product.pk}/change/"
    assert "read-only-banner" not in admin_client.get("/admin/").content.decode()
    read_only_set(on=True)
    assert "read-only-banner" in admin_client.get("/admin/").content.decode()
    page = admin_client.get(change_url)
    assert page.status_code == 200  # shown, read-only
    assert 'name="_save"' not in page.content.decode()
    refused = admin_client.post(change_url, {"sku": "SKU-1", "name": "Renamed", "category": product.category_id})
    assert refused.status_code == 403
    assert admin_client.get("/admin/catalog/product/add/").status_code == 403
    assert Product.objects.get(pk=product.pk).name == "Hammer"


def test_the_command_and_the_admin_action_switch_it_at_once(admin_client, capsys):
    call_command("readonly", "on")
    assert "read-only: on" in capsys.readouterr().out
    assert is_read_only()
    switch = Switch.objects.get(name=READ_ONLY_SWITCH)
    response = admin_client.post(
        "/admin/waffle/switch/", {"action": "disable_switches", "_selected_action": [switch.pk]}
    )
    assert response.status_code == 302
    assert not is_read_only()  # no wait for the cached value to expire
    call_command("readonly")
    assert "read-only: off" in capsys.readouterr().out


def test_a_switch_changed_behind_the_cache_is_seen_once_its_cached_value_expires(settings):
    """Raw SQL clears no cache: the cached value lives FLAG_CACHE_SECONDS (here 1) at most."""
    settings.CACHES = {**settings.CACHES, "flags": {**settings.CACHES["flags"], "TIMEOUT": 1}}
    read_only_set(on=False)
    assert not is_read_only()  # cached
    Switch.objects.filter(name=READ_ONLY_SWITCH).update(active=True)
    wait_for(is_read_only, 10, 0.2, "the raw change seen")


def test_without_redis_the_switch_is_read_from_postgres(settings):
    read_only_set(on=True)
    settings.CACHES = {**settings.CACHES, "flags": {**settings.CACHES["flags"], "LOCATION": f"redis://127.0.0.1:{free_port()}/0"}}
    assert is_read_only()
