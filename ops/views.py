"""GET /metrics: Prometheus's text format, for staff and for the configured scraper."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from .collectors import StateCollector
from .instruments import process_registry

SCRAPER = "metrics-scraper"


class ScraperAuthentication(BaseAuthentication):
    """``Authorization: Bearer <METRICS_TOKEN>``; no token configured, no scraper."""

    def authenticate(self, request):
        token = settings.METRICS_TOKEN
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if token and header.startswith("Bearer ") and secrets.compare_digest(header[7:].encode(), token.encode()):
            return (None, SCRAPER)
        return None


class IsStaffOrScraper(BasePermission):
    def has_permission(self, request, view) -> bool:
        if request.auth == SCRAPER:
            return True
        user = request.user
        return bool(user and user.is_active and user.is_staff)


def registry() -> CollectorRegistry:
    """What the processes counted, then the state read at scrape time."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(process_registry())
    scrape.register(StateCollector())
    return scrape


class MetricsApi(APIView):
    """Refusals (401 anonymous, 403 not staff) in the API's one error shape; the text format otherwise."""

    authentication_classes = (ScraperAuthentication, *APIView.authentication_classes)
    permission_classes = (IsStaffOrScraper,)

    def perform_content_negotiation(self, request, force: bool = False) -> tuple[JSONRenderer, str]:
        """A scraper asks for text formats; errors are JSON and the answer is rendered here."""
        return JSONRenderer(), "application/json"

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="metrics"'

    @extend_schema(exclude=True)
    def get(self, request) -> HttpResponse:
        return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
