"""/metrics: who may read it, and that every store call, read and pipeline state shows in it with
bounded labels."""

from __future__ import annotations

import urllib.request

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django_redis import get_redis_connection
from prometheus_client.parser import text_string_to_metric_families
from pynamodb.exceptions import GetError, PutError
from redis.exceptions import ResponseError

from catalog import services
from catalog.models import Category, OutboxEvent, Product
from devtools.net import wait_for
from projections import readpath
from projections.projector import project
from projections.tables import ProductDocument

pytestmark = pytest.mark.django_db

CALLS = "hybridsite_store_call_seconds_count"
READS = "hybridsite_read_seconds_count"


def scrape(client: Client, **headers: str) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``, as prometheus_client's
    own parser reads the scrape; fails when there is none."""
    found = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    assert found, (name, labels)
    return sum(found)


# --- who may read it ------------------------------------------------------------------------------


def test_anonymous_callers_are_refused_in_the_error_shape(client: Client, settings) -> None:
    settings.METRICS_TOKEN = "scraper-secret-token"
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer wrong"}, {"HTTP_AUTHORIZATION": "Token not-a-token"}):
        response = client.get("/metrics", **headers)
        assert response.status_code == 401, headers
        assert response["Content-Type"] == "application/json"
        assert set(orjson.loads(response.content)["error"]) == {"code", "message"}
        assert response["WWW-Authenticate"].startswith("Bearer")


def test_signed_in_users_who_are_not_staff_get_403(client: Client) -> None:
    client.force_login(get_user_model().objects.create_user("customer", password="a-long-test-password"))
    response = client.get("/metrics")
    assert response.status_code == 403
    assert orjson.loads(response.content)["error"]["code"] == "permission_denied"


def test_staff_by_session_or_token_and_the_scraper_by_its_token(
    client: Client, staff_client: Client, staff_token: str, settings
) -> None:
    assert "hybridsite_store_call_seconds" in scrape(staff_client)
    assert "hybridsite_store_call_seconds" in scrape(client, HTTP_AUTHORIZATION=f"Token {staff_token}")
    settings.METRICS_TOKEN = "scraper-secret-token"
    assert "hybridsite_outbox_pending" in scrape(client, HTTP_AUTHORIZATION="Bearer scraper-secret-token")


def test_no_scraper_token_configured_lets_no_bearer_in(client: Client, settings) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_a_scraper_asking_for_openmetrics_still_gets_the_text_format(client: Client, staff_client: Client) -> None:
    response = staff_client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response.content.startswith(b"# HELP")


# --- store calls ----------------------------------------------------------------------------------


def test_every_store_call_is_counted_with_its_op_and_outcome(product: Product, sample) -> None:
    def counts() -> dict[str, float]:
        return {
            "pg_select": sample(CALLS, store="postgres", op="select", outcome="ok"),
            "pg_error": sample(CALLS, store="postgres", op="insert", outcome="IntegrityError"),
            "redis_get": sample(CALLS, store="redis", op="get", outcome="ok"),
            "redis_error": sample(CALLS, store="redis", op="incrby", outcome="ResponseError"),
            "redis_pipeline": sample(CALLS, store="redis", op="pipeline", outcome="ok"),
            "ddb_put": sample(CALLS, store="dynamodb", op="put", outcome="ok"),
            "ddb_refused": sample(CALLS, store="dynamodb", op="put", outcome="ConditionalCheckFailedException"),
            "ddb_get": sample(CALLS, store="dynamodb", op="get", outcome="ok"),
        }

    before = counts()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.create(sku="SKU-1", name="again", category=product.category)
    redis = get_redis_connection("default")
    redis.set("hs-ops-test-text", "not a number", ex=60)
    redis.get("hs-ops-test-text")
    with pytest.raises(ResponseError):
        redis.incr("hs-ops-test-text")
    pipe = redis.pipeline(transaction=False)
    pipe.get("hs-ops-test-text").ttl("hs-ops-test-text")
    pipe.execute()
    item = ProductDocument(pk="OPS-1", owner="product:0", version=5, body="{}")
    item.save()
    with pytest.raises(PutError):
        item.save(condition=ProductDocument.version < 5)
    ProductDocument.get("OPS-1", consistent_read=True)

    after = counts()
    grew = {key: after[key] - before[key] for key in before}
    assert grew["pg_select"] >= 1 and grew["pg_error"] == 1
    assert grew["redis_get"] == 1 and grew["redis_error"] == 1 and grew["redis_pipeline"] == 1
    assert grew["ddb_put"] == 1 and grew["ddb_refused"] == 1 and grew["ddb_get"] == 1


def test_the_projectors_puts_are_counted_as_every_other_call(product: Product, sample) -> None:
    """The projector's puts pass no botocore hook (the adapter sends them itself)."""

    def puts(outcome: str) -> float:
        return sample(CALLS, store="dynamodb", op="put", outcome=outcome)

    before = (puts("ok"), puts("ConditionalCheckFailedException"))
    project("product", product.pk)  # the product document, its listing item and its version in the history
    project("product", product.pk)  # the same version again: all three refused by their condition
    assert (puts("ok"), puts("ConditionalCheckFailedException")) == (before[0] + 3, before[1] + 3)


def test_an_unreachable_dynamodb_is_counted_as_a_connection_error(product: Product, dynamodb_proxy, sample) -> None:
    def failures() -> float:
        return sum(
            sample(CALLS, store="dynamodb", op="get", outcome=outcome)
            for outcome in ("EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError")
        )

    before = failures()
    dynamodb_proxy.down()
    with pytest.raises(GetError):
        ProductDocument.get("SKU-1", consistent_read=True)
    assert failures() == before + 1


# --- reads, and what a scrape reads ---------------------------------------------------------------


def test_reads_are_counted_by_the_layer_that_served_them(client: Client, staff_client: Client, product, sample) -> None:
    def reads(served_from: str, route: str = "product-detail", outcome: str = "ok") -> float:
        return sample(READS, route=route, served_from=served_from, outcome=outcome)

    before = {name: reads(name) for name in ("postgres", "cache", "dynamodb")}
    rejected = reads("edge", outcome="rejected")
    scripts = sample(CALLS, store="redis", op="script", outcome="ok")
    assert client.get("/api/products/SKU-1/")["X-Served-From"] == "postgres"
    assert client.get("/api/products/SKU-1/")["X-Served-From"] == "cache"
    assert client.get("/api/products/SKU-1/?min_version=x").status_code == 400

    assert reads("postgres") == before["postgres"] + 1
    assert reads("cache") == before["cache"] + 1
    assert reads("edge", outcome="rejected") == rejected + 1
    assert sample(CALLS, store="redis", op="script", outcome="ok") >= scripts + 2  # one round trip per read at least

    text = scrape(staff_client)
    assert "SKU-1" not in text and "tools" not in text  # no label holds a key
    assert value(text, "hybridsite_breaker_open", dependency="redis") == 0


def test_an_open_breaker_shows(client: Client, staff_client: Client, product, redis_proxy) -> None:
    redis_proxy.down()
    for _ in range(3):
        client.get("/api/products/SKU-1/")
    assert readpath.redis_breaker.is_open
    assert value(scrape(staff_client), "hybridsite_breaker_open", dependency="redis") == 1


def test_outbox_backlog_dead_letters_and_pipeline_counters(
    client: Client, staff_client: Client, product, redis_clean
) -> None:
    """The product's writes left outbox rows (no relay runs here); one is dead-lettered."""
    pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING)
    assert pending.exists()
    OutboxEvent.objects.filter(pk=pending.first().pk).update(status=OutboxEvent.Status.DEAD, last_error="test")
    client.get("/api/products/SKU-1/")
    client.get("/api/products/SKU-1/")
    client.get("/api/products/SKU-1/")

    text = scrape(staff_client)
    assert value(text, "hybridsite_outbox_pending") == pending.count()
    assert value(text, "hybridsite_outbox_dead") == 1
    assert value(text, "hybridsite_outbox_oldest_pending_age_seconds") > 0
    assert value(text, "hybridsite_pipeline_events_total", event="reader.hit") == 2
    assert value(text, "hybridsite_pipeline_events_total", event="reader.miss") == 1
    assert value(text, "hybridsite_cache_hit_ratio") == pytest.approx(2 / 3)


# --- many processes -------------------------------------------------------------------------------


@pytest.mark.integration
def test_one_scrape_adds_up_gunicorn_and_celery_processes(web, worker, staff_token: str) -> None:
    """gunicorn answers with what the Celery worker projected and what its own worker served."""

    def scraped() -> str:
        request = urllib.request.Request(f"{web.url}/metrics", headers={"Authorization": f"Token {staff_token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def lag_count() -> float:
        text = scraped()
        return value(text, "hybridsite_projection_lag_seconds_count") if "hybridsite_projection_lag" in text else 0

    def reads() -> float:
        text = scraped()
        return value(text, "hybridsite_read_seconds_count", route="product-detail") if "product-detail" in text else 0

    lag_before, reads_before = lag_count(), reads()
    tools = Category.objects.create(slug="tools", name="Tools")
    services.product_create(sku="SKU-9", name="Saw", category=tools)
    wait_for(lambda: lag_count() > lag_before, 30, 0.3, "the Celery worker's projection lag in gunicorn's scrape")
    with urllib.request.urlopen(f"{web.url}/api/products/SKU-9/", timeout=10) as response:
        assert response.status == 200
    assert reads() == reads_before + 1
