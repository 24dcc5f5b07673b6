"""Conditional requests on versioned resources: their ETag is ``"<version>"``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.request import Request

IF_MATCH_PATTERN = r'^(\*|(W/)?"[0-9]{1,19}")$'


def if_match_parameter(description: str) -> OpenApiParameter:
    """The schema of the If-Match header ``if_match_version`` reads: its format, declared."""
    return OpenApiParameter(
        "If-Match", {"type": "string", "pattern": IF_MATCH_PATTERN}, location=OpenApiParameter.HEADER,
        required=False, description=description,
    )


def if_match_version(request: Request, example: str) -> int | None:
    """The version If-Match names; None without a condition (absent or ``*``). Anything else is a
    client error (400 naming ``example``), not a mismatch."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix("W/")
    digits = tag[1:-1] if len(tag) > 2 and tag[0] == tag[-1] == '"' else ""
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise exceptions.ValidationError({"If-Match": [example]})
    return int(digits)
