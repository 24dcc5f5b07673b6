"""The orders admin (read-only) and the orders report, through the real URLs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from carts.models import CartCopy
from orders.models import Order
from orders.services import order_create
from projections.tables import CustomerOrder

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orders(hammer, saw, alice, bob) -> list[Order]:
    """Alice: 2 hammers and a saw, yesterday at noon; Bob: 1 hammer an hour later and 3 saws three
    days before. (Set times: a test must not depend on which side of midnight it runs.)"""
    placed = [
        order_create(user_id=alice.user_id, idempotency_key="a", quantities={"SKU-1": 2, "SKU-2": 1}, cart_version=1),
        order_create(user_id=bob.user_id, idempotency_key="b", quantities={"SKU-1": 1}, cart_version=1),
        order_create(user_id=bob.user_id, idempotency_key="c", quantities={"SKU-2": 3}, cart_version=2),
    ]
    noon = (timezone.now() - timedelta(days=1)).replace(hour=12, minute=0)
    for order, when in zip(placed, (noon, noon + timedelta(hours=1), noon - timedelta(days=3))):
        Order.objects.filter(pk=order.pk).update(created_at=when)
    return placed


def test_orders_per_day(admin_client: Client, orders):
    response = admin_client.get(reverse("admin:orders_report"))
    assert response.status_code == 200
    rows = [(row.orders, row.units, row.revenue) for row in response.context["orders_per_day"]]
    assert rows == [(2, 4, {"EUR": Decimal("54.47")}), (1, 3, {"EUR": Decimal("73.50")})]
    assert '<td class="revenue">54.47 EUR</td>' in response.content.decode()
    assert reverse("admin:orders_report") in admin_client.get(reverse("admin:index")).content.decode()


def test_the_report_reads_postgres_even_with_dynamodb_unreachable(admin_client: Client, orders, dynamodb_proxy):
    """The orders are not projected (the relay has not run) and DynamoDB cannot be reached: the
    report adds them up all the same, from Postgres."""
    assert not list(CustomerOrder.scan())
    dynamodb_proxy.down()

    response = admin_client.get(reverse("admin:orders_report"))

    assert response.status_code == 200
    rows = [(row.orders, row.units, row.revenue) for row in response.context["orders_per_day"]]
    assert rows == [(2, 4, {"EUR": Decimal("54.47")}), (1, 3, {"EUR": Decimal("73.50")})]
    assert '<td class="revenue">54.47 EUR</td>' in response.content.decode()


def test_an_order_is_shown_with_its_lines_and_warehouses_and_cannot_be_changed(admin_client: Client, orders):
    order = orders[0]
    response = admin_client.get(reverse("admin:orders_order_change", args=[order.pk]))
    content = response.content.decode()
    assert response.status_code == 200 and "SKU-1" in content and "BER1 × 2" in content
    assert 'name="_save"' not in content
    response = admin_client.post(reverse("admin:orders_order_change", args=[order.pk]), {"note": "changed"})
    assert response.status_code == 403
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403
    changelist = admin_client.get(reverse("admin:orders_order_changelist"), {"q": "bob"}).context["cl"]
    assert {o.pk for o in changelist.result_list} == {orders[1].pk, orders[2].pk}


def test_the_report_is_for_staff_who_may_view_orders(client: Client, orders):
    response = client.get(reverse("admin:orders_report"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(reverse("admin:orders_report")).status_code == 403
    assert reverse("admin:orders_report") not in client.get(reverse("admin:index")).content.decode()
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="orders", codename="view_order"))
    assert client.get(reverse("admin:orders_report")).status_code == 200
    assert reverse("admin:orders_report") in client.get(reverse("admin:index")).content.decode()


def test_demand_counts_active_carts_against_stock(admin_client: Client, hammer, saw, alice, bob):
    """From the carts' Postgres copy: expired and removed carts do not count, nor do carts past
    their idle time that DynamoDB's TTL has not deleted yet."""
    now = timezone.now()
    carol = get_user_model().objects.create_user("carol")
    dave = get_user_model().objects.create_user("dave")
    for user_id, lines, status, expires_at in (
        (alice.user_id, {"SKU-1": 4, "SKU-2": 1}, CartCopy.Status.ACTIVE, now + timedelta(days=1)),
        (bob.user_id, {"SKU-1": 3}, CartCopy.Status.ACTIVE, now + timedelta(days=1)),
        (carol.pk, {"SKU-2": 50}, CartCopy.Status.ACTIVE, now - timedelta(hours=1)),
        (dave.pk, {"SKU-2": 50, "GONE-1": 1}, CartCopy.Status.EXPIRED, None),
    ):
        CartCopy.objects.create(
            user_id=user_id, version=1, lines=lines, status=status, updated_at=now, expires_at=expires_at
        )

    response = admin_client.get(reverse("admin:orders_report"))

    rows = [(row.sku, row.carts, row.units, row.stock, row.short) for row in response.context["demand"]]
    assert rows == [("SKU-1", 2, 7, 5, 2), ("SKU-2", 1, 1, 10, 0)]
    assert '<td class="short"><strong>2</strong></td>' in response.content.decode()
