"""The read path and the customer API: cache -> DynamoDB -> Postgres, with its headers."""

from __future__ import annotations

import threading
from decimal import Decimal

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog import services
from catalog.models import Category, Product, StockLevel, Warehouse
from devtools.net import wait_for
from hybridsite import cache_keys
from projections import cache, metrics, reader, readpath
from projections.projector import project
from projections.registry import product_document
from projections.tables import ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)


def get(client: Client, url: str, **headers):
    response = client.get(url, **headers)
    body = orjson.loads(response.content) if response.content else None
    return response, body


def test_miss_fills_from_postgres_then_hits_cache_then_dynamodb(client, product, redis_clean):
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 200
    assert response["X-Served-From"] == "postgres"
    assert body["prices"] == {"EUR": "9.99"} and body["version"] == product.version
    assert response["ETag"] == f'"{product.version}"'
    assert response["Cache-Control"] == "public, max-age=5"

    response, again = get(client, "/api/products/SKU-1/")
    assert response["X-Served-From"] == "cache"
    assert again == body

    redis_clean.delete(cache_keys.document("product:SKU-1"))
    response, from_dynamodb = get(client, "/api/products/SKU-1/")
    assert response["X-Served-From"] == "dynamodb"
    assert from_dynamodb == body


def test_hot_read_makes_no_database_query(client, product, django_assert_num_queries):
    client.get("/api/products/SKU-1/")
    with django_assert_num_queries(0):
        response = client.get("/api/products/SKU-1/")
    assert response["X-Served-From"] == "cache"


def test_if_none_match_gives_304(client, product):
    first = client.get("/api/products/SKU-1/")
    response = client.get("/api/products/SKU-1/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert response.status_code == 304
    assert response.content == b""
    assert response["ETag"] == first["ETag"]
    stale = client.get("/api/products/SKU-1/", HTTP_IF_NONE_MATCH='"1"')
    assert stale.status_code == 200


def test_unknown_sku_is_cached_negatively_and_busted_when_it_appears(client, product):
    response, body = get(client, "/api/products/NEW-1/")
    assert response.status_code == 404 and response["X-Served-From"] == "postgres"
    assert body["error"]["code"] == "not_found"
    response, _ = get(client, "/api/products/NEW-1/")
    assert response.status_code == 404 and response["X-Served-From"] == "cache"

    created = services.product_create(sku="NEW-1", name="New", category=product.category)
    project("product", created.pk)  # what the relay does after the commit
    response, body = get(client, "/api/products/NEW-1/")
    assert response.status_code == 200 and response["X-Served-From"] == "cache"
    assert body["name"] == "New"


def test_inactive_product_is_not_found(client, product):
    services.product_update(product=product, is_active=False)
    project("product", product.pk)
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 404


def test_fifty_concurrent_cold_reads_make_one_backend_fetch(product, settings):
    # Followers wait for the first reader's entry however slow this machine is right now: the
    # test is about coalescing, not about how long a follower waits before fetching itself.
    settings.READ_FILL_WAIT_MS = 60_000
    settings.READ_FILL_LOCK_MS = 60_000
    metrics.reset()
    start = threading.Barrier(50)
    results: list[tuple[int, str, bytes]] = []

    def read() -> None:
        client = Client()
        start.wait()
        response = client.get("/api/products/SKU-1/")
        results.append((response.status_code, response["X-Served-From"], response.content))

    threads = [threading.Thread(target=read) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = metrics.snapshot()
    assert counts.get("reader.fill.postgres", 0) + counts.get("reader.fill.dynamodb", 0) == 1
    assert [status for status, _, _ in results] == [200] * 50
    assert len({body for _, _, body in results}) == 1
    assert sorted(source for _, source, _ in results).count("postgres") == 1


def test_a_slow_reader_never_puts_an_older_version_back(product):
    """The race: a reader fetches v1, a write projects v2 and refreshes the cache, then the
    reader stores what it fetched. The compare-and-set keeps v2."""
    ref = product_document("SKU-1")
    project("product", product.pk)
    old_entry, source, _ = reader._fetch(ref, 0)
    assert source == "dynamodb"

    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    outcome = project("product", product.pk)
    assert outcome.version > old_entry.version

    assert cache.store(ref.name, old_entry.version, old_entry.body) is False
    result = reader.read_document(ref)
    assert result.source == "cache" and result.version == outcome.version
    assert orjson.loads(result.body)["prices"]["EUR"] == "12.00"


def test_reads_work_with_redis_stopped(client, product, redis_proxy):
    redis_proxy.down()
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 200 and response["X-Served-From"] == "postgres"
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 200 and response["X-Served-From"] == "dynamodb"
    assert body["sku"] == "SKU-1"
    assert readpath.redis_breaker.is_open


def test_reads_work_with_dynamodb_unreachable(client, product, dynamodb_proxy):
    dynamodb_proxy.down()
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 200 and response["X-Served-From"] == "postgres"
    assert body["prices"] == {"EUR": "9.99"}
    # Served, not cached: the cache only holds what DynamoDB holds, so a delete always reaches it.
    response, _ = get(client, "/api/products/SKU-1/")
    assert response.status_code == 200 and response["X-Served-From"] == "postgres"
    dynamodb_proxy.up()
    assert ProductDocument.count("SKU-1") == 0  # nothing was written while it was down


def test_category_tree(client, product):
    Category.objects.create(slug="hammers", name="Hammers", parent=product.category)
    response, body = get(client, "/api/categories/")
    assert response.status_code == 200
    assert body["categories"] == [
        {"slug": "tools", "name": "Tools", "children": [{"slug": "hammers", "name": "Hammers", "children": []}]}
    ]


def test_category_listing_pages_with_cursor_and_cache(client, product):
    for n in range(2, 6):
        services.product_create(sku=f"SKU-{n}", name=f"P{n}", category=product.category)
    for p in Product.objects.all():
        project("product", p.pk)
    response, page1 = get(client, "/api/categories/tools/products/?limit=2")
    assert response.status_code == 200 and response["X-Served-From"] == "dynamodb"
    assert [item["sku"] for item in page1["items"]] == ["SKU-1", "SKU-2"]
    response, page2 = get(client, f"/api/categories/tools/products/?limit=2&cursor={page1['next_cursor']}")
    assert [item["sku"] for item in page2["items"]] == ["SKU-3", "SKU-4"]
    response, page3 = get(client, f"/api/categories/tools/products/?limit=2&cursor={page2['next_cursor']}")
    assert [item["sku"] for item in page3["items"]] == ["SKU-5"] and page3["next_cursor"] is None

    response, cached = get(client, "/api/categories/tools/products/?limit=2")
    assert response["X-Served-From"] == "cache" and cached == page1

    garden = Category.objects.create(slug="garden", name="Garden")
    services.product_update(product=product, category=garden)
    project("product", product.pk)
    response, moved = get(client, "/api/categories/tools/products/?limit=2")
    assert response["X-Served-From"] == "dynamodb"  # the listing's generation was bumped
    assert [item["sku"] for item in moved["items"]] == ["SKU-2", "SKU-3"]


@pytest.mark.parametrize(
    "query, field",
    [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("cursor=not-a-cursor", "cursor")],
)
def test_listing_bad_input_is_400(client, product, query, field):
    response, body = get(client, f"/api/categories/tools/products/?{query}")
    assert response.status_code == 400
    assert field in body["error"]["fields"]


def test_unknown_category_is_404(client, product):
    response, body = get(client, "/api/categories/nope/products/")
    assert response.status_code == 404 and body["error"]["code"] == "not_found"


def test_rate_limit_counts_in_the_read_and_answers_429(client, product, settings):
    settings.THROTTLE_ANON_PER_MINUTE = 3
    statuses = [client.get("/api/products/SKU-1/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response, body = get(client, "/api/products/SKU-1/")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert body["error"]["code"] == "throttled"


# --- internal write API ------------------------------------------------------------------------


@pytest.fixture
def staff_client(product) -> Client:
    """Staff who may change prices and stock (staff status alone is not enough)."""
    user = get_user_model().objects.create_user("pricing", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_price", "change_stocklevel"]))
    token = Token.objects.create(user=user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def put_json(client: Client, url: str, data) -> tuple[int, dict]:
    raw = data if isinstance(data, (bytes, str)) else orjson.dumps(data)
    response = client.put(url, raw, content_type="application/json")
    return response.status_code, orjson.loads(response.content)


def test_internal_api_requires_staff(client, product):
    status, body = put_json(client, "/api/internal/products/SKU-1/price/", {"currency": "EUR", "amount": "1"})
    assert status == 401 and body["error"]["code"] == "not_authenticated"
    user = get_user_model().objects.create_user("customer", password="x")
    customer = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    status, body = put_json(customer, "/api/internal/products/SKU-1/price/", {"currency": "EUR", "amount": "1"})
    assert status == 403
    assert Product.objects.get(sku="SKU-1").prices.get().amount == Decimal("9.99")


def test_internal_price_is_visible_publicly_once_projected(client, staff_client, product):
    client.get("/api/products/SKU-1/")  # warm the cache with the old price
    status, body = put_json(staff_client, "/api/internal/products/SKU-1/price/", {"currency": "EUR", "amount": "4.50"})
    assert status == 200 and body["amount"] == "4.50" and body["version"] > product.version
    from projections.relay import drain

    drain(5)  # what the worker does after the commit
    response, public = get(client, "/api/products/SKU-1/")
    assert response["X-Served-From"] == "cache"
    assert public["prices"]["EUR"] == "4.50" and public["version"] == body["version"]


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"currency": "EUR", "amount": "-1"}, "amount"),
        ({"currency": "eur", "amount": "1"}, "currency"),
        ({"currency": "EUR", "amount": "1e400"}, "amount"),
        ({"currency": "EUR", "amount": "1", "discount": 5}, "discount"),
        ({"currency": "EUR"}, "amount"),
        ([1, 2], "non_field_errors"),
    ],
)
def test_internal_price_bad_input_is_400_naming_the_field(staff_client, product, payload, field):
    status, body = put_json(staff_client, "/api/internal/products/SKU-1/price/", payload)
    assert status == 400 and field in body["error"]["fields"]
    assert Product.objects.get(sku="SKU-1").prices.get().amount == Decimal("9.99")


def test_internal_malformed_json_is_400(staff_client, product):
    status, body = put_json(staff_client, "/api/internal/products/SKU-1/price/", b'{"currency": ')
    assert status == 400 and body["error"]["code"] == "parse_error"


def test_internal_unknown_sku_is_404(staff_client, product):
    status, body = put_json(staff_client, "/api/internal/products/NOPE/price/", {"currency": "EUR", "amount": "1"})
    assert status == 404 and body["error"]["code"] == "not_found"


def test_internal_stock_adjust_and_refusals(staff_client, product):
    Warehouse.objects.create(code="W1", name="Main")
    url = "/api/internal/products/SKU-1/stock/"
    response = staff_client.post(url, {"warehouse": "W1", "delta": 5}, content_type="application/json")
    assert response.status_code == 200 and orjson.loads(response.content)["quantity"] == 5
    # Well formed, but the stock it meets cannot take it: a conflict with the resource's state.
    response = staff_client.post(url, {"warehouse": "W1", "delta": -6}, content_type="application/json")
    body = orjson.loads(response.content)
    assert response.status_code == 409 and body["error"]["code"] == "stock_out_of_range", body
    assert "below zero" in body["error"]["message"]
    assert StockLevel.objects.get(product=product).quantity == 5
    # A warehouse that does not exist is a resource that does not exist.
    response = staff_client.post(url, {"warehouse": "W9", "delta": 1}, content_type="application/json")
    body = orjson.loads(response.content)
    assert response.status_code == 404 and body["error"]["code"] == "not_found" and "W9" in body["error"]["message"]
    assert StockLevel.objects.get(product=product).quantity == 5


def test_schema_and_docs(client, staff_client, product):
    response = staff_client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = orjson.loads(response.content)["paths"]
    assert {"/api/products/{sku}/", "/api/categories/", "/api/categories/{slug}/products/",
            "/api/internal/products/{sku}/price/", "/api/internal/products/{sku}/stock/"} <= set(paths)
    assert client.get("/api/docs/").status_code == 200


def test_projection_refreshes_a_warm_cache(client, product, worker):
    wait_for(lambda: client.get("/api/products/SKU-1/")["X-Served-From"] == "cache", 30, 0.2)  # warm, old price
    services.price_set(product=product, currency="EUR", amount=Decimal("1.23"))

    def served_new_price_from_cache() -> bool:
        # While the relay projects, a read is answered from Postgres (the new price, not cached).
        response = client.get("/api/products/SKU-1/")
        return response["X-Served-From"] == "cache" and orjson.loads(response.content)["prices"]["EUR"] == "1.23"

    wait_for(served_new_price_from_cache, 30, 0.2)


def test_postgres_down_hot_reads_go_on_and_cold_misses_get_503(client, product):
    """With the database unreachable, cached and DynamoDB-held documents are still served; a key
    held nowhere else answers 503 JSON, not a 500."""
    from django.db import connection

    from devtools.net import free_port

    client.get("/api/products/SKU-1/")  # projected and cached
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        response = client.get("/api/products/SKU-1/")
        assert response.status_code == 200 and response["X-Served-From"] == "cache"
        response, body = get(client, "/api/products/UNKNOWN-9/")
        assert response.status_code == 503 and body["error"]["code"] == "unavailable"
        assert response["Retry-After"] == "5"
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
