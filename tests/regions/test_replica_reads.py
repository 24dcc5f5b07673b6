"""A replica region's read path (docs/architecture/regions.md): its Redis, its DynamoDB, then the
home region's DynamoDB, then Postgres; only what its own DynamoDB holds is stored in its Redis; a
client carrying version N never reads less there; its outages; ``projections_check --region``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from io import StringIO
from urllib.parse import urlsplit

import orjson
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from carts.selectors import lines_of
from carts.services import cart_line_set
from carts.tables import Cart
from catalog import services
from catalog.models import Product, Warehouse
from devtools.net import free_port
from hybridsite import cache_keys
from hybridsite.dynamodb import get_item
from orders.services import order_checkout
from projections import cache
from projections.projector import project
from projections.readpath import dynamodb_breaker, home_dynamodb_breaker
from projections.registry import product_cache_name
from projections.tables import TABLES
from tests.regions.conftest import HOME, REPLICA, Regions
from tests.services import TcpProxy

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.aws_engine(reason="two DynamoDB Local processes and the replication stand-in between them"),
]


def url(sku: str = "SKU-1") -> str:
    return f"/api/products/{sku}/"


def served(response) -> tuple[int, str, int | None]:
    """Status, the layer that answered, and the version (the ETag)."""
    etag = response.get("ETag")
    return response.status_code, response["X-Served-From"], int(etag.strip('"')) if etag else None


def entry_version(name: str) -> int | None:
    """The version of this region's Redis entry of a document (None: no entry)."""
    raw = cache.read(cache_keys.document(name))
    return None if raw is None else cache.decode(raw).version


def floor_of(name: str) -> int:
    raw = cache.read(cache_keys.floor(name))
    return int(raw or 0)


def reprice(product: Product, amount: str) -> int:
    """A new price committed in Postgres (not projected): the product's new version."""
    services.price_set(product=product, currency="EUR", amount=Decimal(amount))
    product.refresh_from_db()
    return product.version


def projected(product: Product) -> int:
    """Projected in the home region (its DynamoDB and Redis): the version projected."""
    product.refresh_from_db()
    project("product", product.pk)
    return product.version


def address(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


def token_client(username: str, *, staff_may: str = "") -> tuple[Client, int]:
    """A client with a token of a new user (staff with the catalog permission ``staff_may``)."""
    user = get_user_model().objects.create_user(username, password="x", is_staff=bool(staff_may))
    if staff_may:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="catalog", codename=staff_may))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}"), user.pk


def call(client: Client, method: str, path: str, body: object = None, **headers: str) -> tuple[object, dict]:
    response = getattr(client, method)(
        path, data=json.dumps(body) if body is not None else None, content_type="application/json", **headers
    )
    return response, (orjson.loads(response.content) if response.content else {})


@pytest.fixture
def saw(product: Product) -> Product:
    """SKU-2, a saw in the hammer's category."""
    saw = services.product_create(sku="SKU-2", name="Saw", category=product.category)
    services.price_set(product=saw, currency="EUR", amount=Decimal("24.50"))
    saw.refresh_from_db()
    return saw


def test_a_replica_miss_reads_its_dynamodb_then_the_home_regions_then_postgres_and_keeps_only_its_own(
    client: Client, product: Product, regions: Regions
) -> None:
    name = product_cache_name("SKU-1")
    replication = regions.replication(list(TABLES))
    v1 = projected(product)
    replication.settle()
    with regions.replica():
        assert served(client.get(url())) == (200, "dynamodb", v1)  # the replica's own: kept in its Redis
        assert served(client.get(url())) == (200, "cache", v1)

    replication.pause()
    v2 = reprice(product, "1.23")
    projected(product)  # the home region's DynamoDB holds v2; the replica's still v1
    with regions.replica():
        response = client.get(url(), {"min_version": v2})
        assert served(response) == (200, "home-dynamodb", v2)
        assert orjson.loads(response.content)["prices"]["EUR"] == "1.23"
        # Served, not kept: the replica's DynamoDB has not had v2. The floor rose, and the v1 entry
        # below it went: this region never answers v1 again.
        assert entry_version(name) is None and floor_of(name) == v2
        assert served(client.get(url())) == (200, "home-dynamodb", v2)
        assert entry_version(name) is None

    v3 = reprice(product, "2.34")  # in Postgres only; and the home region's DynamoDB unreachable
    with regions.replica(home_dynamodb=f"http://127.0.0.1:{free_port()}"):
        response = client.get(url(), {"min_version": v3})
        assert served(response) == (200, "postgres", v3)
        assert orjson.loads(response.content)["prices"]["EUR"] == "2.34"
        assert entry_version(name) is None and floor_of(name) == v3

    projected(product)
    replication.resume()
    replication.settle()
    with regions.replica():  # replicated: the replica's own layers answer again
        assert served(client.get(url())) == (200, "dynamodb", v3)
        assert served(client.get(url())) == (200, "cache", v3)


def test_a_client_carrying_version_n_reads_n_or_newer_in_the_replica_and_304_at_n(
    client: Client, product: Product, regions: Regions
) -> None:
    replication = regions.replication(list(TABLES))
    v1 = projected(product)
    replication.settle()
    with regions.replica():
        assert served(client.get(url())) == (200, "dynamodb", v1)
        # A client holding v1 here: the replica's Redis has it.
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v1}"')) == (304, "cache", v1)

    replication.pause()
    reprice(product, "1.23")
    v2 = projected(product)
    home = client.get(url())  # the client reads v2 in the home region...
    assert served(home) == (200, "cache", v2)
    with regions.replica():  # ...and is routed to the replica, whose layers hold v1 only
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=home["ETag"])) == (304, "home-dynamodb", v2)
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'W/"{v1}", W/"{v2}"')) == (304, "home-dynamodb", v2)
        response = client.get(url(), {"min_version": v2})
        assert served(response) == (200, "home-dynamodb", v2)
        assert orjson.loads(response.content)["version"] == v2

    replication.resume()
    replication.settle()
    with regions.replica():
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v2}"')) == (304, "dynamodb", v2)
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v2}"')) == (304, "cache", v2)


def test_with_its_dynamodb_down_a_replica_serves_its_redis_and_the_home_regions_dynamodb(
    client: Client, product: Product, saw: Product, regions: Regions
) -> None:
    """Products, the category listing and a customer's orders."""
    warehouse = Warehouse.objects.create(code="AMS1", name="Amsterdam")
    services.stock_adjust(product=product, warehouse=warehouse, delta=5)
    alice, alice_id = token_client("alice")
    replication = regions.replication(list(TABLES))
    hammer_version, saw_version = projected(product), projected(saw)
    cart_line_set(user_id=alice_id, sku="SKU-1", quantity=2)
    order = order_checkout(user_id=alice_id, idempotency_key="k-1")
    project("order", order.pk)
    order.refresh_from_db()
    replication.settle()

    proxy = TcpProxy(*address(regions.replica_endpoint))
    try:
        with regions.replica(dynamodb=proxy.url):
            assert served(client.get(url())) == (200, "dynamodb", hammer_version)  # now in the replica's Redis
            proxy.down()
            assert served(client.get(url())) == (200, "cache", hammer_version)
            assert served(client.get(url("SKU-2"))) == (200, "home-dynamodb", saw_version)
            assert entry_version(product_cache_name("SKU-2")) is None

            listing = client.get("/api/categories/tools/products/")
            assert listing.status_code == 200 and listing["X-Served-From"] == "home-dynamodb"
            assert [item["sku"] for item in orjson.loads(listing.content)["items"]] == ["SKU-1", "SKU-2"]

            response = alice.get("/api/orders/")
            assert response.status_code == 200 and response["X-Served-From"] == "home-dynamodb"
            assert [found["id"] for found in orjson.loads(response.content)["results"]] == [order.pk]
            assert served(alice.get(f"/api/orders/{order.pk}/")) == (200, "home-dynamodb", order.version)
    finally:
        proxy.down()


def test_with_the_home_regions_dynamodb_down_a_replica_serves_what_it_has_and_never_goes_back(
    client: Client, product: Product, saw: Product, regions: Regions
) -> None:
    """Its Redis and its own DynamoDB answer as before (the home region's breaker opens, its own
    stays closed); what neither holds at the version a client carries comes from Postgres."""
    replication = regions.replication(list(TABLES))
    v1 = projected(product)
    saw_version = projected(saw)
    replication.settle()
    with regions.replica():
        assert served(client.get(url())) == (200, "dynamodb", v1)  # kept in the replica's Redis
    v2 = reprice(product, "1.23")
    projected(product)
    replication.settle()  # the replica's DynamoDB holds v2; its Redis still v1 (no cache_follow here)
    replication.pause()
    v3 = reprice(product, "2.34")
    projected(product)  # v3 in the home region only
    home = client.get(url())
    assert served(home) == (200, "cache", v3)

    proxy = TcpProxy(*address(regions.home_endpoint))
    proxy.down()
    with regions.replica(home_dynamodb=proxy.url):
        assert served(client.get(url())) == (200, "cache", v1)  # what it has
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v2}"')) == (304, "dynamodb", v2)
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v2}"')) == (304, "cache", v2)  # now kept
        assert served(client.get(url("SKU-2"))) == (200, "dynamodb", saw_version)
        for _ in range(settings.BREAKER_FAILURES):  # a client that read v3 in the home region
            assert served(client.get(url(), HTTP_IF_NONE_MATCH=home["ETag"])) == (304, "postgres", v3)
        assert home_dynamodb_breaker.is_open and not dynamodb_breaker.is_open
        assert served(client.get(url(), HTTP_IF_NONE_MATCH=f'"{v2}"')) == (200, "postgres", v3)  # never back
        listing = client.get("/api/categories/tools/products/")
        assert listing.status_code == 200 and listing["X-Served-From"] == "dynamodb"
    proxy.down()


@contextmanager
def postgres_down() -> Iterator[None]:
    """This process's database connection pointed at a port nobody listens on."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_with_postgres_down_a_replica_serves_reads_and_carts_and_answers_503_to_checkout_and_staff_writes(
    client: Client, product: Product, saw: Product, regions: Regions
) -> None:
    alice, alice_id = token_client("alice")
    clerk, _ = token_client("clerk", staff_may="change_price")
    replication = regions.replication([*TABLES, Cart])
    hammer_version, saw_version = projected(product), projected(saw)
    replication.settle()
    with regions.replica():
        assert alice.get("/api/cart/").status_code == 200  # her token's owner, in the replica's Redis
        assert served(client.get(url())) == (200, "dynamodb", hammer_version)
        with postgres_down():
            assert served(client.get(url())) == (200, "cache", hammer_version)
            assert served(client.get(url("SKU-2"))) == (200, "dynamodb", saw_version)

            response, body = call(alice, "put", "/api/cart/items/SKU-1/", {"quantity": 2})
            assert response.status_code == 200, body
            assert [(line["sku"], line["quantity"]) for line in body["lines"]] == [("SKU-1", 2)]

            for response, body in (
                call(alice, "post", "/api/orders/", {}, HTTP_IDEMPOTENCY_KEY="k-1"),
                call(clerk, "put", "/api/internal/products/SKU-1/price/", {"currency": "EUR", "amount": "1.00"}),
            ):
                assert response.status_code == 503, body
                assert response["Retry-After"] == "5"
                assert body == {"error": {
                    "code": "unavailable", "message": "The database cannot be reached right now; retry shortly.",
                }}

    # The cart was written in the replica's table; replication brings it to the home region's,
    # whose stream the write-back consumer applies to Postgres.
    replication.settle()
    home_cart = get_item(Cart, {"user_id": str(alice_id)})
    assert home_cart is not None and lines_of(home_cart) == {"SKU-1": 2}


def run_check(*args: str) -> tuple[int, list[str]]:
    """``projections_check``: its exit code (SystemExit) and its output lines."""
    out = StringIO()
    try:
        call_command("projections_check", *args, stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue().splitlines()
    return 0, out.getvalue().splitlines()


def test_projections_check_region_compares_its_dynamodb_with_postgres_and_its_redis_with_its_dynamodb(
    client: Client, product: Product, regions: Regions
) -> None:
    name = product_cache_name("SKU-1")
    replication = regions.replication(list(TABLES))
    project("category", 0)
    v1 = projected(product)
    replication.settle()
    with regions.replica():
        assert served(client.get(url())) == (200, "dynamodb", v1)
        assert run_check("--region", REPLICA) == (0, [
            "checked=2 missing=0 stale=0 differ=0 extra=0", "cache checked=1 ahead=0 behind=0",
        ])

    replication.pause()
    reprice(product, "1.23")
    v2 = projected(product)
    with regions.home():  # checked from the home region: the replica's tables and Redis
        # Behind: the document and the listing item at v1; the history's v2 item missing.
        assert run_check("--region", REPLICA) == (1, [
            "checked=2 missing=1 stale=2 differ=0 extra=0", "cache checked=1 ahead=0 behind=0",
        ])
    with regions.replica():
        body = client.get(url(), {"min_version": v2}).content  # from the home region, not kept here
        cache.store(name, v2, body)  # as a fill that kept it would have: a version its DynamoDB lacks
        assert run_check("--region", REPLICA)[1][1] == "cache checked=1 ahead=1 behind=0"

    replication.resume()
    replication.settle()
    with regions.home():
        assert run_check("--region", REPLICA) == (0, [
            "checked=2 missing=0 stale=0 differ=0 extra=0", "cache checked=1 ahead=0 behind=0",
        ])
        code, lines = run_check("--region", HOME)  # the home region's own: its Redis holds the tree too
        assert code == 0 and lines[1].endswith(" ahead=0 behind=0"), lines
        with pytest.raises(CommandError, match="--repair writes in the home region"):
            call_command("projections_check", "--region", REPLICA, "--repair")
