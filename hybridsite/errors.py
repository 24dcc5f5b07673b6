"""One JSON error shape for the whole API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class DatabaseUnavailable(drf.APIException):
    """Postgres cannot be reached (or gave up on the statement): a write that needs it (checkout,
    staff writes) answers 503 with Retry-After in every region, as the reads do when no layer can
    answer. Writes that do not need it (carts, in DynamoDB) go on."""

    status_code = 503
    default_code = "unavailable"
    default_detail = "The database cannot be reached right now; retry shortly."
    wait = 5  # seconds, sent as Retry-After


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _messages(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {str(key): _messages(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_messages(item) if isinstance(item, (dict, list)) else str(item) for item in detail]
    return [str(detail)]


def _field_messages(detail: Any) -> dict[str, Any]:
    messages = _messages(detail)
    return messages if isinstance(messages, dict) else {"non_field_errors": messages}


def json_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain and framework exceptions to the API's one error shape."""
    if isinstance(exc, ValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = drf.ValidationError(detail)
    elif isinstance(exc, (Http404, ObjectDoesNotExist)):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("request refused: database unavailable (%s)", exc)
        exc = DatabaseUnavailable()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf.ValidationError):
        response.data = error_body("invalid", "The request has invalid fields.", _field_messages(exc.detail))
    else:
        code = exc.get_codes() if isinstance(exc, drf.APIException) else "error"
        response.data = error_body(code if isinstance(code, str) else "error", str(getattr(exc, "detail", exc)))
    return response


def json_404(request, exception=None) -> HttpResponse:
    """JSON under /api/, Django's page elsewhere (the admin)."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return page_not_found(request, exception)


def json_500(request) -> JsonResponse:
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)
