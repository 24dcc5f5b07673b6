"""Bad input is refused at the edge: a clear 4xx in the one error shape, before any backend call,
and never counted as a dependency failure."""

from __future__ import annotations

import base64

import orjson
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pynamodb.exceptions import PynamoDBException

from catalog import services
from catalog.models import Product
from projections import readpath
from projections.projector import project
from projections.tables import ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)


def cache_keys_now(redis) -> set[bytes]:
    return set(redis.scan_iter(match=f"{settings.CACHES['default']['KEY_PREFIX']}*", count=1000))


BAD_SKUS = ["X%00", "X%00Y", "A" * 65, "-starts-with-dash", "sp%20ace", "%C3%A9t%C3%A9"]


@pytest.mark.parametrize("sku", BAD_SKUS)
def test_malformed_sku_is_404_json_without_touching_any_backend(client, product, redis_clean, sku):
    before = cache_keys_now(redis_clean)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/products/{sku}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert orjson.loads(response.content)["error"]["code"] == "not_found"
    assert len(queries) == 0
    assert cache_keys_now(redis_clean) == before  # no negative entry, no rate-limit counter
    assert not readpath.dynamodb_breaker.is_open and not readpath.redis_breaker.is_open


@pytest.mark.parametrize("slug", ["a" * 101, "bad%00slug", "d%C3%A9j%C3%A0"])
def test_malformed_slug_is_404_without_touching_any_backend(client, product, redis_clean, slug):
    before = cache_keys_now(redis_clean)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/api/categories/{slug}/products/")
    assert response.status_code == 404 and orjson.loads(response.content)["error"]["code"] == "not_found"
    assert len(queries) == 0 and cache_keys_now(redis_clean) == before


@pytest.mark.parametrize("url", ["/api/internal/products/X%00/price/", f"/api/internal/products/{'A' * 65}/stock/"])
def test_malformed_sku_on_the_internal_api_is_404(admin_client, product, url):
    response = admin_client.put(url, b'{"currency": "EUR", "amount": "1"}', content_type="application/json")
    assert response.status_code == 404 and orjson.loads(response.content)["error"]["code"] == "not_found"


def _forged(after: str) -> str:
    """A cursor made the way the unsigned codec made them: base64 of {"after": ...}."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": after})).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [_forged("SKU-0"), _forged("X\x00"), _forged("A" * 3000), "C", "C....", "C~~~~", "x" * 5000],
)
def test_forged_or_oversized_cursor_is_400_and_stores_nothing(client, product, redis_clean, cursor):
    before = cache_keys_now(redis_clean)
    response = client.get("/api/categories/tools/products/", {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert "cursor" in orjson.loads(response.content)["error"]["fields"]
    assert {key for key in cache_keys_now(redis_clean) - before if b":listing:" in key} == set()
    assert not readpath.dynamodb_breaker.is_open


def projected(*products: Product) -> None:
    for item in products:
        project("product", item.pk)  # what the relay does after the commit


def test_a_cursor_the_api_returned_pages_on(client, product):
    projected(
        product,
        services.product_create(sku="SKU-2", name="Saw", category=product.category),
        services.product_create(sku="SKU-3", name="Drill", category=product.category),
    )
    first = orjson.loads(client.get("/api/categories/tools/products/", {"limit": 1}).content)
    second_page = client.get("/api/categories/tools/products/", {"limit": 1, "cursor": first["next_cursor"]})
    second = orjson.loads(second_page.content)
    assert [item["sku"] for item in second["items"]] == ["SKU-2"]
    tampered = first["next_cursor"][:-2] + ("AA" if not first["next_cursor"].endswith("AA") else "BB")
    assert client.get("/api/categories/tools/products/", {"cursor": tampered}).status_code == 400


def test_equivalent_cursor_spellings_share_one_cached_page(client, product, redis_clean):
    """Pages are keyed by the position a cursor decodes to, not by its text."""
    projected(product, services.product_create(sku="SKU-2", name="Saw", category=product.category))
    first = orjson.loads(client.get("/api/categories/tools/products/", {"limit": 1}).content)
    cursor = first["next_cursor"]
    client.get("/api/categories/tools/products/", {"limit": 1, "cursor": cursor})
    pages = {key for key in cache_keys_now(redis_clean) if b":listing:" in key}
    response = client.get("/api/categories/tools/products/", {"limit": 1, "cursor": cursor + "=="})
    assert response.status_code in (200, 400)
    assert {key for key in cache_keys_now(redis_clean) if b":listing:" in key} == pages


def test_dynamodb_validation_errors_never_open_the_breaker(dynamodb):
    """A ValidationException is the caller's fault: the table is fine, and other readers must not
    be sent to Postgres because one request was malformed."""
    for _ in range(settings.BREAKER_FAILURES + 2):
        with pytest.raises(PynamoDBException) as raised:
            readpath.dynamodb_breaker.call(lambda: ProductDocument.get(""))
        assert raised.value.cause_response_code == "ValidationException"
    assert not readpath.dynamodb_breaker.is_open
