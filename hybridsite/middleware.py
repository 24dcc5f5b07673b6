"""Site-wide request guards that are not tied to one view."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from .clients import client_bucket
from .ratelimit import hit


class LoginRateLimitMiddleware:
    """At most THROTTLE_RATES["login"] admin login attempts per client bucket and minute.

    django-axes locks one username out after repeated failures; this bounds what one client can
    try across many usernames (password spraying) and what it costs us in password hashing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.login_path = reverse("admin:login")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path == self.login_path:
            retry_after = hit("login", client_bucket(request), settings.THROTTLE_RATES["login"])
            if retry_after:
                response = render(
                    request, "locked_out.html", {"title": "Too many login attempts", "retry_after": retry_after},
                    status=429,
                )
                response["Retry-After"] = str(retry_after)
                return response
        return self.get_response(request)
