"""Rate limits: per client behind trusted proxies, IPv6 per /64, what one client may add to the cache,
and limits for the internal API too."""

from __future__ import annotations

import orjson
import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from catalog.models import Product
from hybridsite import cache_keys
from projections.projector import project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def product(product: Product) -> Product:
    """The shared product, projected."""
    project("product", product.pk)
    return product


def statuses(client: Client, url: str, times: int, **headers: str) -> list[int]:
    return [client.get(url, **headers).status_code for _ in range(times)]


def test_clients_behind_a_trusted_proxy_have_their_own_limits(product, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    settings.THROTTLE_ANON_PER_MINUTE = 3
    proxy = Client(REMOTE_ADDR="10.0.0.2")
    assert statuses(proxy, "/api/products/SKU-1/", 4, HTTP_X_FORWARDED_FOR="198.51.100.1") == [200, 200, 200, 429]
    assert statuses(proxy, "/api/products/SKU-1/", 1, HTTP_X_FORWARDED_FOR="198.51.100.2") == [200]


def test_a_client_cannot_dodge_the_limit_by_writing_forwarded_for(product, settings):
    settings.TRUSTED_PROXY_HOPS = 0
    settings.THROTTLE_ANON_PER_MINUTE = 2
    client = Client(REMOTE_ADDR="198.51.100.1")
    seen = [client.get("/api/products/SKU-1/", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").status_code for n in range(3)]
    assert seen == [200, 200, 429]


def test_ipv6_addresses_of_one_64_share_a_limit(product, settings):
    settings.THROTTLE_ANON_PER_MINUTE = 2
    assert statuses(Client(REMOTE_ADDR="2001:db8:1:2::1"), "/api/products/SKU-1/", 2) == [200, 200]
    assert statuses(Client(REMOTE_ADDR="2001:db8:1:2:ffff::7"), "/api/products/SKU-1/", 1) == [429]
    assert statuses(Client(REMOTE_ADDR="2001:db8:1:3::1"), "/api/products/SKU-1/", 1) == [200]


def test_a_failed_page_read_does_not_reset_the_count(product, settings, redis_clean):
    """The page key holds another type, so reading that page fails after the count was taken: the
    client over its limit must still get 429, not a page."""
    settings.THROTTLE_ANON_PER_MINUTE = 1
    client = Client()
    assert client.get("/api/categories/tools/products/", {"limit": 5}).status_code == 200
    generation = int(redis_clean.get(cache_keys.listing_generation("tools")) or 0)
    redis_clean.hset(cache_keys.listing_page("tools", generation, 20, ""), "not", "a page")
    assert client.get("/api/categories/tools/products/").status_code == 429


def test_one_client_can_add_only_so_many_absent_keys(product, settings, redis_clean):
    settings.THROTTLE_ANON_PER_MINUTE = 600
    settings.THROTTLE_CACHE_FILLS_PER_MINUTE = 2
    scanner = Client(REMOTE_ADDR="198.51.100.66")
    seen = [scanner.get(f"/api/products/RANDOM-{n}/").status_code for n in range(4)]
    assert seen == [404, 404, 429, 429]
    absent = [key for key in redis_clean.scan_iter(match=cache_keys.document("product:RANDOM-*"))]
    assert len(absent) == 2
    assert Client(REMOTE_ADDR="198.51.100.67").get("/api/products/SKU-1/").status_code == 200


def test_one_client_can_add_only_so_many_listing_pages(product, settings, redis_clean):
    settings.THROTTLE_ANON_PER_MINUTE = 600
    settings.THROTTLE_CACHE_FILLS_PER_MINUTE = 2
    crawler = Client(REMOTE_ADDR="198.51.100.66")
    seen = [crawler.get("/api/categories/tools/products/", {"limit": n}).status_code for n in range(1, 5)]
    assert seen == [200, 200, 429, 429]
    pages = list(redis_clean.scan_iter(match=f"{cache_keys.NAMESPACE}:listing:tools:*"))
    assert len(pages) == 2


def test_the_internal_api_is_rate_limited_per_user(product, settings, redis_clean):
    settings.THROTTLE_RATES = {**django_settings.THROTTLE_RATES, "default": 2}
    user = get_user_model().objects.create_superuser("pricing", password="x")
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    def put() -> tuple[int, dict]:
        response = client.put(
            "/api/internal/products/SKU-1/price/", {"currency": "EUR", "amount": "1.00"},
            content_type="application/json",
        )
        return response.status_code, orjson.loads(response.content)

    assert [put()[0] for _ in range(2)] == [200, 200]
    status, body = put()
    assert status == 429 and body["error"]["code"] == "throttled"
