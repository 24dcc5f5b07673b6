"""Staff exports for audits: CSV streamed from Postgres, cached per normalized parameters.

- Rows come from one server-side cursor (``QuerySet.iterator``) inside a transaction, so that
  Postgres hands them over ``EXPORT_CHUNK_ROWS`` at a time: neither this process nor Postgres holds
  the whole result (outside a transaction Django declares the cursor ``WITH HOLD``, which Postgres
  materializes in full first).
- A finished export is kept in Redis for ``EXPORT_CACHE_SECONDS`` as a list of CSV chunks, under
  its normalized parameters (``cache_keys.export_chunks``). It is written while it streams, under a
  key of its own request, and renamed into place only once complete: a client never gets half an
  export from the cache. Served from the cache it is read back one chunk at a time, so no process
  holds it whole either. One larger than ``EXPORT_CACHE_MAX_BYTES`` is streamed and not kept.
  Redis rather than files: every web process and host shares it, and it expires entries itself.
- The API checks the model's view permission (401 without credentials, 403 without it) and counts
  the ``export`` rate limit per user. The admin's actions export the selected rows of a changelist
  for those who may view it, streamed the same way; a selection is not cached.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import orjson
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from redis.exceptions import RedisError
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from catalog.apis import StaffWithPermission
from catalog.models import Product
from catalog.selectors import PRODUCT_EXPORT_HEADER, products_export_rows
from hybridsite import cache_keys
from hybridsite.ratelimit import hit
from orders.models import Order
from orders.selectors import ORDER_EXPORT_HEADER, order_lines_export_rows
from projections import cache

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Export:
    name: str
    model: type[Model]
    header: tuple[str, ...]
    rows: Callable[[QuerySet[Any]], QuerySet[Any, tuple]]
    """The rows of a queryset of ``model``, in ``header``'s order, for one server-side cursor."""
    date_field: str
    """What the date range bounds: when a product last changed, when an order was placed."""

    @property
    def permission(self) -> str:
        return f"{self.model._meta.app_label}.view_{self.model._meta.model_name}"


PRODUCTS = Export(
    "products", Product, PRODUCT_EXPORT_HEADER, lambda products: products_export_rows(products=products), "updated_at"
)
ORDERS = Export(
    "orders", Order, ORDER_EXPORT_HEADER, lambda orders: order_lines_export_rows(orders=orders), "created_at"
)


def csv_chunks(header: Iterable[str], rows: Iterable[Iterable[Any]], chunk_rows: int) -> Iterator[bytes]:
    """CSV bytes, ``chunk_rows`` rows at a time (the header in the first chunk)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
        if count % chunk_rows == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def streamed_rows(rows: QuerySet[Any, tuple], chunk_rows: int) -> Iterator[tuple]:
    """The rows through one server-side cursor, in a transaction (see the module's docstring)."""
    with transaction.atomic():
        yield from rows.iterator(chunk_size=chunk_rows)


def export_chunks(export: Export, queryset: QuerySet[Any]) -> Iterator[bytes]:
    chunk_rows = settings.EXPORT_CHUNK_ROWS
    return csv_chunks(export.header, streamed_rows(export.rows(queryset), chunk_rows), chunk_rows)


def _cached(key: str) -> Iterator[bytes] | None:
    """A kept export, read back a few chunks at a time; None when there is none."""
    redis = cache.client()
    try:
        total = redis.llen(key)
    except RedisError:
        return None
    if not total:
        return None

    def chunks() -> Iterator[bytes]:
        for start in range(0, total, 8):
            batch = cast("list[bytes]", redis.lrange(key, start, start + 7))
            if len(batch) < min(8, total - start):
                # Expired while it was read: end the response unfinished rather than short.
                raise RuntimeError(f"export {key} expired while it was served")
            yield from batch

    return chunks()


def _kept(canonical: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Stream ``chunks`` and keep them in Redis as they go; in place once all of them are there."""
    pending = cache_keys.export_chunks_pending(canonical, secrets.token_hex(8))
    ttl_ms = settings.EXPORT_CACHE_SECONDS * 1000
    redis = cache.client()
    size, keeping = 0, ttl_ms > 0
    for chunk in chunks:
        yield chunk
        size += len(chunk)
        if keeping:
            try:
                if size > settings.EXPORT_CACHE_MAX_BYTES:
                    keeping = False
                    redis.delete(pending)
                else:
                    pipe = redis.pipeline(transaction=False)
                    pipe.rpush(pending, chunk)
                    pipe.pexpire(pending, ttl_ms)
                    pipe.execute()
            except RedisError as exc:
                logger.warning("export %s not kept: %s", pending, exc)
                keeping = False
    if keeping:
        try:
            pipe = redis.pipeline(transaction=True)
            pipe.pexpire(pending, ttl_ms)
            pipe.rename(pending, cache_keys.export_chunks(canonical))
            pipe.execute()
        except RedisError as exc:
            logger.warning("export %s not kept: %s", pending, exc)


def csv_response(chunks: Iterator[bytes], filename: str, cache_state: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    response["X-Export-Cache"] = cache_state
    return response


class ExportInputSerializer(serializers.Serializer):
    """Two days, each valid on its own. A range whose end comes before its start is empty, as a
    filter that selects nothing is (the header row alone), not an error: the schema can state
    each day's format but not the order of the two, and a request the schema calls valid is
    answered, never refused."""

    since = serializers.DateField(required=False, help_text="First day (UTC) included, YYYY-MM-DD.")
    until = serializers.DateField(
        required=False, help_text="Last day (UTC) included, YYYY-MM-DD; a day before `since` selects no rows."
    )


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def within(export: Export, since: date | None, until: date | None) -> QuerySet[Any]:
    """The export's rows whose date falls from the day ``since`` through the day ``until``, UTC."""
    queryset = export.model._default_manager.all()
    if since is not None:
        queryset = queryset.filter(**{f"{export.date_field}__gte": _start_of(since)})
    if until is not None:
        queryset = queryset.filter(**{f"{export.date_field}__lt": _start_of(until + timedelta(days=1))})
    return queryset


class ExportApi(APIView):
    export: Export
    throttle_scope = "export"

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[JSONRenderer, str]:
        """The answer is CSV, streamed by hand; errors are JSON whatever the client accepts."""
        return JSONRenderer(), "application/json"

    def get_permissions(self) -> list:
        return [StaffWithPermission.for_methods(GET=self.export.permission)()]

    def get(self, request: Request) -> StreamingHttpResponse:
        serializer = ExportInputSerializer(data=request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        since, until = serializer.validated_data.get("since"), serializer.validated_data.get("until")
        canonical = orjson.dumps([self.export.name, since, until]).decode()
        filename = f"{self.export.name}-{since or 'start'}-{until or 'now'}.csv"
        kept = _cached(cache_keys.export_chunks(canonical))
        if kept is not None:
            return csv_response(kept, filename, "hit")
        chunks = export_chunks(self.export, within(self.export, since, until))
        return csv_response(_kept(canonical, chunks), filename, "miss")


def _export_schema(operation_id: str, description: str) -> Any:
    return extend_schema_view(get=extend_schema(
        operation_id=operation_id, description=description, tags=["exports"], parameters=[ExportInputSerializer],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The CSV (header row first).")},
    ))


@_export_schema("internal_export_products", "Every product, or those last changed in the range.")
class ProductsExportApi(ExportApi):
    export = PRODUCTS


@_export_schema("internal_export_orders", "Every line of the orders placed in the range.")
class OrdersExportApi(ExportApi):
    export = ORDERS


def admin_export_action(export: Export) -> Callable[..., StreamingHttpResponse | None]:
    """An admin action exporting the selected rows (all those filtered, with "select all"), for
    those who may view them, within the same rate limit as the API."""

    @admin.action(description=f"Export selected {export.name} to CSV", permissions=["view"])
    def action(
        model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]
    ) -> StreamingHttpResponse | None:
        wait = hit("export", f"user:{request.user.pk}", settings.THROTTLE_RATES["export"])
        if wait:
            model_admin.message_user(request, f"Too many exports; try again in {wait} s.", messages.ERROR)
            return None
        # By primary key: the changelist's queryset carries its own annotations and grouping.
        selected = export.model._default_manager.filter(pk__in=queryset.values("pk"))
        return csv_response(export_chunks(export, selected), f"{export.name}-selected.csv", "none")

    action.__name__ = f"export_{export.name}_csv"
    return action


def admin_actions_install(site: admin.AdminSite) -> None:
    """Give the product and order changelists their export action. Installed here, by the URL
    wiring, because the catalog imports no other package (the streaming and its rate limit live
    here)."""
    for export in (PRODUCTS, ORDERS):
        model_admin = site.get_model_admin(export.model)
        action = admin_export_action(export)
        if action.__name__ not in {getattr(each, "__name__", each) for each in model_admin.actions or ()}:
            model_admin.actions = [*(model_admin.actions or ()), action]
