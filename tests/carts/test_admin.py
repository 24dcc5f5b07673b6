"""The abandoned-carts report: carts of the Postgres copy idle longer than N hours, valued at
Postgres prices, through the admin's real URL."""

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
from catalog import services
from catalog.models import Product

pytestmark = pytest.mark.django_db(transaction=True)

REPORT = reverse("admin:carts_abandoned")


@pytest.fixture
def shop(tools) -> None:
    """SKU-1 at EUR 9.99 and USD 11.00; SKU-2 at EUR 24.50 only; SKU-3 at EUR 5.00, no longer sold."""
    for sku, prices in (("SKU-1", {"EUR": "9.99", "USD": "11.00"}), ("SKU-2", {"EUR": "24.50"}),
                        ("SKU-3", {"EUR": "5.00"})):
        product = services.product_create(sku=sku, name=sku, category=tools)
        for currency, amount in prices.items():
            services.price_set(product=product, currency=currency, amount=Decimal(amount))
    Product.objects.filter(sku="SKU-3").update(is_active=False)


def cart(name: str, lines: dict[str, int], *, idle: timedelta, status: str = CartCopy.Status.ACTIVE,
         expires_in: timedelta = timedelta(days=10)) -> CartCopy:
    """A cart as the write-back consumer copies it, last changed ``idle`` ago."""
    user = get_user_model().objects.create_user(name, email=f"{name}@example.com")
    now = timezone.now()
    return CartCopy.objects.create(
        user=user, version=1, lines=lines, status=status, updated_at=now - idle, expires_at=now + expires_in
    )


def listed(response) -> dict[str, tuple]:
    return {c.username: (c.lines, c.units, c.unavailable, c.value) for c in response.context["report"].carts}


def test_idle_carts_are_listed_with_their_value_and_fresh_or_gone_ones_are_not(admin_client: Client, shop):
    cart("ann", {"SKU-1": 2, "SKU-2": 1}, idle=timedelta(hours=30))  # no USD price of SKU-2: EUR only
    cart("bob", {"SKU-1": 3, "SKU-3": 4}, idle=timedelta(days=3))  # SKU-3 no longer sold: not in the value
    cart("cid", {"SKU-2": 1}, idle=timedelta(hours=1))  # fresh
    cart("dan", {}, idle=timedelta(days=2))  # emptied (by an order): nothing abandoned
    cart("eve", {"SKU-2": 9}, idle=timedelta(days=2), status=CartCopy.Status.REMOVED)
    cart("fay", {"SKU-2": 9}, idle=timedelta(days=5), expires_in=-timedelta(hours=1))  # past its idle time

    response = admin_client.get(REPORT)

    assert response.status_code == 200
    assert listed(response) == {
        "ann": (2, 3, 0, {"EUR": Decimal("44.48")}),
        "bob": (2, 7, 1, {"EUR": Decimal("29.97"), "USD": Decimal("33.00")}),
    }
    assert [c.username for c in response.context["report"].carts] == ["bob", "ann"]  # the longest idle first
    report = response.context["report"]
    assert (report.count, report.lines, report.units) == (2, 4, 10)
    assert report.value == {"EUR": Decimal("74.45"), "USD": Decimal("33.00")}
    content = response.content.decode()
    assert '<td class="value">74.45 EUR, 33.00 USD</td>' in content
    assert "bob@example.com" in content and "3\xa0days" in content
    assert REPORT in admin_client.get(reverse("admin:index")).content.decode()


def test_hours_come_from_the_setting_or_the_page(admin_client: Client, shop, settings):
    cart("ann", {"SKU-1": 1}, idle=timedelta(hours=5))
    cart("bob", {"SKU-1": 1}, idle=timedelta(hours=50))
    assert set(listed(admin_client.get(REPORT))) == {"bob"}
    assert set(listed(admin_client.get(REPORT, {"hours": "2"}))) == {"ann", "bob"}
    settings.ABANDONED_CART_HOURS = 100
    response = admin_client.get(REPORT)
    assert set(listed(response)) == set() and response.context["hours"] == 100
    assert "No cart has been left that long." in response.content.decode()


@pytest.mark.parametrize("hours", ["abc", "0", "-3", "1.5", "99999999999999999999", str(14 * 24 + 1)])
def test_bad_hours_are_refused_with_a_400(admin_client: Client, shop, hours):
    cart("ann", {"SKU-1": 1}, idle=timedelta(hours=50))
    response = admin_client.get(REPORT, {"hours": hours})
    assert response.status_code == 400
    assert "report" not in response.context
    assert 'id="hours-error"' in response.content.decode()


def test_the_report_is_for_staff_who_may_view_carts(client: Client, shop):
    cart("ann", {"SKU-1": 1}, idle=timedelta(hours=50))
    response = client.get(REPORT)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(REPORT).status_code == 403  # staff, but without the permission to view carts
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="carts", codename="view_cartcopy"))
    response = client.get(REPORT)
    assert response.status_code == 200 and set(listed(response)) == {"ann"}
