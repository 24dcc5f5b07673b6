"""Traces with OpenTelemetry, off unless the settings turn them on (``OTEL_TRACES_EXPORTER``).

On, each process instruments Django, psycopg2, Redis, botocore and Celery, carries a span's context
into the projector's thread pools, and records the DynamoDB puts the adapter sends itself (past
botocore). A change keeps its context across the outbox: a write in a transaction under a span sets
``hybridsite.traceparent`` for that transaction, the outbox triggers copy it onto the rows they
write, and the relay projects a batch under the context its rows carry.

Off, no instrumentation is imported or installed and nothing wraps any call: the hot read costs
what it costs without tracing. ``span`` and ``current_ids`` then cost one test of a list.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from django.conf import settings
from django.db.backends.signals import connection_created

from hybridsite import dynamodb

TRACER = "hybridsite"
TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_WRITE = re.compile(r"\s*(insert|update|delete|truncate|merge)\b", re.IGNORECASE)
_installed: list[Any] = []  # the instrumentors applied in this process
_exporters: list[Any] = []  # the exporters handed in (tests, the bench), each given the spans once


def tracing_install(exporter: Any = None) -> bool:
    """Once per process (Django's start calls it): instrument everything when the settings turn
    tracing on, or when a test hands its in-memory ``exporter``. Returns whether tracing is on."""
    if _installed or not (settings.TRACING or exporter is not None):
        return bool(_installed)
    from opentelemetry import trace
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # set once per process
        provider = TracerProvider(resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME}))
        if exporter is None and settings.OTEL_TRACES_EXPORTER == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif exporter is None:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
    if exporter is not None and not any(known is exporter for known in _exporters):
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        _exporters.append(exporter)
    for instrumentor in (
        DjangoInstrumentor(), Psycopg2Instrumentor(), RedisInstrumentor(), BotocoreInstrumentor(),
        CeleryInstrumentor(), ThreadingInstrumentor(),
    ):
        instrumentor.instrument()
        _installed.append(instrumentor)
    connection_created.connect(_outbox_context_install, dispatch_uid="hybridsite.tracing")
    dynamodb.call_observer_add(_dynamodb_span)
    return True


def tracing_uninstall() -> None:
    """Undo ``tracing_install`` (the tests turn tracing on and off); the provider stays."""
    for instrumentor in reversed(_installed):
        instrumentor.uninstrument()
    _installed.clear()
    connection_created.disconnect(dispatch_uid="hybridsite.tracing")
    dynamodb.call_observer_remove(_dynamodb_span)


def _tracer() -> Any:
    from opentelemetry import trace

    return trace.get_tracer(TRACER)


@contextmanager
def _span(name: str, attributes: dict[str, Any]) -> Iterator[None]:
    with _tracer().start_as_current_span(name, attributes=attributes):
        yield


def span(name: str, **attributes: Any) -> Any:
    """A span of our own around a piece of work, or nothing when tracing is off."""
    return _span(name, attributes) if _installed else nullcontext()


def current_ids() -> tuple[str, str] | None:
    """The current trace and span ids (hex), for log lines; None outside a span or when off."""
    if not _installed:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None outside a recording span or when off."""
    if not _installed:
        return None
    from opentelemetry import trace

    current = trace.get_current_span()
    context = current.get_span_context()
    if not (context.is_valid and current.is_recording()):
        return None
    trace_id, span_id = trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)
    return f"00-{trace_id}-{span_id}-{context.trace_flags:02x}"


# --- the outbox hop -------------------------------------------------------------------------------


def _outbox_context(execute, sql, params, many, context):
    """Before a write inside a transaction under a span: the span's context for the outbox
    triggers of this transaction (``set_config(..., true)`` lasts until its end)."""
    if context["connection"].in_atomic_block and _WRITE.match(str(sql)[:32]):
        parent = traceparent()
        if parent is not None:
            context["cursor"].cursor.execute("SELECT set_config('hybridsite.traceparent', %s, true)", [parent])
    return execute(sql, params, many, context)


def _outbox_context_install(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver; last in the list, so that the metrics' wrapper (first) still
    sees the statement it times."""
    if _outbox_context not in connection.execute_wrappers:
        connection.execute_wrappers.append(_outbox_context)


@contextmanager
def _outbox_batch(parents: set[str]) -> Iterator[None]:
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    contexts = [TraceContextTextMapPropagator().extract({"traceparent": parent}) for parent in sorted(parents)]
    attributes = {"messaging.system": "outbox", "messaging.batch.message_count": len(parents)}
    if len(contexts) == 1:  # one change: the relay's work continues its trace
        with _tracer().start_as_current_span("outbox.relay", context=contexts[0], attributes=attributes):
            yield
        return
    links = [trace.Link(trace.get_current_span(context).get_span_context()) for context in contexts]
    with _tracer().start_as_current_span("outbox.relay", links=links, attributes=attributes):
        yield


def outbox_span(parents: Iterable[str | None]) -> Any:
    """The relay's span for a claimed batch, given its rows' ``traceparent``: the child of the one
    change's span when they all carry the same, else linked to each (a batch has many parents)."""
    if not _installed:
        return nullcontext()
    found = {parent for parent in parents if parent and TRACEPARENT.fullmatch(parent)}
    return _outbox_batch(found) if found else _span("outbox.relay", {"messaging.system": "outbox"})


# --- DynamoDB calls the adapter sends itself ------------------------------------------------------


def _dynamodb_span(operation: str, outcome: str, seconds: float) -> None:
    """A call observed after the fact: a span from its start to now, under the current span."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    end = time.time_ns()
    call = _tracer().start_span(
        f"DynamoDB.{operation}", kind=SpanKind.CLIENT, start_time=end - int(seconds * 1e9),
        attributes={"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": operation, "outcome": outcome},
    )
    if outcome not in ("ok", "ConditionalCheckFailedException"):  # a refused condition is an answer
        call.set_status(Status(StatusCode.ERROR, outcome))
    call.end(end_time=end)
