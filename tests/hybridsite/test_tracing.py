"""Traces and JSON logs: off by default (no instrumentation loaded), and on, the two stories an
operator follows: a read that misses every layer, and a change carried through the outbox.

Spans are collected by the SDK's in-memory exporter in this process.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import botocore.exceptions
import pytest
from django.db import connections
from django.test import Client
from django_redis import get_redis_connection
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from catalog import services
from catalog.models import OutboxEvent, Product
from devtools.net import wait_for
from hybridsite import cache_keys, tracing
from hybridsite.logs import JsonFormatter
from projections import relay, shapes
from projections.readpath import dynamodb_breaker
from projections.tasks import relay_outbox

pytestmark = pytest.mark.django_db(transaction=True)

EXPORTER = InMemorySpanExporter()  # the process's one tracer provider keeps the first one it is given


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for one test, on database connections opened after it was turned on."""
    assert tracing.tracing_install(EXPORTER)
    connections.close_all()
    EXPORTER.clear()
    yield EXPORTER
    tracing.tracing_uninstall()
    connections.close_all()


def run_app(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """A fresh Python process with this run's environment less any OTEL_ variable, and ``env``."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")} | env
    done = subprocess.run([sys.executable, *args], env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def django_setup_reports(**env: str) -> dict:
    """What a fresh process of the app loads at start under ``env``: the OpenTelemetry packages
    beyond the API and SDK that redis-py imports for its own observability (off unless enabled),
    and the middleware."""
    script = (
        "import json, sys, django; django.setup(); from django.conf import settings;"
        "print(json.dumps({'otel': sorted({m.split('.')[1] for m in sys.modules if m.startswith('opentelemetry.')"
        " and m.split('.')[1] in ('instrumentation', 'exporter')}), 'middleware': settings.MIDDLEWARE}))"
    )
    return json.loads(run_app("-c", script, **env).stdout.splitlines()[-1])


def test_tracing_is_off_by_default_and_instruments_nothing() -> None:
    off = django_setup_reports()
    assert off["otel"] == [] and not any("opentelemetry" in name for name in off["middleware"])
    disabled = django_setup_reports(OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    assert disabled["otel"] == []
    on = django_setup_reports(OTEL_TRACES_EXPORTER="console")
    assert on["otel"] == ["instrumentation"]
    assert any("opentelemetry" in name for name in on["middleware"])


def by_name(found: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in found if span.name == name]


def ancestors(span: ReadableSpan, found: list[ReadableSpan]) -> list[str]:
    """The names of the span's parents, nearest first."""
    ids = {other.context.span_id: other for other in found}
    names = []
    while span.parent is not None and span.parent.span_id in ids:
        span = ids[span.parent.span_id]
        names.append(span.name)
    return names


def test_a_miss_goes_redis_then_dynamodb_then_postgres_then_projects(spans, product: Product) -> None:
    response = Client().get(f"/api/products/{product.sku}/")
    assert response.status_code == 200 and response["X-Served-From"] == "postgres"
    finished = list(spans.get_finished_spans())
    (root,) = [span for span in finished if span.kind is SpanKind.SERVER]
    during = [span for span in finished if root.start_time <= span.start_time <= root.end_time]
    assert root.parent is None and {span.context.trace_id for span in during} == {root.context.trace_id}
    found = [span for span in finished if span.context.trace_id == root.context.trace_id]

    def first(predicate) -> ReadableSpan:
        return min((span for span in found if predicate(span)), key=lambda span: span.start_time)

    redis = first(lambda span: span.attributes.get("db.system") == "redis")
    get = first(lambda span: span.name == "DynamoDB.GetItem")
    postgres = first(lambda span: span.attributes.get("db.system") == "postgresql" and span.start_time > get.start_time)
    (projection,) = by_name(found, "projection.project")
    assert redis.start_time < get.start_time < postgres.start_time < projection.start_time, found
    puts = by_name(found, "DynamoDB.PutItem")
    assert puts and all("projection.project" in ancestors(put, found) for put in puts)
    assert all(ancestors(span, found)[-1] == root.name for span in found if span is not root)
    cached = [s for s in found if s.attributes.get("db.system") == "redis" and s.start_time > projection.start_time]
    assert cached, "the fresh document is cached"


def test_a_change_keeps_its_trace_through_the_outbox_and_the_relay(spans, product: Product) -> None:
    relay.drain()  # the fixture's own changes, untraced
    get_redis_connection("default").delete(cache_keys.relay_kick())  # so that the commit kicks the relay
    shapes.forget()  # the projection looks the document shape's switch up in Redis, as it does each second
    spans.clear()
    with trace.get_tracer(__name__).start_as_current_span("price change") as change:
        services.price_set(product=product, currency="EUR", amount=Decimal("12.50"))
    context = change.get_span_context()
    row = OutboxEvent.objects.get()
    assert row.traceparent == f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    relay.drain()

    found = [span for span in spans.get_finished_spans() if span.context.trace_id == context.trace_id]
    (outbox,) = by_name(found, "outbox.relay")
    assert outbox.parent is not None and outbox.parent.span_id == context.span_id, "the row carried the context"
    change_spans = [span for span in found if span.start_time < outbox.start_time and span.name != "price change"]
    assert {span.attributes.get("db.statement", "").split(" ")[0] for span in change_spans} >= {"UPDATE"}
    assert all(ancestors(span, found)[-1] == "price change" for span in change_spans)
    published = [span for span in found if span.kind is SpanKind.PRODUCER]
    assert [span.name for span in published] == ["apply_async/projections.relay_outbox"], "the commit kicked the relay"
    assert published[0].start_time > max(span.end_time for span in change_spans if span.name == "UPDATE")
    puts = by_name(found, "DynamoDB.PutItem")
    assert puts and all(ancestors(put, found)[:2] == ["projection.project", "outbox.relay"] for put in puts)
    # The cache refresh (its compare-and-set scripts) after the writes. Not every Redis call: the
    # document shape's switch may be looked up in Redis before them (once a second per process).
    refresh = [
        span for span in found
        if span.attributes.get("db.system") == "redis" and span.name.startswith("EVALSHA")
        and "projection.project" in ancestors(span, found)
    ]
    assert refresh and min(span.start_time for span in refresh) > min(put.start_time for put in puts)


def test_a_row_written_outside_a_span_carries_no_context(spans, product: Product) -> None:
    relay.drain()
    services.price_set(product=product, currency="EUR", amount=Decimal("13.00"))
    assert OutboxEvent.objects.get().traceparent is None


def dynamodb_down() -> None:
    """The read path's DynamoDB breaker opened by failures, so that a read logs that it skips it."""

    def fail() -> None:
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    while not dynamodb_breaker.is_open:
        with pytest.raises(botocore.exceptions.EndpointConnectionError):
            dynamodb_breaker.call(fail)


def test_json_log_lines_carry_the_request_and_trace_ids(spans, settings, product: Product) -> None:
    settings.MIDDLEWARE = ["hybridsite.logs.RequestIdMiddleware", *settings.MIDDLEWARE]
    dynamodb_down()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("projections.reader")
    logger.addHandler(handler)
    try:
        given = Client().get(f"/api/products/{product.sku}/", HTTP_X_REQUEST_ID="req-42")
        made = Client().get(f"/api/products/{product.sku}/", HTTP_X_REQUEST_ID="not a valid id")
    finally:
        logger.removeHandler(handler)
    assert given["X-Served-From"] == made["X-Served-From"] == "postgres"
    assert given["X-Request-ID"] == "req-42" and len(made["X-Request-ID"]) == 32
    servers = [span for span in spans.get_finished_spans() if span.kind is SpanKind.SERVER]
    expected = {
        "req-42": f"{servers[0].context.trace_id:032x}", made["X-Request-ID"]: f"{servers[1].context.trace_id:032x}"
    }
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines and {line["request_id"] for line in lines} == set(expected)
    for line in lines:
        assert line["trace_id"] == expected[line["request_id"]] and len(line["span_id"]) == 16
        assert line["level"] == "WARNING" and line["logger"] == "projections.reader" and product.sku in line["message"]


def test_log_format_json_writes_one_object_a_line() -> None:
    script = "import logging; log = logging.getLogger('ops'); log.warning('first\\nsecond'); log.error('third')"
    done = run_app("manage.py", "shell", "-c", script, LOG_FORMAT="json")
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line, the apps' own too
    assert [(line["level"], line["logger"], line["message"]) for line in lines if line["logger"] == "ops"] == [
        ("WARNING", "ops", "first\nsecond"), ("ERROR", "ops", "third"),
    ]
    assert all(line["request_id"] is None and line["trace_id"] is None for line in lines)


def worker_spans(log: str) -> list[dict]:
    """The spans a process printed with ``OTEL_TRACES_EXPORTER=console`` (one JSON object each,
    between its log lines)."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"^\{$", log, re.MULTILINE):
        try:
            found.append(decoder.raw_decode(log, match.start())[0])
        except json.JSONDecodeError:
            continue
    return [span for span in found if "context" in span]


@pytest.mark.integration
def test_the_celery_task_carries_the_change_into_the_worker(spans, product: Product, start_worker) -> None:
    worker = start_worker(
        beat=False, OTEL_TRACES_EXPORTER="console", OTEL_BSP_SCHEDULE_DELAY="50", PYTHONUNBUFFERED="1",
        LOG_FORMAT="json",
    )
    wait_for(lambda: not OutboxEvent.objects.exists(), 30, 0.1, "the fixture's changes projected")
    with trace.get_tracer(__name__).start_as_current_span("price change") as change:
        services.price_set(product=product, currency="EUR", amount=Decimal("14.00"))
        # Published here for certain: the commit's kick is skipped while another kick is queued.
        relay_outbox.delay()
    trace_id = f"0x{change.get_span_context().trace_id:032x}"
    published = {
        f"0x{span.context.span_id:016x}" for span in spans.get_finished_spans()
        if span.kind is SpanKind.PRODUCER and span.context.trace_id == change.get_span_context().trace_id
    }
    assert published

    def in_trace() -> list[dict]:
        return [span for span in worker_spans(worker.log_path.read_text()) if span["context"]["trace_id"] == trace_id]

    wanted = {"run/projections.relay_outbox", "outbox.relay", "DynamoDB.PutItem"}
    wait_for(lambda: wanted <= {span["name"] for span in in_trace()}, 60, 0.2, f"the worker's spans {wanted}")
    found = in_trace()
    runs = {span["context"]["span_id"]: span for span in found if span["name"] == "run/projections.relay_outbox"}
    assert all(run["parent_id"] in published for run in runs.values()), "the task's headers carried the context"
    (outbox,) = [span for span in found if span["name"] == "outbox.relay"]
    assert outbox["parent_id"] == f"0x{change.get_span_context().span_id:016x}", "and so did the outbox row"

    def relayed() -> list[tuple[dict, dict]]:
        """Each "relay:" log line with the task run it names. The task that projected the change
        may be one queued before it, in its own trace (the change's is then outbox.relay's)."""
        log = worker.log_path.read_text()
        every_run = {
            span["context"]["span_id"]: span for span in worker_spans(log)
            if span["name"] == "run/projections.relay_outbox"
        }
        logged = [json.loads(line) for line in log.splitlines() if line.startswith('{"time"')]
        return [
            (line, every_run[f"0x{line['span_id']}"]) for line in logged
            if line["message"].startswith("relay:") and f"0x{line['span_id']}" in every_run
        ]

    wait_for(relayed, 30, 0.2, "the relay's log line and its task's span")
    for line, run in relayed():
        assert line["trace_id"] == run["context"]["trace_id"].removeprefix("0x"), "the task's trace"
        assert line["request_id"] == run["attributes"]["messaging.message.id"], "the task's id"
