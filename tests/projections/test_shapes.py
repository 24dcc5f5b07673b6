"""A new product document shape rolled out behind switches, without a deploy and without a
failed read: write the new shape, reshape what is stored, serve the new shape, old shape gone."""

from __future__ import annotations

import random
import threading
from decimal import Decimal
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from waffle.models import Switch

from catalog import services
from catalog.models import Category, Product
from devtools.net import wait_for
from projections import relay, shapes
from projections.backfill import backfill
from projections.documents import product_in_shape, product_shape
from projections.drift import check

pytestmark = pytest.mark.django_db(transaction=True)

V1 = orjson.dumps({"sku": "S", "prices": {"USD": "2.00", "EUR": "1.00"}, "version": 3})


def switch(name: str, on: bool) -> None:
    Switch.objects.update_or_create(name=name, defaults={"active": on})  # clears waffle's cached value


def shape_counts() -> str:
    out = StringIO()
    call_command("projections_shapes", stdout=out)
    return out.getvalue()


def test_shapes_convert_both_ways_without_loss():
    v2 = product_in_shape(V1, 2)
    assert product_shape(V1) == 1 and product_shape(v2) == 2
    assert orjson.loads(v2)["prices"] == [{"currency": "EUR", "amount": "1.00"}, {"currency": "USD", "amount": "2.00"}]
    assert orjson.loads(product_in_shape(v2, 1)) == orjson.loads(V1)
    assert product_in_shape(v2, 2) is v2  # already in shape: the bytes as they are


@pytest.fixture
def catalog(flags, dynamodb, redis_clean, settings) -> list[Product]:
    settings.SHAPE_SWITCH_LOCAL_SECONDS = 0.1
    settings.THROTTLE_ANON_PER_MINUTE = 10**9  # one test client reads as fast as it can
    settings.THROTTLE_CACHE_FILLS_PER_MINUTE = 10**9
    category = Category.objects.create(slug="tools", name="Tools")
    products = []
    for n in range(20):
        product = services.product_create(sku=f"SKU-{n}", name=f"Tool {n}", category=category)
        services.price_set(product=product, currency="EUR", amount=Decimal("1.00") + n)
        products.append(product)
    relay.drain()
    return products


def valid(body: bytes) -> int:
    """The body's shape, after checking it is a whole document of that shape."""
    document = orjson.loads(body)
    shape = product_shape(body)
    assert isinstance(document["prices"], dict if shape == 1 else list)
    assert document["sku"].startswith("SKU-")
    return shape


def test_a_rollout_from_shape_1_to_2_while_reads_and_writes_run_fails_no_read(catalog):
    stop = threading.Event()
    failures: list[tuple[str, int, bytes]] = []
    served: list[int] = []

    def read() -> None:
        client, rng = Client(), random.Random(1)
        try:
            while not stop.is_set():
                sku = f"SKU-{rng.randrange(20)}"
                response = client.get(f"/api/products/{sku}/")
                try:
                    assert response.status_code == 200
                    served.append(valid(response.content))
                except (AssertionError, KeyError, orjson.JSONDecodeError):
                    failures.append((sku, response.status_code, response.content[:300]))
        finally:
            connection.close()

    def write() -> None:
        rng = random.Random(2)
        try:
            while not stop.is_set():
                product = rng.choice(catalog)
                services.price_set(product=product, currency="USD", amount=Decimal(rng.randint(1, 999)) / 100)
                relay.drain()
        finally:
            connection.close()

    threads = [threading.Thread(target=read) for _ in range(2)] + [threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(served) > 50, 60, 0.1, "reads of shape 1")
        switch(shapes.WRITE_V2, True)  # 1. new writes in shape 2, still served in shape 1
        backfill("product", reshape=True, rate=200)  # 2. everything stored rewritten in shape 2
        assert "shape1=0 shape2=20" in shape_counts()
        assert set(served) == {1}
        switch(shapes.READ_V2, True)  # 3. served in shape 2
        seen = len(served)
        wait_for(lambda: len(served) > seen + 50 and set(served[-20:]) == {2}, 60, 0.1, "reads of shape 2")
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert "shape1=0 shape2=20" in shape_counts()  # 4. the old shape is gone
    relay.drain()
    assert check().clean


def test_the_etag_names_the_shape_served(catalog, client):
    first = client.get("/api/products/SKU-1/")
    etag = first["ETag"]
    assert client.get("/api/products/SKU-1/", HTTP_IF_NONE_MATCH=etag).status_code == 304
    switch(shapes.READ_V2, True)
    shapes.forget()
    second = client.get("/api/products/SKU-1/", HTTP_IF_NONE_MATCH=etag)
    assert second.status_code == 200  # the same version in another shape is another representation
    assert product_shape(second.content) == 2 and second["ETag"] != etag
