"""The catalog admin and its report, through the real URLs, as staff and as strangers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Category, Price, Product, StockLevel, Warehouse
from tests.factories import CategoryFactory, PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("error::django.core.paginator.UnorderedObjectListWarning"),
]


@dataclass
class Catalog:
    home: Category
    kitchen: Category
    garden: Category
    ams: Warehouse
    ber: Warehouse
    empty: Warehouse
    kettle: Product
    mug: Product
    pan: Product
    toaster: Product
    kettle_eur: Price
    kettle_usd: Price
    kettle_ams: StockLevel
    kettle_ber: StockLevel


@pytest.fixture
def catalog(settings) -> Catalog:
    """Kettle 10+5 in stock, mug 2 (low), pan none (low), toaster inactive with 0; threshold 5."""
    settings.LOW_STOCK_THRESHOLD = 5
    home = CategoryFactory(slug="home", name="Home")
    kitchen = CategoryFactory(slug="home-kitchen", name="Kitchen", parent=home)
    garden = CategoryFactory(slug="garden", name="Garden")
    ams = WarehouseFactory(code="AMS1", name="Amsterdam")
    ber = WarehouseFactory(code="BER1", name="Berlin")
    empty = WarehouseFactory(code="EMPTY1", name="Nowhere")
    kettle = ProductFactory(sku="KETTLE-1", name="Steel Kettle", category=kitchen)
    mug = ProductFactory(sku="MUG-1", name="Blue Mug", category=kitchen)
    pan = ProductFactory(sku="PAN-1", name="Cast Iron Pan", category=kitchen)
    toaster = ProductFactory(sku="OLD-1", name="Old Toaster", category=garden, is_active=False)
    StockLevelFactory(product=mug, warehouse=ams, quantity=2)
    StockLevelFactory(product=toaster, warehouse=ber, quantity=0)
    return Catalog(
        home=home, kitchen=kitchen, garden=garden, ams=ams, ber=ber, empty=empty,
        kettle=kettle, mug=mug, pan=pan, toaster=toaster,
        kettle_eur=PriceFactory(product=kettle, currency="EUR", amount=Decimal("19.99")),
        kettle_usd=PriceFactory(product=kettle, currency="USD", amount=Decimal("21.99")),
        kettle_ams=StockLevelFactory(product=kettle, warehouse=ams, quantity=10),
        kettle_ber=StockLevelFactory(product=kettle, warehouse=ber, quantity=5),
    )


def objects(catalog: Catalog) -> dict[str, Model]:
    return {
        "category": catalog.kitchen, "product": catalog.kettle, "price": catalog.kettle_eur,
        "warehouse": catalog.ams, "stocklevel": catalog.kettle_ams,
    }


def changelist(client: Client, model: str, **params: str):
    response = client.get(reverse(f"admin:catalog_{model}_changelist"), params)
    assert response.status_code == 200
    return response.context["cl"]


@pytest.mark.parametrize("model", ["category", "product", "price", "warehouse", "stocklevel"])
def test_changelist_and_change_page(admin_client: Client, catalog: Catalog, model: str) -> None:
    obj = objects(catalog)[model]
    assert obj in changelist(admin_client, model).result_list
    response = admin_client.get(reverse(f"admin:catalog_{model}_change", args=[obj.pk]))
    assert response.status_code == 200
    assert response.context["original"] == obj


def test_product_changelist_columns(admin_client: Client, catalog: Catalog) -> None:
    response = admin_client.get(reverse("admin:catalog_product_changelist"))
    cl = response.context["cl"]
    assert {p.sku: p.total_stock for p in cl.result_list} == {"KETTLE-1": 15, "MUG-1": 2, "PAN-1": 0, "OLD-1": 0}
    assert '<td class="field-total_stock">15</td>' in response.content.decode()


def test_product_changelist_queries_do_not_grow_with_rows(admin_client: Client, catalog: Catalog) -> None:
    def queries() -> int:
        """The page's queries, without the read-only switch's (read once per FLAG_CACHE_SECONDS)."""
        with CaptureQueriesContext(connection) as captured:
            changelist(admin_client, "product")
        return sum("waffle_switch" not in query["sql"] for query in captured.captured_queries)

    few = queries()
    for _ in range(10):
        StockLevelFactory(product=PriceFactory().product)
    assert queries() == few


def test_product_search(admin_client: Client, catalog: Catalog) -> None:
    assert [p.sku for p in changelist(admin_client, "product", q="mug").result_list] == ["MUG-1"]
    assert [p.sku for p in changelist(admin_client, "product", q="pan-1").result_list] == ["PAN-1"]
    assert [s.product.sku for s in changelist(admin_client, "stocklevel", q="kettle").result_list] == [
        "KETTLE-1", "KETTLE-1",
    ]


def test_product_stock_filter(admin_client: Client, catalog: Catalog) -> None:
    def skus(stock: str) -> set[str]:
        return {p.sku for p in changelist(admin_client, "product", stock=stock).result_list}

    assert skus("out") == {"PAN-1", "OLD-1"}
    assert skus("low") == {"MUG-1", "PAN-1", "OLD-1"}
    assert skus("available") == {"KETTLE-1"}


def test_warehouse_and_category_columns(admin_client: Client, catalog: Catalog) -> None:
    warehouses = changelist(admin_client, "warehouse").result_list
    assert {w.code: (w.product_count, w.total_quantity) for w in warehouses} == {
        "AMS1": (2, 12), "BER1": (2, 5), "EMPTY1": (0, 0),
    }
    categories = changelist(admin_client, "category").result_list
    assert {c.name: c.product_count for c in categories} == {"Home": 0, "Kitchen": 3, "Garden": 1}


def test_product_change_page_shows_inlines_and_readonly_version(admin_client: Client, catalog: Catalog) -> None:
    catalog.kettle.refresh_from_db()
    response = admin_client.get(reverse("admin:catalog_product_change", args=[catalog.kettle.pk]))
    content = response.content.decode()
    assert 'id="prices-group"' in content and 'id="stock_levels-group"' in content
    prices, stock = (formset.formset for formset in response.context["inline_admin_formsets"])
    assert [(f.instance.currency, f.instance.amount) for f in prices.forms] == [
        ("EUR", Decimal("19.99")), ("USD", Decimal("21.99")),
    ]
    assert [(f.instance.warehouse.code, f.instance.quantity) for f in stock.forms] == [("AMS1", 10), ("BER1", 5)]
    assert str(catalog.kettle.version) in content
    assert 'name="version"' not in content


def product_form(catalog: Catalog, **changes: str) -> dict[str, str]:
    kettle = catalog.kettle
    data = {
        "sku": kettle.sku, "name": kettle.name, "category": str(catalog.kitchen.pk), "description": "",
        "attributes": "{}", "is_active": "on", "_save": "Save",
    }
    for prefix, rows in (
        ("prices", [{"id": catalog.kettle_eur.pk, "currency": "EUR", "amount": "19.99"},
                    {"id": catalog.kettle_usd.pk, "currency": "USD", "amount": "21.99"}]),
        ("stock_levels", [{"id": catalog.kettle_ams.pk, "warehouse": catalog.ams.pk, "quantity": "10"},
                          {"id": catalog.kettle_ber.pk, "warehouse": catalog.ber.pk, "quantity": "5"}]),
    ):
        data |= {f"{prefix}-TOTAL_FORMS": "2", f"{prefix}-INITIAL_FORMS": "2",
                 f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}
        for index, row in enumerate(rows):
            data |= {f"{prefix}-{index}-{field}": str(value) for field, value in row.items()}
            data[f"{prefix}-{index}-product"] = str(kettle.pk)
    return data | changes


def test_saving_inlines_bumps_version(admin_client: Client, catalog: Catalog) -> None:
    catalog.kettle.refresh_from_db()
    before = catalog.kettle.version
    url = reverse("admin:catalog_product_change", args=[catalog.kettle.pk])
    response = admin_client.post(url, product_form(catalog, **{"prices-0-amount": "24.99", "version": "1"}))
    assert response.status_code == 302
    catalog.kettle_eur.refresh_from_db()
    catalog.kettle.refresh_from_db()
    assert catalog.kettle_eur.amount == Decimal("24.99")
    assert catalog.kettle.version > before


def test_inline_refuses_negative_stock(admin_client: Client, catalog: Catalog) -> None:
    url = reverse("admin:catalog_product_change", args=[catalog.kettle.pk])
    response = admin_client.post(url, product_form(catalog, **{"stock_levels-0-quantity": "-1"}))
    assert response.status_code == 200
    assert response.context["errors"]
    catalog.kettle_ams.refresh_from_db()
    assert catalog.kettle_ams.quantity == 10


def test_delete_action_on_annotated_changelist(admin_client: Client, catalog: Catalog) -> None:
    response = admin_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": "delete_selected", "_selected_action": [catalog.pan.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Product.objects.filter(pk=catalog.pan.pk).exists()


def test_category_autocomplete(admin_client: Client, catalog: Catalog) -> None:
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "catalog", "model_name": "product", "field_name": "category", "term": "kitch"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["Kitchen"]


def test_index_links_to_report(admin_client: Client) -> None:
    response = admin_client.get(reverse("admin:index"))
    assert f'href="{reverse("admin:catalog_report")}"' in response.content.decode()


def test_report(admin_client: Client, catalog: Catalog) -> None:
    response = admin_client.get(reverse("admin:catalog_report"))
    assert response.status_code == 200
    context = response.context
    assert [(w.code, w.product_count, w.total_quantity) for w in context["warehouses"]] == [
        ("AMS1", 2, 12), ("BER1", 2, 5), ("EMPTY1", 0, None),
    ]
    assert [(p.sku, p.total_stock) for p in context["low_stock"]] == [("PAN-1", 0), ("MUG-1", 2)]
    assert {c.name: c.product_count for c in context["categories"]} == {"Kitchen": 3, "Garden": 1, "Home": 0}

    content = response.content.decode()
    warehouses, rest = content.split('id="stock-by-warehouse"')[1].split('id="low-stock"')
    low_stock, categories = rest.split('id="products-per-category"')
    assert '<td class="total-quantity">12</td>' in warehouses
    assert ">EMPTY1</a>" in warehouses and '<td class="total-quantity">0</td>' in warehouses
    assert ">PAN-1</a>" in low_stock and ">MUG-1</a>" in low_stock
    assert "KETTLE-1" not in low_stock and "OLD-1" not in low_stock
    assert "≤ 5" in low_stock
    assert ">Kitchen</a>" in categories and '<td class="product-count">3</td>' in categories


def test_report_threshold_comes_from_settings(admin_client: Client, catalog: Catalog, settings) -> None:
    settings.LOW_STOCK_THRESHOLD = 1
    response = admin_client.get(reverse("admin:catalog_report"))
    assert [p.sku for p in response.context["low_stock"]] == ["PAN-1"]


@pytest.mark.parametrize(
    "url_name", ["admin:catalog_report", "admin:catalog_product_changelist", "admin:catalog_stocklevel_changelist"]
)
def test_strangers_are_sent_to_login(client: Client, django_user_model, url_name: str) -> None:
    url = reverse(url_name)
    login = f"{reverse('admin:login')}?next={url}"
    response = client.get(url)
    assert (response.status_code, response.url) == (302, login)
    client.force_login(django_user_model.objects.create_user("customer", password="secret-pass-1"))
    response = client.get(url)
    assert (response.status_code, response.url) == (302, login)


def test_report_totals_roll_up_subcategories_and_draw_charts(admin_client: Client, catalog: Catalog) -> None:
    response = admin_client.get(reverse("admin:catalog_report"))
    totals = response.context["totals"]
    assert (totals.products, totals.active_products, totals.categories, totals.warehouses) == (4, 3, 3, 3)
    assert (totals.units_in_stock, totals.low_stock_products) == (17, 2)
    rolled = {c.name: (c.product_count, c.total_count) for c in response.context["categories"]}
    assert rolled == {"Kitchen": (3, 3), "Garden": (1, 1), "Home": (0, 3)}  # Kitchen is under Home
    assert response.context["category_bars"]["rows"] == [("Home", 3), ("Garden", 1)]  # top level only

    content = response.content.decode()
    warehouses = content.split('id="stock-by-warehouse"')[1].split('id="low-stock"')[0]
    chart = warehouses.split("<svg")[1].split("</svg>")[0]
    assert 'aria-label="Units in stock per warehouse"' in chart
    assert chart.count('<rect class="bar"') == 3
    assert 'width="400"' in chart  # AMS1, the largest, is a full bar; BER1 (5 of 12) 167
    assert 'width="167"' in chart
    assert '<td class="total-count">3</td>' in content.split('id="products-per-category"')[1]


@pytest.mark.parametrize(
    ("page", "app_label", "app_name"),
    [
        ("admin:catalog_report", "catalog", "Catalog"),
        ("admin:orders_report", "orders", "Orders"),
        ("admin:carts_abandoned", "carts", "Carts"),
        ("admin:drafts_pending", "drafts", "Drafts"),
        ("admin:ops_slosample_changelist", "ops", "Operations"),
    ],
)
def test_every_report_leads_back_to_its_app(admin_client: Client, page: str, app_label: str, app_name: str) -> None:
    """The reports share one base template: its breadcrumbs name the page's own app."""
    response = admin_client.get(reverse(page))
    assert response.status_code == 200
    crumbs = response.content.decode().split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]
    assert f'<a href="{reverse("admin:app_list", args=[app_label])}">{app_name}</a>' in crumbs
    assert response.context["title"] in crumbs
