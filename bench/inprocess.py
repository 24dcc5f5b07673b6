"""Requests through Django's WSGI handler in this process, and per-request backend call counts."""

from __future__ import annotations

import io
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TypeVar

import redis.connection
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hybridsite import dynamodb

T = TypeVar("T")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Driver:
    """One WSGI handler, as gunicorn holds one; each call builds a fresh environ (cheap dict copy)."""

    def __init__(self) -> None:
        self.handler = WSGIHandler()
        self.base = {
            "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "bench",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "bench", "REMOTE_ADDR": "127.0.0.1",
            "HTTP_ACCEPT": "application/json", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def request(self, method: str, path: str, body: bytes = b"", **extra: str) -> Response:
        """One request (``path`` may carry a query string); ``extra`` adds environ keys
        (``HTTP_AUTHORIZATION``, ``CONTENT_TYPE``)."""
        environ = {**self.base, **extra, "REQUEST_METHOD": method, "CONTENT_LENGTH": str(len(body))}
        environ["PATH_INFO"], _, environ["QUERY_STRING"] = path.partition("?")
        environ["wsgi.input"] = io.BytesIO(body)
        started: list = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info=None):
            started.append((status, headers))

        result = self.handler(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()  # request_finished: what the server does after every response
        status, headers = started[0]
        return Response(int(status[:3]), dict(headers), body)

    def timed(
        self, requests: Sequence[tuple[str, str]], before: Callable[[str], None] | None = None
    ) -> tuple[list[float], Counter[tuple[int, str]]]:
        """Latency in microseconds of each (sku, path) request, in order, and how many had each
        (status, X-Served-From). ``before(sku)`` runs ahead of each request, untimed."""
        latencies: list[float] = []
        outcomes: Counter[tuple[int, str]] = Counter()
        clock = time.perf_counter_ns
        for sku, path in requests:
            if before:
                before(sku)
            begin = clock()
            response = self.get(path)
            latencies.append((clock() - begin) / 1000)
            outcomes[(response.status, response.headers.get("X-Served-From", ""))] += 1
        return latencies, outcomes


@dataclass
class Counts:
    requests: int = 0
    queries: int = 0
    dynamodb: int = 0
    redis: int = 0
    active: bool = False

    def per_request(self) -> dict[str, float]:
        n = max(self.requests, 1)
        return {"queries": self.queries / n, "dynamodb_calls": self.dynamodb / n, "redis_round_trips": self.redis / n}


@contextmanager
def count_dynamodb(counts: Counts) -> Iterator[None]:
    """Every DynamoDB API call: those of the models' botocore clients (one per model) and the
    projector's puts, which the adapter sends itself."""
    unique_id = f"bench-count-{uuid.uuid4()}"
    lock = threading.Lock()  # the backfill calls from several threads

    def before_call(*_: object, **__: object) -> None:
        with lock:
            counts.dynamodb += counts.active

    clients = {id(c): c for c in (dynamodb.client(model) for model in dynamodb.all_tables())}.values()
    for client in clients:
        client.meta.events.register("before-call.dynamodb", before_call, unique_id=unique_id)
    dynamodb.call_observer_add(before_call)  # the projector's puts, which pass no botocore hook
    try:
        yield
    finally:
        dynamodb.call_observer_remove(before_call)
        for client in clients:
            client.meta.events.unregister("before-call.dynamodb", unique_id=unique_id)


@contextmanager
def _count_redis(counts: Counts) -> Iterator[None]:
    """Round trips to Redis: one per packed send (a pipeline or a script is one)."""
    original = redis.connection.AbstractConnection.send_packed_command

    def send_packed_command(self, command, check_health=True):
        counts.redis += counts.active
        return original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = send_packed_command
    try:
        yield
    finally:
        redis.connection.AbstractConnection.send_packed_command = original


@contextmanager
def counting(counts: Counts) -> Iterator[None]:
    """DynamoDB calls and Redis round trips into ``counts`` while ``counts.active``."""
    with ExitStack() as stack:
        stack.enter_context(count_dynamodb(counts))
        stack.enter_context(_count_redis(counts))
        yield


def count_each(
    items: Iterable[T], call: Callable[[T], object], before: Callable[[T], object] | None = None
) -> Counts:
    """Not timed: Postgres queries (as Django sees them), DynamoDB calls and Redis round trips of
    ``call(item)`` for each item; what ``before(item)`` does is not counted."""
    counts = Counts()
    with counting(counts):
        for item in items:
            if before:
                before(item)
            counts.active = True
            with CaptureQueriesContext(connection) as captured:
                call(item)
            counts.active = False
            counts.queries += len(captured.captured_queries)
            counts.requests += 1
    return counts


def count_calls(
    driver: Driver, requests: Sequence[tuple[str, str]], before: Callable[[str], None] | None = None
) -> Counts:
    """``count_each`` of each (sku, path) request through ``driver``; ``before(sku)`` not counted."""
    return count_each(
        requests, lambda request: driver.get(request[1]), (lambda request: before(request[0])) if before else None
    )


class QueryCounter:
    """Light per-request query counting for timed loops (an execute wrapper, no debug cursor)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    @contextmanager
    def installed(self) -> Iterator[QueryCounter]:
        with connection.execute_wrapper(self):
            yield self
