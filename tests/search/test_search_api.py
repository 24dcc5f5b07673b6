"""GET /api/products/: full-text search in Postgres, its SKUs cached per normalized parameters,
each result read from the hot path."""

from __future__ import annotations

import threading
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.test import Client

from catalog import services
from catalog.selectors import ProductSearch
from hybridsite import cache_keys
from projections import cache, search
from projections.relay import drain
from tests.services import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def get(client: Client, query: str = "") -> tuple[int, str, dict]:
    response = client.get(f"/api/products/?{query}")
    return response.status_code, response.get("X-Served-From", ""), orjson.loads(response.content)


def skus(body: dict) -> list[str]:
    return [item["sku"] for item in body["items"]]


def search_keys(redis) -> list[bytes]:
    return list(redis.scan_iter(match=cache_keys.search_results("x").rsplit(":", 1)[0] + ":*"))


def test_text_filters_and_orders(client, shop):
    assert skus(get(client, "q=hammer")[2]) == ["HAM-1", "HAM-2", "TOOL-1"]  # name before description
    assert skus(get(client, "q=hammer -sledge")[2]) == ["HAM-1", "TOOL-1"]
    assert skus(get(client, "q=hammer&category=tools")[2]) == ["HAM-1", "HAM-2", "TOOL-1"]  # and below it
    assert skus(get(client, "q=hammer&category=hand-tools")[2]) == ["HAM-1", "HAM-2"]
    assert skus(get(client, "category=nowhere")[2]) == []
    assert skus(get(client, "sort=price_asc")[2]) == ["HAM-1", "SAW-1", "TOOL-1", "HAM-2", "DRL-1"]
    assert skus(get(client, "min_price=15&max_price=29.5&sort=price_desc")[2]) == ["HAM-2", "TOOL-1", "SAW-1"]
    assert skus(get(client, "currency=USD&min_price=0")[2]) == ["DRL-1"]
    assert skus(get(client, "in_stock=false")[2]) == ["HAM-2"]
    assert sorted(skus(get(client, "q=wood&in_stock=true")[2])) == ["DRL-1", "SAW-1"]
    status, served_from, body = get(client, "q=drill")
    assert status == 200 and served_from == "postgres"
    document = body["items"][0]
    assert document["prices"] == {"EUR": "89.00", "USD": "95.00"} and document["in_stock"] is True


def test_equal_searches_share_one_entry_whatever_their_spelling(client, shop, redis_clean):
    first = get(client, "q=Claw%20Hammer&min_price=5")
    assert first[1] == "postgres"
    for spelling in (
        "min_price=5.00&q=claw+hammer",  # order, case, the cents
        "q=%20%20claw%09HAMMER%20&min_price=5&currency=EUR",  # whitespace, the default currency
        "q=claw%20hammer&min_price=5&sort=relevance&limit=20",  # defaults spelled out
    ):
        status, served_from, body = get(client, spelling)
        assert (status, served_from, body) == (200, "cache", first[2]), spelling
    assert len(search_keys(redis_clean)) == 1
    assert get(client, "q=claw%20hammer&min_price=5.01")[1] == "postgres"
    assert get(client, "q=claw%20hammer&min_price=5&currency=USD")[1] == "postgres"
    assert len(search_keys(redis_clean)) == 3


def test_normalized_values() -> None:
    assert search.normalize(q=" A\x00b  ", min_price=Decimal("1")) == ProductSearch(
        text="a b", min_price=Decimal("1.00"), currency="EUR", sort="relevance"
    )
    assert search.normalize(sort="relevance") == search.normalize() == ProductSearch(sort="name")
    assert search.normalize(currency="USD") == ProductSearch()  # no price uses it
    assert search.normalize(sort="price_asc", currency="USD").currency == "USD"
    spelled = search.normalize(q="x", category="tools", max_price=Decimal("3.5"), in_stock=False)
    assert search.from_canonical(search.canonical(spelled)) == spelled


def test_pages_walk_the_results_with_signed_cursors(client, shop):
    seen: list[str] = []
    query = "limit=2"
    while True:
        status, _, body = get(client, query)
        assert status == 200
        seen += skus(body)
        if body["next_cursor"] is None:
            break
        query = f"limit=2&cursor={body['next_cursor']}"
    assert seen == ["HAM-1", "DRL-1", "SAW-1", "HAM-2", "TOOL-1"]  # by name


def test_results_show_the_hot_paths_documents_and_leave_out_deleted_products(client, shop, redis_clean):
    assert skus(get(client, "q=hammer")[2]) == ["HAM-1", "HAM-2", "TOOL-1"]
    services.price_set(product=shop["HAM-1"], currency="EUR", amount=Decimal("7.00"))
    shop["HAM-2"].delete()
    drain(5)
    status, served_from, body = get(client, "q=hammer")
    assert (status, served_from) == (200, "cache")  # the membership is the cached one ...
    assert skus(body) == ["HAM-1", "TOOL-1"]  # ... the documents are today's
    assert body["items"][0]["prices"] == {"EUR": "7.00"}
    # Without the documents' Redis entries: DynamoDB's tombstone says the same.
    redis_clean.delete(*redis_clean.scan_iter(match=cache_keys.document("*")))
    assert skus(get(client, "q=hammer")[2]) == ["HAM-1", "TOOL-1"]
    services.product_update(product=shop["TOOL-1"], is_active=False)
    drain(5)
    assert skus(get(client, "q=hammer")[2]) == ["HAM-1"]


@pytest.mark.parametrize("query, field", [
    ("q=" + "x" * 201, "q"),
    ("min_price=1e3", "min_price"),
    ("max_price=-1", "max_price"),
    ("currency=XXQ", "currency"),
    ("sort=cheapest", "sort"),
    ("in_stock=maybe", "in_stock"),
    ("category=no/slash", "category"),
    ("limit=51", "limit"),
    ("limit=0", "limit"),
    ("cursor=made-up", "cursor"),
])
def test_bad_parameters_are_400_naming_the_field(client, shop, query, field):
    status, _, body = get(client, query)
    assert status == 400
    assert body["error"]["code"] == "invalid" and field in body["error"]["fields"], body


def test_results_are_bounded(client, shop, settings):
    settings.SEARCH_MAX_RESULTS = 3
    _, _, body = get(client, "limit=2")
    assert skus(body) == ["HAM-1", "DRL-1"]
    _, _, body = get(client, f"limit=2&cursor={body['next_cursor']}")
    assert skus(body) == ["SAW-1"] and body["next_cursor"] is None


def test_a_search_over_its_statement_timeout_is_503_and_frees_its_connection(client, shop, settings):
    """A table lock held by another program makes the search wait: the statement timeout ends it."""
    import psycopg2

    settings.SEARCH_STATEMENT_TIMEOUT_MS = 200
    other = psycopg2.connect(database_url())
    try:
        with other.cursor() as cursor:
            cursor.execute("LOCK TABLE catalog_product IN ACCESS EXCLUSIVE MODE")
        status, _, body = get(client, "q=saw")
        assert status == 503 and body["error"]["code"] == "unavailable"
    finally:
        other.rollback()
        other.close()
    assert skus(get(client, "q=saw")[2]) == ["SAW-1", "TOOL-1"]
    with connection.cursor() as cursor:  # the timeout was the search transaction's only
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"


def test_searches_are_rate_limited_and_fresh_ones_cost_more(client, shop, settings):
    settings.THROTTLE_SEARCH_PER_MINUTE = 6
    settings.THROTTLE_SEARCH_FILLS_PER_MINUTE = 3  # a fresh search costs 1 more
    assert get(client, "q=saw")[0] == 200  # 2
    assert get(client, "q=saw")[0] == 200  # 3 (cached)
    assert get(client, "q=drill")[0] == 200  # 5
    assert get(client, "q=drill")[0] == 200  # 6
    response = client.get("/api/products/?q=drill")
    assert response.status_code == 429 and response["Retry-After"]
    assert orjson.loads(response.content)["error"]["code"] == "throttled"


def test_a_cold_search_is_computed_once_however_many_ask(shop, monkeypatch, settings):
    settings.SEARCH_STATEMENT_TIMEOUT_MS = 20_000  # how long the others wait for the first
    readers = 6
    waiting = threading.Semaphore(0)
    computed: list[ProductSearch] = []
    real_compute, real_wait = search.compute, cache.wait_for

    def compute(wanted: ProductSearch) -> list[str]:
        for _ in range(readers - 1):  # the leader finishes once every other reader waits for it
            assert waiting.acquire(timeout=30)
        computed.append(wanted)
        return real_compute(wanted)

    def wait_for(*args, **kwargs):
        waiting.release()
        return real_wait(*args, **kwargs)

    monkeypatch.setattr(search, "compute", compute)
    monkeypatch.setattr(cache, "wait_for", wait_for)
    wanted = search.normalize(q="hammer")
    answers: list[tuple[list[str], str]] = []

    def ask() -> None:
        try:
            answers.append(search.matching_skus(wanted, None))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert computed == [wanted]
    assert sorted(answers) == [(["HAM-1", "HAM-2", "TOOL-1"], "cache")] * (readers - 1) + [
        (["HAM-1", "HAM-2", "TOOL-1"], "postgres")
    ]
