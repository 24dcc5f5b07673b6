"""JSON log lines (``LOG_FORMAT=json``): one object per event, carrying what ties it to the rest of
its story: the request's id (``X-Request-ID`` as a proxy sent it, or one made here, and returned
in the response) or the Celery task's, and the trace and span ids when tracing is on."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson
from celery import current_task
from django.http import HttpRequest, HttpResponse

from . import tracing

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestIdMiddleware:
    """The request's id for every line logged while it is handled."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


def request_id() -> str | None:
    """The id of the request being handled, or of the Celery task being run."""
    found = _request_id.get()
    if found is None and current_task:
        found = current_task.request.id
    return found


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ids = tracing.current_ids()
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id(),
            "trace_id": ids[0] if ids else None,
            "span_id": ids[1] if ids else None,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()
