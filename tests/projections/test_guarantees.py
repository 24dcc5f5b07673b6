"""The promise, finding by finding: no lost delete, no stale cache, no backwards read, no 500, every
write path captured, transient errors retried, versions in commit order, fenced projectors, no-op
writes that change nothing. Each test failed before its fix."""

from __future__ import annotations

import threading
from decimal import Decimal

import orjson
import pytest
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.test import Client

from catalog import services
from catalog.models import Category, CategoryTreeVersion, OutboxEvent, Product, StockLevel, Warehouse
from devtools.net import wait_for
from hybridsite import cache_keys, dynamodb, redis_client
from projections import cache, follow, projector, reader, readpath
from projections.drift import check
from projections.projector import Fenced, _fence, aggregate_lock, project, put_document
from projections.registry import product_document
from projections.relay import StopReason, claim, drain, fail, is_transient
from projections.tables import CategoryListingItem, CategoryTreeDocument, ProductDocument

pytestmark = pytest.mark.django_db(transaction=True)


def version_of(product: Product) -> int:
    return Product.objects.values_list("version", flat=True).get(pk=product.pk)


def cached(name: str) -> cache.Entry | None:
    raw = redis_client.client().get(cache_keys.document(name))
    return cache.decode(raw) if raw is not None else None


def stored(sku: str) -> ProductDocument:
    return ProductDocument.get(sku, consistent_read=True)


def get(client: Client, url: str) -> tuple[int, dict | None, str]:
    response = client.get(url)
    body = orjson.loads(response.content) if response.content else None
    return response.status_code, body, response.get("X-Served-From", "")


def restart_empty() -> None:
    """What clients of a Redis restarted empty see: none of this run's keys."""
    keys = list(redis_client.client().scan_iter(match=f"{cache_keys.NAMESPACE}*", count=1000))
    if keys:
        redis_client.client().delete(*keys)


def forget_entry(name: str) -> None:
    """The entry expires (its floor stays)."""
    redis_client.client().delete(cache_keys.document(name))


# --- 1. a delete is never lost ------------------------------------------------------------------


def test_delete_wins_when_an_earlier_row_is_projected_without_it(product):
    """A reader projects v2 on a miss while v2's outbox row is still pending; the product is
    deleted; the relay takes the v2 row alone (batch of one), then the delete's row."""
    drain()
    services.product_update(product=product, name="Hammer v2")
    v2 = version_of(product)
    assert project("product", product.pk).version == v2  # the reader's fill on a miss
    product.delete()

    drain(batch_size=1)

    document = stored("SKU-1")
    assert document.deleted and document.version > v2
    listing = CategoryListingItem.get("CATEGORY#tools", "SKU-1", consistent_read=True)
    assert listing.deleted
    assert check().clean
    assert cached("product:SKU-1").status == 404
    forget_entry("product:SKU-1")
    assert get(Client(), "/api/products/SKU-1/")[0] == 404


def test_a_gone_aggregates_tombstone_beats_a_live_version_above_all_it_knows(product):
    """The manifest was last written at v1 (keys unchanged since); DynamoDB holds v2; the delete
    is projected from a row that carries less than v2. The tombstone is retried above v2."""
    project("product", product.pk)
    services.product_update(product=product, name="Hammer v2")
    live_version = project("product", product.pk).version
    product_id = product.pk
    product.delete()
    outcome = project("product", product_id, deleted_version=1)
    assert outcome.tombstoned == 2 and outcome.version > live_version
    assert stored("SKU-1").deleted
    assert project("product", product_id).tombstoned == 0  # nothing left to chase


# --- 2. Redis never keeps an older version than DynamoDB -----------------------------------------


def test_failed_cache_refresh_is_retried_until_redis_has_the_new_version(product, redis_proxy):
    drain()
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    redis_proxy.down()
    result = drain()
    assert result.failed == 1 and stored("SKU-1").version == v2  # DynamoDB has v2, Redis missed it
    assert OutboxEvent.objects.filter(aggregate_id=product.pk).exists()
    redis_proxy.up()
    wait_for(lambda: drain().projected == 1, 10, 0.2, "the retried projection")
    assert cached("product:SKU-1").version == v2


def served_from_dynamodb_while_redis_was_away(product, redis_proxy) -> tuple[int, int]:
    """v1 cached; a projection wrote v2 to DynamoDB and could not refresh Redis; a read while
    Redis was unreachable served v2 from DynamoDB; Redis is back, still holding v1 (the refresh
    not retried yet)."""
    drain()
    v1 = get(Client(), "/api/products/SKU-1/")[1]["version"]
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    redis_proxy.down()
    assert drain().failed == 1 and stored("SKU-1").version == v2
    status, body, source = get(Client(), "/api/products/SKU-1/")
    assert (status, body["version"], source) == (200, v2, "dynamodb")
    redis_proxy.up()
    readpath.redis_breaker.reset()
    assert cached("product:SKU-1").version == v1
    return v1, v2


def test_a_version_served_while_redis_was_away_is_not_undercut_by_its_older_entry(product, redis_proxy):
    """Found by the chaos test (under load, Redis calls timing out): the hit that followed served v1."""
    _, v2 = served_from_dynamodb_while_redis_was_away(product, redis_proxy)
    status, body, _ = get(Client(), "/api/products/SKU-1/")
    assert status == 200 and body["version"] >= v2


def test_redis_learns_the_versions_served_while_it_was_away_at_the_next_round_trip(product, redis_proxy):
    """Other processes read Redis only: the first call that reaches it again (a read of another
    key here) raises the floor, and the older entry goes."""
    _, v2 = served_from_dynamodb_while_redis_was_away(product, redis_proxy)
    assert get(Client(), "/api/products/SKU-404/")[0] == 404
    assert int(redis_client.client().get(cache_keys.floor("product:SKU-1"))) >= v2
    entry = cached("product:SKU-1")
    assert entry is None or entry.version >= v2


def test_a_page_of_documents_is_not_undercut_by_an_entry_below_a_version_served(product, redis_proxy):
    _, v2 = served_from_dynamodb_while_redis_was_away(product, redis_proxy)
    page = reader.read_documents([product_document("SKU-1")])
    assert orjson.loads(page["product:SKU-1"])["version"] >= v2


def test_a_listing_page_served_while_redis_was_away_is_not_undercut_by_its_older_page(product, redis_proxy):
    """The projection's move of the listing to a new generation failed with its refresh: the page
    Redis holds at the current generation is the older one."""
    url = "/api/categories/tools/products/"
    drain()
    older = get(Client(), url)
    assert get(Client(), url) == (older[0], older[1], "cache")
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    redis_proxy.down()
    assert drain().failed == 1
    status, served, source = get(Client(), url)
    assert (status, source) == (200, "dynamodb") and served != older[1]
    redis_proxy.up()
    readpath.redis_breaker.reset()
    assert get(Client(), url)[1] == served
    assert get(Client(), url)[1] == served  # a page of the new generation, cached
    assert get(Client(), url) == (200, served, "cache")


def test_what_was_served_while_redis_was_away_is_bounded_per_process():
    held = readpath.Unlearned(limit=2)
    for n, name in enumerate(["a", "b", "a", "c"], start=1):
        held.served(name, n)
        held.paged(name)
    assert (held.floor("a"), held.floor("b"), held.floor("c")) == (3, 0, 4)  # b was the oldest
    assert [held.holds_listing(name) for name in "abc"] == [True, False, True]


def test_a_delete_whose_cache_refresh_failed_reaches_the_cache_on_retry(product, redis_proxy):
    drain()
    assert cached("product:SKU-1").status == 200
    product.delete()
    redis_proxy.down()
    assert drain().failed
    redis_proxy.up()
    wait_for(lambda: drain().projected and not OutboxEvent.objects.exists(), 10, 0.2, "the retried delete")
    assert cached("product:SKU-1").status == 404


def test_a_duplicate_delivery_refreshes_the_cache(product):
    """A projector wrote v2 to DynamoDB and died before refreshing Redis (still v1)."""
    v1 = project("product", product.pk).version
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    body = orjson.dumps({"sku": "SKU-1", "version": v2})
    assert put_document(
        ProductDocument, {"pk": "SKU-1"}, owner=f"product#{product.pk}", version=v2, body=body,
        committed_at=None, projected_at=product.updated_at,
    )
    assert cached("product:SKU-1").version == v1
    outcome = project("product", product.pk)  # the retry: DynamoDB already holds v2
    assert outcome.skipped  # the product document: DynamoDB had it
    assert cached("product:SKU-1").version == v2


def test_a_reader_whose_lease_was_lost_stores_nothing(product):
    """A reader fetched v1; a projection stored v2; Redis restarted empty; the reader's fill
    must not put v1 in front of DynamoDB's v2."""
    ref = product_document("SKU-1")
    project("product", product.pk)
    forget_entry(ref.name)
    token = "lease-1"
    assert redis_client.client().set(cache_keys.fill_lock(ref.name), token, nx=True)
    old, _, _ = reader._fetch(ref, 0)
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    project("product", product.pk)
    restart_empty()
    assert cache.store(ref.name, old.version, old.body, lease=token) is False
    assert cached(ref.name) is None


def test_a_version_served_without_a_lease_removes_an_older_entry(product):
    """A reader served v2 (from Postgres, its lease expired meanwhile): the cache may not keep
    answering v1 to everyone else."""
    v1 = project("product", product.pk).version
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    assert cache.store("product:SKU-1", v2, b"{}", lease=cache.NO_LEASE) is False
    assert cached("product:SKU-1") is None and v2 > v1
    assert get(Client(), "/api/products/SKU-1/")[1]["version"] == v2


def test_a_slow_projection_never_caches_below_a_version_already_served(product):
    """The relay projected v1 (snapshot taken) and is slow; v2 is committed and served from
    Postgres (not cached, floor raised); the relay's refresh of v1 must not become a hit."""
    v1 = version_of(product)
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    assert cache.store("product:SKU-1", v2, b"{}", lease=cache.NO_LEASE) is False  # served v2
    assert cache.refresh_after_projection("product:SKU-1", v1, b'{"old": true}')
    assert cached("product:SKU-1") is None
    assert get(Client(), "/api/products/SKU-1/")[1]["version"] == v2


# --- 3. reads never go backwards -----------------------------------------------------------------


def test_reads_do_not_go_backwards_after_a_postgres_fallback(product, dynamodb_proxy):
    client = Client()
    drain()
    v1 = stored("SKU-1").version
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))  # v2, relay behind
    v2 = version_of(product)
    forget_entry("product:SKU-1")
    dynamodb_proxy.down()
    status, body, source = get(client, "/api/products/SKU-1/")
    assert (status, body["version"], source) == (200, v2, "postgres")
    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    assert stored("SKU-1").version == v1  # DynamoDB still behind
    forget_entry("product:SKU-1")  # the entry expires
    status, body, source = get(client, "/api/products/SKU-1/")
    assert status == 200 and body["version"] >= v2


def test_reads_do_not_go_backwards_when_redis_also_restarts_empty(product, dynamodb_proxy):
    """The double fault: a version served from Postgres during a DynamoDB outage, then Redis
    restarted empty (its floors gone) while DynamoDB is still behind."""
    client = Client()
    drain()
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    dynamodb_proxy.down()
    restart_empty()
    assert get(client, "/api/products/SKU-1/")[1]["version"] == v2
    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    restart_empty()
    status, body, source = get(client, "/api/products/SKU-1/")
    assert status == 200 and body["version"] >= v2


def served_from_postgres_then_redis_restarted(product, dynamodb_proxy) -> int:
    """v2 served from Postgres while DynamoDB was away (it holds v1), then Redis restarted empty."""
    v1 = project("product", product.pk).version
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    dynamodb_proxy.down()
    forget_entry("product:SKU-1")
    assert get(Client(), "/api/products/SKU-1/")[1]["version"] == v2
    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    restart_empty()
    assert stored("SKU-1").version == v1  # DynamoDB still behind
    return v2


def test_a_projection_refreshing_a_restarted_redis_never_undercuts_a_version_served_from_postgres(
    product, dynamodb_proxy
):
    """Found by the chaos test: the refresh started the key's floor at v1, so readers no longer
    consulted the durable floor and served v1 after v2."""
    v2 = served_from_postgres_then_redis_restarted(product, dynamodb_proxy)
    v1 = stored("SKU-1")  # the relay's projection of v1 (its snapshot taken before v2) refreshes Redis
    refresh = cache.Refreshes(stored=[("product:SKU-1", v1.version, v1.body.encode())])
    assert cache.refresh_after_projections([refresh]) == [True]
    status, body, _ = get(Client(), "/api/products/SKU-1/")
    assert status == 200 and body["version"] >= v2


def test_a_followed_record_after_redis_restarted_never_undercuts_a_version_served_from_postgres(
    product, dynamodb_proxy
):
    """As the projection's refresh, a stream follower's (cache_follow) record of v1 must not start
    the key's floor at v1."""
    v2 = served_from_postgres_then_redis_restarted(product, dynamodb_proxy)
    v1 = stored("SKU-1")
    follow.apply(follow.Changes(stored=[("product:SKU-1", v1.version, v1.body.encode())]))
    status, body, _ = get(Client(), "/api/products/SKU-1/")
    assert status == 200 and body["version"] >= v2


def test_a_search_page_after_redis_restarted_never_undercuts_a_version_served_from_postgres(
    product, dynamodb_proxy
):
    """A search page renders its products from Redis, else DynamoDB: a product without a floor in
    Redis is read at or above its durable floor."""
    v2 = served_from_postgres_then_redis_restarted(product, dynamodb_proxy)
    status, body, _ = get(Client(), "/api/products/?q=hammer")
    assert status == 200 and [item["version"] >= v2 for item in body["items"]] == [True]


def test_a_slow_projection_of_a_deleted_product_never_caches_it_over_the_skus_new_product(tools, monkeypatch):
    """A projection of SKU-X took its snapshot while the first product lived; before it wrote, that
    product was deleted and a new one created under the SKU and projected, and Redis restarted
    empty. Its write is refused (DynamoDB holds the newer product), and its cache refresh must not
    put the old product back. Found by the chaos test: a refused write refreshed the cache with the
    projection's own document all the same."""
    first = services.product_create(sku="SKU-X", name="First", category=tools)
    first_id = first.pk
    stale = projector.read_snapshots([projector.Request("product", first_id)])
    first.delete()
    second = services.product_create(sku="SKU-X", name="Second", category=tools)
    newest = project("product", second.pk).version
    assert get(Client(), "/api/products/SKU-X/")[1]["version"] == newest
    restart_empty()
    monkeypatch.setattr(projector, "read_snapshots", lambda requests: stale)  # the slow projection's
    outcome = project("product", first_id)
    assert outcome.skipped and not outcome.written
    status, body, _ = get(Client(), "/api/products/SKU-X/")
    assert (status, body["name"], body["version"]) == (200, "Second", newest)


def test_a_product_born_and_deleted_while_dynamodb_was_away_is_not_served_from_the_cache(tools, dynamodb_proxy):
    """Read once (rendered from Postgres and cached) while DynamoDB is away, deleted before the
    relay ever wrote it: DynamoDB never held a key the delete could tombstone, yet the cache must
    learn the product is gone."""
    client = Client()
    dynamodb_proxy.down()
    product = services.product_create(sku="EPHEMERAL", name="Gone soon", category=tools)
    assert get(client, "/api/products/EPHEMERAL/")[:1] == (200,)
    product.delete()
    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    wait_for(lambda: drain().stopped_by is StopReason.EMPTY and not OutboxEvent.objects.exists(), 10, 0.2, "drain")
    assert get(client, "/api/products/EPHEMERAL/")[0] == 404


def test_a_sku_recreated_and_deleted_while_dynamodb_was_away_is_not_served_from_the_cache(tools, dynamodb_proxy):
    """DynamoDB still holds the first product's tombstone under the SKU; the second one lived only
    in Postgres (and, once read, in the cache) until it was deleted."""
    client = Client()
    first = services.product_create(sku="TWICE", name="First", category=tools)
    drain()
    first.delete()
    drain()
    assert dynamodb.get_item(ProductDocument, {"pk": "TWICE"}).deleted
    dynamodb_proxy.down()
    second = services.product_create(sku="TWICE", name="Second", category=tools)
    forget_entry("product:TWICE")  # the first one's cached absence expires
    assert get(client, "/api/products/TWICE/")[:1] == (200,)
    second.delete()
    dynamodb_proxy.up()
    readpath.dynamodb_breaker.reset()
    wait_for(lambda: drain().stopped_by is StopReason.EMPTY and not OutboxEvent.objects.exists(), 10, 0.2, "drain")
    assert get(client, "/api/products/TWICE/")[0] == 404


def test_min_version_reads_your_writes(product):
    client = Client()
    drain()
    get(client, "/api/products/SKU-1/")  # cached at v1
    services.price_set(product=product, currency="EUR", amount=Decimal("12.00"))
    v2 = version_of(product)
    status, body, _ = get(client, f"/api/products/SKU-1/?min_version={v2}")
    assert status == 200 and body["version"] == v2 and body["prices"]["EUR"] == "12.00"
    # A version Postgres does not hold: the request conflicts with the product's state (409), it is
    # not a server failure to retry (a 503 would count against the availability SLO).
    above, error, _ = get(client, f"/api/products/SKU-1/?min_version={v2 + 10**12}")
    assert (above, error["error"]["code"]) == (409, "version_unavailable")
    assert get(client, "/api/products/SKU-1/?min_version=-1")[0] == 400
    for bad in ("abc", "²", "١٢", "9" * 30, "9" * 5000, str(2**63)):
        assert get(client, f"/api/products/SKU-1/?min_version={bad}")[0] == 400


def test_internal_writes_return_the_version_to_ask_for(product, admin_client):
    warehouse = Warehouse.objects.create(code="W1", name="Main")
    response = admin_client.post(
        "/api/internal/products/SKU-1/stock/", {"warehouse": warehouse.code, "delta": 3},
        content_type="application/json",
    )
    version = response.json()["version"]
    status, body, _ = get(Client(), f"/api/products/SKU-1/?min_version={version}")
    assert status == 200 and body["version"] == version and body["in_stock"]


# --- 4. no 500 on GET ----------------------------------------------------------------------------


def test_a_document_over_400_kb_is_served_from_postgres(tools):
    services.product_create(sku="BIG", name="Big", category=tools, description="x" * 500_000)
    status, body, source = get(Client(), "/api/products/BIG/")
    assert (status, source) == (200, "postgres") and len(body["description"]) == 500_000


def test_a_category_cycle_is_refused_by_the_database(tools):
    child = Category.objects.create(slug="hammers", name="Hammers", parent=tools)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_category SET parent_id = %s WHERE id = %s", [child.pk, tools.pk])
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE catalog_category SET parent_id = CASE id WHEN %s THEN %s ELSE %s END WHERE id IN (%s, %s)",
            [tools.pk, child.pk, tools.pk, tools.pk, child.pk],
        )
    assert get(Client(), "/api/categories/")[0] == 200


def test_a_stock_delta_that_would_overflow_is_409(product, admin_client):
    """Well formed, refused by the stock it meets: a conflict with the stock level's state."""
    warehouse = Warehouse.objects.create(code="W1", name="Main")
    services.stock_adjust(product=product, warehouse=warehouse, delta=1)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_stocklevel SET quantity = 2147000000")
    response = admin_client.post(
        "/api/internal/products/SKU-1/stock/", {"warehouse": "W1", "delta": 1_000_000}, content_type="application/json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "stock_out_of_range"
    assert StockLevel.objects.get(warehouse=warehouse).quantity == 2147000000


# --- 5. TRUNCATE is captured ---------------------------------------------------------------------


def test_truncate_of_stock_and_of_products_is_projected(product):
    warehouse = Warehouse.objects.create(code="W1", name="Main")
    services.stock_adjust(product=product, warehouse=warehouse, delta=5)
    drain()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_stocklevel")
    drain()
    document = orjson.loads(stored("SKU-1").body)
    assert (document["in_stock"], document["stock_band"]) == (False, "none")
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE catalog_product CASCADE")
    drain()
    assert stored("SKU-1").deleted
    assert check().clean


# --- 6. Postgres trouble is transient ------------------------------------------------------------


def test_postgres_errors_in_a_projector_are_transient(product):
    with pytest.raises(OperationalError) as timeout, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 10")
        cursor.execute("SELECT pg_sleep(1)")
    assert is_transient(timeout.value)

    other = connections.create_connection("default")
    try:
        other.ensure_connection()
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseError) as terminated, other.cursor() as cursor:
            cursor.execute("SELECT 1")
        assert is_transient(terminated.value)
    finally:
        other.close()


# --- 7. tree versions follow commit order, not the clock -----------------------------------------


def test_tree_versions_rise_in_commit_order_when_the_clock_steps_back(tools):
    """As if the versions so far came from a clock 30 days ahead that was then set right: each
    change still counts up from the last version, and its projection is written, not skipped."""
    project("category", 0)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE catalog_categorytreeversion SET version = version + %s", [30 * 86400 * 10**6])
    ahead = CategoryTreeVersion.objects.get().version
    project("category", 0)
    Category.objects.create(slug="saws", name="Saws")
    tools.name = "All tools"
    tools.save()
    tools.save()  # the same values again: no change
    assert CategoryTreeVersion.objects.get().version == ahead + 2
    outcome = project("category", 0)
    # the head and the piece holding both categories (two pieces if their ids straddle a boundary)
    assert outcome.version == ahead + 2 and outcome.written in (2, 3)
    assert CategoryTreeDocument.get("TREE").version == ahead + 2


# --- 8. listing pages are read consistently ------------------------------------------------------


def test_listing_queries_are_strongly_consistent(product):
    seen: list[bool] = []
    client = dynamodb.client(CategoryListingItem)
    event = "before-parameter-build.dynamodb.Query"

    def record(params, **_):
        seen.append(params.get("ConsistentRead", False))

    client.meta.events.register(event, record)
    try:
        drain()
        status, body, _ = get(Client(), "/api/categories/tools/products/")
    finally:
        client.meta.events.unregister(event, record)
    assert status == 200 and body["items"]
    assert seen and all(seen)


# --- 9. a projector that lost its lock stops ------------------------------------------------------


def test_a_projector_that_lost_its_lock_is_fenced(product):
    owner = f"product#{product.pk}"
    with aggregate_lock(owner):
        _fence(owner)  # held: passes
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock_all()")  # as when its session was replaced
        with pytest.raises(Fenced) as fenced:
            _fence(owner)
    assert is_transient(fenced.value)


def test_a_miss_does_not_wait_for_a_projection_in_progress(product):
    """A relay stuck while it holds an aggregate's lock (DynamoDB slow to answer) must not hold up
    the customer whose read misses: the read is answered from Postgres, not cached."""
    locked, done, released = threading.Event(), threading.Event(), threading.Event()

    def stuck_relay() -> None:
        try:
            with aggregate_lock(f"product#{product.pk}"):
                locked.set()
                done.wait(30)
            released.set()
        finally:
            connection.close()

    holder = threading.Thread(target=stuck_relay)
    holder.start()
    try:
        assert locked.wait(10)
        status, body, source = get(Client(), "/api/products/SKU-1/")
        answered_while_locked = not released.is_set()
    finally:
        done.set()
        holder.join()
    assert answered_while_locked
    assert (status, body["version"], source) == (200, version_of(product), "postgres")
    assert cached(product_document("SKU-1").name) is None


def test_transient_failures_do_not_count_toward_the_dead_letter(product, settings):
    """After a long outage a row has been retried many times; one permanent failure then must
    not dead-letter it at once: only permanent failures count toward OUTBOX_MAX_ATTEMPTS."""
    drain()
    services.price_set(product=product, currency="EUR", amount=Decimal("5.00"))
    row = OutboxEvent.objects.get(aggregate_type="product")
    for _ in range(settings.OUTBOX_MAX_ATTEMPTS + 2):  # as the relay records an outage
        fail([row.pk], OSError("DynamoDB unreachable"), permanent=False)
    assert fail([row.pk], ValueError("a bad document"), permanent=True) == 0
    row.refresh_from_db()
    assert row.status == OutboxEvent.Status.PENDING
    for _ in range(settings.OUTBOX_MAX_ATTEMPTS - 1):
        fail([row.pk], ValueError("a bad document"), permanent=True)
    row.refresh_from_db()
    assert row.status == OutboxEvent.Status.DEAD


# --- recovery in seconds: a dead relay's claim dies with its connection ------------------------


def test_rows_claimed_by_a_relay_that_died_are_projected_at_once(product):
    claimed = threading.Event()
    killed = threading.Event()
    pids: list[int] = []

    def doomed_relay() -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    pids.append(cursor.fetchone()[0])
                assert claim(100)
                claimed.set()
                killed.wait(10)
        except DatabaseError:
            pass  # its backend is gone
        finally:
            connection.close()

    relay = threading.Thread(target=doomed_relay)
    relay.start()
    assert claimed.wait(10)
    assert drain().rows == 0  # claimed: other relays skip the rows
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", pids)  # the relay's process died
    killed.set()
    relay.join()
    result = drain()
    assert result.projected >= 2 and not OutboxEvent.objects.exists()  # the product and the tree


# --- 10. a write that changes nothing changes nothing ---------------------------------------------


def test_no_op_writes_change_no_version(product, admin_client):
    warehouse = Warehouse.objects.create(code="W1", name="Main")
    services.stock_adjust(product=product, warehouse=warehouse, delta=2)
    before = version_of(product)
    OutboxEvent.objects.all().delete()
    services.stock_adjust(product=product, warehouse=warehouse, delta=0)
    services.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
    Product.objects.get(pk=product.pk).save()
    response = admin_client.post(
        "/api/internal/products/SKU-1/stock/", {"warehouse": "W1", "delta": 0}, content_type="application/json"
    )
    assert response.status_code == 200 and response.json()["version"] == before
    assert version_of(product) == before
    assert not OutboxEvent.objects.exists()
