"""The OpenAPI schema tells the truth about errors: every operation lists the statuses it can answer
with, all in the one error shape of ``hybridsite.errors``.

Added by a drf-spectacular postprocessing hook rather than at each view, so that a new operation
is covered without thinking of it, and the catalog app need not know the site's error format.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import AnonymousUser
from drf_spectacular.authentication import TokenScheme
from drf_spectacular.generators import SchemaGenerator

ERROR_COMPONENT = "Error"
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "description": "Messages per invalid field.",
                    "additionalProperties": {},
                },
            },
        }
    },
}

DESCRIPTIONS = {
    "400": "Invalid input (body, query or header); `fields` names each invalid field.",
    "401": "No or invalid credentials.",
    "403": "Authenticated, but without the permission this operation needs.",
    "404": "No such resource (or a malformed key).",
    "415": "The body is not JSON.",
    "429": "Rate limit reached; see Retry-After.",
    "503": "A store the answer needs cannot be reached, or (a write) read-only mode is on; retry after Retry-After.",
}


def _statuses(method: str, operation: dict[str, Any]) -> set[str]:
    statuses = {"429"}
    parameters = operation.get("parameters", [])
    if any(parameter.get("in") == "path" for parameter in parameters):
        statuses.add("404")
    if any(parameter.get("in") in ("query", "header") for parameter in parameters) or "requestBody" in operation:
        statuses.add("400")
    if "requestBody" in operation:
        statuses.add("415")
    if any(requirement for requirement in operation.get("security", [])):
        statuses |= {"401", "403"}
    elif method == "get":
        statuses.add("503")  # the customer read path
    if method not in ("get", "head", "options"):
        statuses.add("503")  # read-only mode refuses every write (ops.middleware)
    return statuses


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error shape as a component, referenced by every
    error status an operation can answer with (and by those a view declares itself)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            declared = {status for status in responses if status[0] in "45"}
            for status in sorted(_statuses(method, operation) | declared):
                response = responses.setdefault(status, {})
                response["description"] = response.get("description") or DESCRIPTIONS.get(status, "")
                response["content"] = {"application/json": {"schema": reference}}
    return result


class CachedTokenScheme(TokenScheme):
    """The cart API's token authentication is DRF's token scheme (its owner cached in Redis): the
    same ``Authorization: Token <key>`` header, under a name of its own, so that the schema does
    not hold two classes under one component name."""

    target_class = "hybridsite.authentication.CachedTokenAuthentication"
    name = "cachedTokenAuth"
    match_subclasses = False
    priority = 0


class AnyCustomer(AnonymousUser):
    """Whoever holds an account: signed in, neither staff nor holding a permission (and no row to
    read: its permissions are checked without a query)."""

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


class CallerSchemaGenerator(SchemaGenerator):
    """The schema a caller is served (``SERVE_PUBLIC`` off): what they may call, and what any
    customer may call once signed in, so that a front-end developer reads the cart and order API,
    with each operation's security requirement, before having an account. Staff operations stay
    hidden from whoever lacks the permission they need."""

    def has_view_permissions(self, path: str, method: str, view: Any) -> bool:
        if super().has_view_permissions(path, method, view):
            return True
        caller = view.request
        as_customer = copy.copy(caller)
        as_customer._user, as_customer._auth = AnyCustomer(), None
        view.request = as_customer
        try:
            return super().has_view_permissions(path, method, view)
        finally:
            view.request = caller


BLANK = {"type": "string", "maxLength": 0}


def blank_or_pattern(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular offers a blank-allowed text field with a pattern as ``oneOf: [pattern, blank]``;
    where the pattern matches the empty string too (``^[^\\u0000]*$``), "" matches both and ``oneOf``
    calls it invalid. ``anyOf`` says what the field accepts."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("oneOf"), list) and len(node["oneOf"]) == 2 and node["oneOf"][1] == BLANK:
                node["anyOf"] = node.pop("oneOf")
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
