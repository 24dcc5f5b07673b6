"""`make bench SCALE=N`: what each read, each byte and each capacity unit costs as the catalog grows.

N products, one leaf category per 10 of them (at least the demo's 24) under the demo's six roots,
and one large category holding a tenth of the products (so that its listing has a page 500 at two
items a page). Steps, all timed:

1. a fresh database, ``bench-`` tables (their streams off: see :func:`streams_off`) and ``hs-bench-``
   Redis keys; the catalog seeded with chunked ``bulk_create`` (the triggers on: they give each
   product its version and an outbox row, which the backfill makes moot and which are then deleted);
2. the backfill (documents/s, total time);
3. sizes: Postgres bytes per product (the catalog tables with their indexes), DynamoDB bytes per
   product (``DescribeTable``), Redis bytes per cached product (``MEMORY USAGE`` of entry and
   floor) and the ``maxmemory`` a hot set of a given size needs; the largest item of each table
   and the write units of one projection, from the items themselves (DynamoDB's size rules);
4. reads in process through the real API: hot hit p50/p95, DynamoDB hit (Redis entry dropped
   first), listing page 1 and page 500 (Redis page dropped first, and cached), the category tree
   (cached, and its Redis entry dropped first);
5. capacity units that DynamoDB reports (``ReturnConsumedCapacity``, DynamoDB Local answers it):
   read units per Redis miss, write units per cart write.

Each result is kept as bench/results/scale-N.json; the report sets the figures beside those of
every other N kept there (large N over small N). Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import defaultdict
from typing import Any

from bench import report
from bench.config import Clock, Config, log

LEAF_SHARE = 10  # products per leaf category: 100,000 categories for 1,000,000 products
BIG_SHARE = 10  # one product in this many goes to the large category
PAGE_LIMIT = 2  # items per listing page: page 500 exists from 1,000 products in the large category
DEEP_PAGE = 500
HOT_SET_SIZES = (10_000, 100_000, 1_000_000)
REDIS_HEADROOM = 1.25  # maxmemory for a hot set: its bytes and a quarter more (fragmentation, the rest)


# --- consumed capacity ------------------------------------------------------------------------------


class Capacity:
    """Capacity units DynamoDB reports for every call of the botocore clients (``ReturnConsumedCapacity``
    asked of each), counted while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.units: dict[str, float] = defaultdict(float)

    def ask(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.active and model.input_shape and "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"

    def count(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self.active:
            return
        consumed = parsed.get("ConsumedCapacity") or []
        for part in consumed if isinstance(consumed, list) else [consumed]:
            self.units[model.name] += float(part.get("CapacityUnits") or 0)

    def take(self) -> dict[str, float]:
        units, self.units = dict(self.units), defaultdict(float)
        return units


CAPACITY = Capacity()


def install_capacity_hooks() -> None:
    """Before any client is built: every client the adapter builds asks for and reports capacity."""
    from hybridsite.dynamodb import client_hook_add

    client_hook_add("before-parameter-build.dynamodb", CAPACITY.ask)
    client_hook_add("after-call.dynamodb", CAPACITY.count)


# --- 1. seed ----------------------------------------------------------------------------------------


def seed(n: int, clock: Clock) -> dict[str, Any]:
    from django.db import connection, transaction

    from catalog.management.commands.seed_demo import (
        CATEGORY_TREE,
        categories_ensure,
        product_draft,
        warehouses_ensure,
    )
    from catalog.models import Category, OutboxEvent, Price, Product, StockLevel

    began = time.perf_counter()
    with transaction.atomic():
        leaves, _ = categories_ensure()
        roots = list(Category.objects.filter(parent=None).order_by("pk"))
        nouns = [noun for children in CATEGORY_TREE.values() for names in children.values() for noun in names]
        extra = max(0, n // LEAF_SHARE - len(leaves))
        more = Category.objects.bulk_create(
            Category(slug=f"scale-{i:07d}", name=f"Assorted {nouns[i % len(nouns)]} and accessories {i:07d}",
                     parent=roots[i % len(roots)])
            for i in range(extra)
        )
        leaves += [(category, (nouns[i % len(nouns)],)) for i, category in enumerate(more)]
        big = Category.objects.create(slug="scale-large", name="Everything in one large category", parent=roots[0])
        warehouses, _ = warehouses_ensure()
    categories = Category.objects.count()
    for start in range(1, n + 1, 1_000):
        with transaction.atomic():
            drafts = [
                product_draft(seed=42, number=number, leaves=leaves, warehouses=warehouses)
                for number in range(start, min(start + 1_000, n + 1))
            ]
            for number, (product, _, _) in enumerate(drafts, start):
                if number % BIG_SHARE == 0:
                    product.category = big
                    product.is_active = True
            Product.objects.bulk_create([product for product, _, _ in drafts])
            Price.objects.bulk_create([price for _, prices, _ in drafts for price in prices])
            StockLevel.objects.bulk_create([level for _, _, stock in drafts for level in stock])
    seconds = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {OutboxEvent._meta.db_table}")  # the backfill projects everything
    result = {"products": n, "categories": categories, "seconds": seconds, "products_per_second": n / seconds}
    clock.step("seed", began, f"{n:,} products, {categories:,} categories, {result['products_per_second']:,.0f}/s")
    return result


# --- 3. sizes ---------------------------------------------------------------------------------------


def _value_size(value: dict[str, Any]) -> int:
    """DynamoDB's size of an attribute value (its documented rules, close enough for capacity)."""
    kind, inner = next(iter(value.items()))
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return (len(inner.lstrip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _value_size(v) + 1 for k, v in inner.items())
    if kind == "L":
        return 3 + sum(_value_size(v) + 1 for v in inner)
    return sum(len(str(v)) for v in inner)  # sets


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def dynamodb_sizes(n: int, sample: int) -> dict[str, Any]:
    """Per table: bytes and items (``DescribeTable``), the largest item of a sample (a Scan of up to
    ``sample`` items); per owner in the sample: the write units of writing all its items once."""
    from hybridsite import dynamodb

    tables: dict[str, Any] = {}
    units_by_owner: dict[str, int] = defaultdict(int)
    total_bytes = 0
    for model in dynamodb.all_tables():
        client = dynamodb.client(model)
        name = model.Meta.table_name
        described = client.describe_table(TableName=name)["Table"]
        largest, scanned, start = 0, 0, None
        while scanned < sample:
            page = client.scan(TableName=name, Limit=min(1_000, sample - scanned),
                               **({"ExclusiveStartKey": start} if start else {}))
            for item in page["Items"]:
                size = item_size(item)
                largest = max(largest, size)
                owner = item.get("owner", {}).get("S")
                if owner:
                    units_by_owner[owner] += math.ceil(size / 1024)
            scanned += len(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        total_bytes += described.get("TableSizeBytes", 0)
        tables[name] = {"items": described.get("ItemCount", 0), "bytes": described.get("TableSizeBytes", 0),
                        "largest_item_bytes": largest}
    products = [units for owner, units in units_by_owner.items() if owner.startswith("product")]
    return {
        "tables": tables,
        "bytes_per_product": total_bytes / n,
        "write_units_per_product_projection": sum(products) / len(products) if products else None,
    }


def postgres_bytes_per_product(n: int) -> float:
    from django.db import connection

    from catalog.models import Price, Product, StockLevel

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest(%s::text[]) t",
            [[m._meta.db_table for m in (Product, Price, StockLevel)]],
        )
        return float(cursor.fetchone()[0]) / n


def redis_bytes_per_product(skus: list[str]) -> dict[str, Any]:
    """MEMORY USAGE of each cached product's entry and floor (read through the API first)."""
    from hybridsite import cache_keys
    from projections import cache
    from projections.registry import product_cache_name

    redis = cache.client()
    sizes = []
    for sku in skus:
        name = product_cache_name(sku)
        entry = redis.memory_usage(cache_keys.document(name), samples=0) or 0
        floor = redis.memory_usage(cache_keys.floor(name), samples=0) or 0
        if entry:
            sizes.append(entry + floor)
    per = sum(sizes) / len(sizes) if sizes else float("nan")
    return {
        "bytes_per_cached_product": per,
        "maxmemory_for_hot_set": {str(h): math.ceil(h * per * REDIS_HEADROOM) for h in HOT_SET_SIZES},
    }


# --- 4 and 5. reads and capacity --------------------------------------------------------------------


def _timed(driver: Any, paths: list[str], before: Any = None) -> tuple[dict[str, float], dict[str, int]]:
    latencies, served = [], defaultdict(int)
    for path in paths:
        if before:
            before(path)
        began = time.perf_counter_ns()
        response = driver.get(path)
        latencies.append((time.perf_counter_ns() - began) / 1000)
        served[f"{response.status} {response.headers.get('X-Served-From', '')}"] += 1
    return report.summarize(latencies), dict(served)


def reads(cfg: Config, hot: list[str]) -> dict[str, Any]:
    from django.test import override_settings

    # Each listing page this run makes Redis hold would be charged to the one bench client.
    with override_settings(THROTTLE_CACHE_FILLS_PER_MINUTE=10**9):
        return _reads(cfg, hot)


def _reads(cfg: Config, hot: list[str]) -> dict[str, Any]:
    from bench.inprocess import Driver
    from bench.state import forget_cached
    from hybridsite import cache_keys
    from projections import cache
    from projections.registry import category_tree_document

    driver = Driver()
    redis = cache.client()
    urls = [f"/api/products/{sku}/" for sku in hot]
    for url in urls:  # each in Redis
        driver.get(url)
        driver.get(url)
    results: dict[str, Any] = {}
    n = cfg.requests["hit"]
    results["hit"] = _timed(driver, [urls[i % len(urls)] for i in range(n)])
    sku_of = dict(zip(urls, hot))
    results["dynamodb"] = _timed(driver, urls[: cfg.requests["dynamodb"]], lambda url: forget_cached([sku_of[url]]))

    listing = "/api/categories/scale-large/products/"
    cursor_of_page = {1: ""}
    cursor = ""
    for page in range(2, DEEP_PAGE + 1):
        body = json.loads(driver.get(f"{listing}?limit={PAGE_LIMIT}&cursor={cursor}").body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
        cursor_of_page[page] = cursor
    for page in (1, DEEP_PAGE):
        if page not in cursor_of_page:
            log(f"scale: the large category has no page {page} at {PAGE_LIMIT} a page")
            continue
        url = f"{listing}?limit={PAGE_LIMIT}&cursor={cursor_of_page[page]}"
        results[f"listing_page_{page}_uncached"] = _timed(
            driver, [url] * 100, lambda _: redis.incr(cache_keys.listing_generation("scale-large"))
        )
        results[f"listing_page_{page}_cached"] = _timed(driver, [url] * 300)

    tree = cache_keys.document(category_tree_document().name)
    results["category_tree_cached"] = _timed(driver, ["/api/categories/"] * 300)
    results["category_tree_uncached"] = _timed(driver, ["/api/categories/"] * 20, lambda _: redis.delete(tree))
    return results


def capacity(hot: list[str]) -> dict[str, Any]:
    """Capacity units reported by each kind of DynamoDB call, over a sample of Redis misses
    (DynamoDB hits) and of cart writes (``PUT`` a line)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from bench.inprocess import Driver
    from bench.state import forget_cached

    driver = Driver()
    sample = hot[:50]
    CAPACITY.take()
    CAPACITY.active = True
    try:
        for sku in sample:
            forget_cached([sku])
            driver.get(f"/api/products/{sku}/")
        miss = CAPACITY.take()
        user = get_user_model().objects.create(username=f"bench-scale-{random.randrange(10**9)}")
        token = Token.objects.create(user=user)
        for i, sku in enumerate(sample):
            response = driver.request(
                "PUT", f"/api/cart/items/{sku}/", json.dumps({"quantity": i % 5 + 1}).encode(),
                HTTP_AUTHORIZATION=f"Token {token.key}", CONTENT_TYPE="application/json",
            )
            if response.status >= 300:
                raise RuntimeError(f"cart write answered {response.status}: {response.body[:200]!r}")
        cart = CAPACITY.take()
    finally:
        CAPACITY.active = False
    return {"requests": len(sample), "miss_calls": miss, "cart_calls": cart}


def projection_units(sample: int = 50) -> dict[str, Any]:
    """Write units DynamoDB reported (``ReturnConsumedCapacity`` on the projector's conditional
    puts) for what a change costs to project: ``sample`` products renamed (their document, listing
    item and history entry), and one category renamed (the tree's piece holding it and its head),
    each change made in Postgres and projected here. Per table without the deployment's prefix."""
    from django.conf import settings
    from django.db.models import F, Value
    from django.db.models.functions import Concat

    from catalog.models import Category, OutboxEvent, Product
    from projections.sizes import write_units_per_projection
    from projections.tables import CategoryListingItem, CategoryTreeDocument

    def base(per_table: dict[str, float]) -> dict[str, float]:
        return {table.removeprefix(settings.DYNAMODB_TABLE_PREFIX): units for table, units in per_table.items()}

    ids = list(Product.objects.filter(is_active=True).order_by("pk").values_list("pk", flat=True)[:sample])
    Product.objects.filter(pk__in=ids).update(name=Concat(F("name"), Value(".")))
    product = base(write_units_per_projection("product", ids, repair=False))
    category, _ = Category.objects.update_or_create(
        slug="scale-renamed",
        defaults={"name": "A category the bench renames", "parent": Category.objects.filter(parent=None).first()},
    )
    write_units_per_projection("category", [0], repair=False)  # the new category, before its rename
    Category.objects.filter(pk=category.pk).update(name="A category the bench renamed")
    tree = base(write_units_per_projection("category", [0], repair=False))
    whole_tree = base(write_units_per_projection("category", [0]))  # every piece rewritten (repair)
    OutboxEvent.objects.all().delete()  # the changes above, projected here
    listing = CategoryListingItem.Meta.table_name.removeprefix(settings.DYNAMODB_TABLE_PREFIX)
    tree_table = CategoryTreeDocument.Meta.table_name.removeprefix(settings.DYNAMODB_TABLE_PREFIX)
    return {
        "products": len(ids),
        "product_projection": product,
        "product_projection_total": sum(product.values()),
        "listing_item": product.get(listing, 0.0),
        "tree_change": tree.get(tree_table, 0.0),
        "tree_rewrite": whole_tree.get(tree_table, 0.0),
    }


READ_CALLS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})


def units(figures: dict[str, Any], calls: str, kind: str) -> float:
    """Read or write units per request, from the units each DynamoDB call reported."""
    reported = figures["capacity"][calls]
    picked = [u for op, u in reported.items() if (op in READ_CALLS) == (kind == "read")]
    return sum(picked) / figures["capacity"]["requests"]


# --- the run ----------------------------------------------------------------------------------------


def streams_off() -> None:
    """The tables without their streams: nothing reads them here, and DynamoDB Local reads a table's
    stream description on every write, at a cost that grows with the stream records it keeps (24 h
    of them: three million at N = 1,000,000, when a put took seconds). On AWS a stream costs a
    write nothing, so with streams on this bench would measure the emulator's bookkeeping."""
    from hybridsite.dynamodb import all_tables, client

    for model in all_tables():
        if getattr(model.Meta, "stream_view_type", None):
            client(model).update_table(TableName=model.Meta.table_name, StreamSpecification={"StreamEnabled": False})


def run(n: int, clock: Clock) -> dict[str, Any]:
    from django.conf import settings
    from django.core.management import call_command

    from bench import prepare
    from bench.database import fresh_database
    from catalog.models import OutboxEvent, Product
    from hybridsite.dynamodb import tables_drop, tables_ensure
    from projections import metrics
    from projections.backfill import backfill as run_backfill
    from projections.cache import client as cache_client

    cfg = Config.short()
    install_capacity_hooks()
    began = time.perf_counter()
    fresh_database(settings.DATABASES["default"]["NAME"])
    call_command("migrate", interactive=False, verbosity=0)
    prepare.fresh_redis_and_queue()
    tables_drop()
    tables_ensure()
    streams_off()
    clock.step("setup", began, "bench database, tables and Redis keys fresh, their streams off")
    seeded = seed(n, clock)
    prepare.warm_dynamodb_local(cfg.warmup_puts, clock)

    began = time.perf_counter()
    count = prepare.backfill_products(cfg)
    backfill_seconds = time.perf_counter() - began
    try:
        run_backfill("category")
        tree_error = ""
    except Exception as exc:  # noqa: BLE001 (a tree over DynamoDB's item size: reported, the run goes on)
        tree_error = f"{type(exc).__name__}: {exc}"[:300]
        log(f"scale: the category tree was not projected: {tree_error}")
    OutboxEvent.objects.all().delete()
    metrics.reset()
    backfilled = {"documents": count, "seconds": backfill_seconds, "docs_per_second": count / backfill_seconds,
                  "category_tree_error": tree_error}
    clock.step("backfill", began, f"{count:,} products, {backfilled['docs_per_second']:,.0f} documents/s")

    rng = random.Random(20240605)
    active = list(Product.objects.filter(is_active=True).values_list("sku", flat=True).order_by("pk"))
    hot = rng.sample(active, min(200, len(active)))
    redis = cache_client()
    evicted_before = int(redis.info("stats")["evicted_keys"])
    began = time.perf_counter()
    read_figures = reads(cfg, hot)
    memory = redis.info("memory")
    redis_state = {
        "used_memory": int(memory["used_memory"]), "maxmemory": int(memory["maxmemory"]),
        "evicted_keys_while_reading": int(redis.info("stats")["evicted_keys"]) - evicted_before,
    }
    clock.step("reads", began, ", ".join(f"{k} p50 {v[0]['p50']:,.0f} µs" for k, v in read_figures.items()))

    began = time.perf_counter()
    sizes = {
        "postgres_bytes_per_product": postgres_bytes_per_product(n),
        "dynamodb": dynamodb_sizes(n, sample=20_000),
        "redis": {**redis_bytes_per_product(hot), **redis_state},
    }
    capacity_figures = capacity(hot)
    write_units = projection_units()
    clock.step("sizes and capacity", began, f"{sizes['postgres_bytes_per_product']:,.0f} B/product in Postgres,"
               f" {sizes['dynamodb']['bytes_per_product']:,.0f} B/product in DynamoDB,"
               f" {sizes['redis']['bytes_per_cached_product']:,.0f} B/cached product in Redis")
    return {
        "n": n, "machine": report.machine(), "dynamodb": report.dynamodb_description(),
        "seed": seeded, "backfill": backfilled, "sizes": sizes, "reads": read_figures,
        "capacity": capacity_figures, "write_units": write_units, "durations_seconds": clock.steps,
    }


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:,.0f}{unit}" if abs(value) >= 10 else f"{value:,.2f}{unit}"


def markdown(results: list[dict[str, Any]]) -> str:
    """Every kept N side by side; the last column: the largest N over the smallest."""
    results = sorted(results, key=lambda r: r["n"])
    small, large = results[0], results[-1]
    head = " | ".join(f"N = {r['n']:,}" for r in results)
    lines = [
        "## Cost as the catalog grows (make bench SCALE=N)",
        "",
        f"Machine: {large['machine']['cpu']}, {large['machine']['nproc']} CPUs; {large['dynamodb']}.",
        "",
        f"| figure | {head} | large / small |",
        "|---|" + "---:|" * (len(results) + 1),
    ]

    def row(label: str, get: Any, unit: str = "") -> None:
        values = []
        for r in results:
            try:
                values.append(get(r))
            except (KeyError, TypeError, IndexError):
                values.append(None)
        ratio = (f"{values[-1] / values[0]:.2f}x" if len(results) > 1 and values[0] and values[-1] is not None
                 else "")
        lines.append(f"| {label} | " + " | ".join(_fmt(v, unit) for v in values) + f" | {ratio} |")

    row("categories", lambda r: r["seed"]["categories"])
    row("seed, products/s", lambda r: r["seed"]["products_per_second"])
    row("backfill, documents/s", lambda r: r["backfill"]["docs_per_second"])
    row("backfill, total seconds", lambda r: r["backfill"]["seconds"])
    row("Postgres bytes per product", lambda r: r["sizes"]["postgres_bytes_per_product"])
    row("DynamoDB bytes per product", lambda r: r["sizes"]["dynamodb"]["bytes_per_product"])
    row("Redis bytes per cached product", lambda r: r["sizes"]["redis"]["bytes_per_cached_product"])
    for h in HOT_SET_SIZES:
        row(f"maxmemory for a hot set of {h:,} products, MiB",
            lambda r, h=h: r["sizes"]["redis"]["maxmemory_for_hot_set"][str(h)] / 2**20)
    row("Redis used memory after the reads, MiB", lambda r: r["sizes"]["redis"]["used_memory"] / 2**20)
    row("Redis keys evicted during the reads", lambda r: r["sizes"]["redis"]["evicted_keys_while_reading"])
    for name, label in (
        ("hit", "hot hit"), ("dynamodb", "DynamoDB hit (Redis miss)"),
        ("listing_page_1_uncached", "listing page 1, Query"), (f"listing_page_{DEEP_PAGE}_uncached",
                                                               f"listing page {DEEP_PAGE}, Query"),
        ("listing_page_1_cached", "listing page 1, cached"), (f"listing_page_{DEEP_PAGE}_cached",
                                                              f"listing page {DEEP_PAGE}, cached"),
        ("category_tree_cached", "category tree, cached"), ("category_tree_uncached", "category tree, Redis miss"),
    ):
        row(f"{label} p50 µs", lambda r, name=name: r["reads"][name][0]["p50"])
        if name.startswith("category_tree"):  # the answer holds every category: its size, not N, sets its time
            row(f"{label} p50 µs per 1,000 categories",
                lambda r, name=name: r["reads"][name][0]["p50"] * 1_000 / r["seed"]["categories"])
        if name == "hit":
            row(f"{label} p95 µs", lambda r: r["reads"]["hit"][0]["p95"])
    row("write units per product projection (from its items' sizes)",
        lambda r: r["sizes"]["dynamodb"]["write_units_per_product_projection"])
    row("write units per product projection (reported: document, listing, history, owner index)",
        lambda r: r["write_units"]["product_projection_total"])
    row("write units per listing item (reported)", lambda r: r["write_units"]["listing_item"])
    row("write units per tree change, one rename (reported)", lambda r: r["write_units"]["tree_change"])
    row("write units per whole tree rewrite (reported)", lambda r: r["write_units"]["tree_rewrite"])
    row("write units per cart write (reported)", lambda r: units(r, "cart_calls", "write"))
    row("read units per cart write (reported)", lambda r: units(r, "cart_calls", "read"))
    row("read units per Redis miss (reported)", lambda r: units(r, "miss_calls", "read"))
    lines += ["", "Largest item per table (bytes, from a Scan of up to 20,000 items):", ""]
    for table, figures in large["sizes"]["dynamodb"]["tables"].items():
        lines.append(f"- {table}: {figures['largest_item_bytes']:,} (of {figures['items']:,} items)")
    for r in results:
        if r["backfill"].get("category_tree_error"):
            error = r["backfill"]["category_tree_error"]
            lines += ["", f"At N = {r['n']:,} the category tree was not projected: {error}"]
    lines += ["", f"Listing pages are {PAGE_LIMIT} items, in a category holding one product in {BIG_SHARE};"
              " `Query` = the page's Redis entry dropped first (its listing generation counted up)."]
    if small is large:
        lines += ["", "Only one N kept: run another (`make bench SCALE=M`) to see the ratios."]
    return "\n".join(lines) + "\n"


def main(n: int) -> int:
    clock = Clock()
    log(f"SCALE run, {n:,} products")
    result = run(n, clock)
    report.RESULTS.mkdir(exist_ok=True)
    (report.RESULTS / f"scale-{n}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    kept = [json.loads(path.read_text()) for path in sorted(report.RESULTS.glob("scale-*.json"))]
    table = markdown(kept)
    (report.RESULTS / "scale.md").write_text(table)
    print(table)
    print(f"Run took {time.perf_counter() - clock.started:.0f}s. Written: bench/results/scale-{n}.json, scale.md.")
    return 0

