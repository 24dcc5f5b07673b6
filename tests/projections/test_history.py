"""Every projected product version is appended to the history table, once (a retry or a duplicate
delivery adds nothing and overwrites nothing), expires after HISTORY_DAYS, and is read by staff
through the internal API and the product's History page in the admin."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from catalog import services
from catalog.models import Category, Product, Warehouse
from projections import internal_apis
from projections.drift import check
from projections.projector import project, put_once
from projections.registry import product_version_key
from projections.relay import drain
from projections.tables import ProductVersion

pytestmark = pytest.mark.django_db(transaction=True)


def versions_of(sku: str) -> list[tuple[int, dict]]:
    """The history items of a SKU, oldest first: (version, body)."""
    return [(item.version, orjson.loads(item.body)) for item in ProductVersion.query(sku, consistent_read=True)]


def staff_client(username: str, *codenames: str, is_staff: bool = True) -> Client:
    user = get_user_model().objects.create_user(username, password="x", is_staff=is_staff)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename=codename))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def three_versions(product: Product) -> list[int]:
    """v1 as created, v2 repriced, v3 renamed: each projected by the relay."""
    drain()
    services.price_set(product=product, currency="EUR", amount=Decimal("8.00"))
    drain()
    services.product_update(product=Product.objects.get(pk=product.pk), name="Claw hammer")
    drain()
    return [version for version, _ in versions_of(product.sku)]


def test_each_projected_version_is_appended_once_and_never_overwritten(product):
    versions = three_versions(product)
    assert len(versions) == 3 and versions == sorted(versions)
    assert versions[-1] == Product.objects.get().version
    bodies = [body for _, body in versions_of("SKU-1")]
    assert [(b["name"], b["prices"]) for b in bodies] == [
        ("Hammer", {"EUR": "9.99"}), ("Hammer", {"EUR": "8.00"}), ("Claw hammer", {"EUR": "8.00"}),
    ]

    outcome = project("product", product.pk)  # a duplicate delivery, a retry
    assert (outcome.appended, outcome.already_appended) == (0, 1)
    assert len(versions_of("SKU-1")) == 3

    key = product_version_key("SKU-1", versions[-1])
    written = put_once(
        ProductVersion, key, owner=f"product#{product.pk}", version=versions[-1], body=b'{"name":"forged"}',
        committed_at=None, projected_at=timezone.now(), expires_at=None,
    )
    assert written is False and versions_of("SKU-1")[-1][1]["name"] == "Claw hammer"


def test_versions_expire_after_history_days(product, settings):
    settings.HISTORY_DAYS = 3
    drain()
    item = ProductVersion.get(*product_version_key("SKU-1", product.version).values(), consistent_read=True)
    assert item.expires_at == (Product.objects.get().updated_at + timedelta(days=3)).replace(microsecond=0)


def test_a_deleted_products_history_stays_and_drift_check_and_repair_know_the_table(product):
    three_versions(product)
    current = Product.objects.get().version
    ProductVersion.get(*product_version_key("SKU-1", current).values()).delete()

    report = check(aggregates=["product"])
    assert report.missing == 1 and report.drifted == {("product", product.pk)}
    project("product", product.pk, repair=True)
    assert check(aggregates=["product"]).clean and len(versions_of("SKU-1")) == 3

    Product.objects.filter(pk=product.pk).delete()
    drain()
    assert len(versions_of("SKU-1")) == 3  # history is not tombstoned: it expires
    assert check().clean  # and older versions are never "extra"


def test_the_internal_api_lists_what_changed_newest_first(product, monkeypatch):
    v1, v2, v3 = three_versions(product)
    staff = staff_client("clerk", "view_product")

    response = staff.get("/api/internal/products/SKU-1/history/")
    assert response.status_code == 200
    page = response.json()
    assert [each["version"] for each in page["results"]] == [v3, v2, v1] and page["next_cursor"] is None
    assert page["results"][0]["changes"] == [{"field": "name", "before": "Hammer", "after": "Claw hammer"}]
    assert page["results"][1]["changes"] == [{"field": "price EUR", "before": "9.99", "after": "8.00"}]
    assert page["results"][2]["changes"] is None  # the oldest kept

    monkeypatch.setattr(internal_apis, "HISTORY_PAGE", 2)
    first = staff.get("/api/internal/products/SKU-1/history/").json()
    assert [each["version"] for each in first["results"]] == [v3, v2]
    assert first["results"][1]["changes"] is not None  # its predecessor was read along
    rest = staff.get(f"/api/internal/products/SKU-1/history/?cursor={first['next_cursor']}").json()
    assert [each["version"] for each in rest["results"]] == [v1] and rest["next_cursor"] is None

    services.product_create(sku="SKU-2", name="Saw", category=product.category)
    other = staff.get(f"/api/internal/products/SKU-2/history/?cursor={first['next_cursor']}")
    assert other.status_code == 400 and other.json()["error"]["fields"].keys() == {"cursor"}
    assert staff.get("/api/internal/products/NOPE/history/").status_code == 404


def test_the_internal_api_shows_stock_band_and_category_changes(product, admin_client):
    """Customers see a stock band, not quantities: a version whose stock stayed in its band shows no
    change. Each version is projected by the relay."""
    garden = Category.objects.create(slug="garden", name="Garden")
    warehouse = Warehouse.objects.create(code="AMS1", name="Amsterdam")
    drain()  # no stock: "none", in tools
    for delta in (3, 1, 10):  # 3 units: "low"; 4: still "low"; 14: "medium"
        services.stock_adjust(product=product, warehouse=warehouse, delta=delta)
        drain()
    services.product_update(product=Product.objects.get(pk=product.pk), category=garden)
    drain()

    response = staff_client("clerk", "view_product").get("/api/internal/products/SKU-1/history/")
    assert response.status_code == 200
    page = response.json()
    assert [each["changes"] for each in page["results"]] == [
        [{"field": "category", "before": "tools", "after": "garden"}],
        [{"field": "stock_band", "before": "low", "after": "medium"}],
        [],
        [{"field": "stock_band", "before": "none", "after": "low"}],
        None,
    ]
    assert [each["document"]["stock_band"] for each in page["results"]] == ["medium", "medium", "low", "low", "none"]
    assert [each["version"] for each in page["results"]][0] == Product.objects.get().version

    html = admin_client.get(f"/admin/catalog/product/{product.pk}/history/").content.decode()
    assert "<strong>category</strong>: tools → garden" in html
    assert "<strong>stock_band</strong>: none → low" in html and "<strong>stock_band</strong>: low → medium" in html
    assert "Nothing a customer sees" in html


def test_the_history_is_for_staff_who_may_view_products(product):
    drain()
    url = "/api/internal/products/SKU-1/history/"
    assert Client().get(url).status_code == 401
    assert staff_client("customer", "view_product", is_staff=False).get(url).status_code == 403
    assert staff_client("pricer", "change_price").get(url).status_code == 403
    assert staff_client("clerk", "view_product").get(url).status_code == 200


def test_the_admin_history_page_shows_the_versions(product, admin_client):
    v1, v2, v3 = three_versions(product)
    change_page = admin_client.get(f"/admin/catalog/product/{product.pk}/change/")
    history_url = f"/admin/catalog/product/{product.pk}/history/"
    assert history_url in change_page.content.decode()  # the History link of the product page

    response = admin_client.get(history_url)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="product-version"') == 3
    assert "<strong>price EUR</strong>: 9.99 → 8.00" in html
    assert "<strong>name</strong>: Hammer → Claw hammer" in html
    assert "First version kept: Hammer in tools" in html
    assert [each.version for each in response.context["versions"]] == [v3, v2, v1]
