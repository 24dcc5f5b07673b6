"""A customer's reads of their orders through the projections' read path: one order (its address
in every layer) and pages of them (``projections.listings.read_page``), Redis -> DynamoDB ->
Postgres, every key naming its customer."""

from __future__ import annotations

import logging
from functools import partial

import orjson
from django.db import DatabaseError

from hybridsite.dynamodb import regional_table
from projections import cache, metrics
from projections.breaker import CircuitOpen
from projections.cursors import decode_order_cursor, encode_order_cursor
from projections.listings import Accept, Fetch, read_page
from projections.readpath import DYNAMODB_ERRORS, Result, Throttle, Unavailable, dynamodb_layers
from projections.registry import (
    DocumentAddress,
    customer_partition,
    order_cache_name,
    order_id_of,
    order_key,
    orders_listing,
)
from projections.tables import CustomerOrder

from .models import Order
from .projection import order_document
from .selectors import order_list

logger = logging.getLogger(__name__)


def order_address(user_id: int, order_id: int) -> DocumentAddress:
    """One customer's order: under another customer's key it is absent, in every layer."""

    def locate() -> tuple[str, int] | None:
        found = Order.objects.filter(pk=order_id, user_id=user_id).exists()
        return ("order", order_id) if found else None

    return DocumentAddress(order_cache_name(user_id, order_id), CustomerOrder, order_key(user_id, order_id), locate)


def order_address_named(rest: str) -> DocumentAddress | None:
    """The order a cache name ``order:<user id>:<order id>`` stands for (``order_cache_name``)."""
    user_id, _, order_id = rest.partition(":")
    return order_address(int(user_id), int(order_id)) if user_id.isdigit() and order_id.isdigit() else None


def read_orders(
    user_id: int, limit: int, cursor: str, throttle: Throttle | None = None, min_version: int = 0
) -> Result:
    """One page of a customer's orders, newest first; with ``min_version`` (the version checkout
    returned), a page that holds that order. A cursor handed to another customer is refused
    (``BadCursor``), and every key of the page names its customer."""
    after = decode_order_cursor(cursor, user_id)
    accept = partial(_holds_version, min_version) if min_version else None
    fetch: Fetch = lambda: _orders_page(user_id, limit, after, accept)  # noqa: E731
    return read_page(orders_listing(user_id), limit, after, fetch, throttle, accept)


def _holds_version(min_version: int, page: cache.Entry) -> bool:
    """Whether the page holds an order at exactly ``min_version``: the order checkout returned, as
    it returned it. The page's version (its orders' highest) is not enough: an older order changed
    after the checkout has a higher version, and may be projected before the new order is. (Two
    orders of one customer written in the same microsecond could be taken for each other.)"""
    if page.version < min_version:
        return False
    return any(order["version"] == min_version for order in orjson.loads(page.body)["results"])


def _orders_page(user_id: int, limit: int, after: str, accept: Accept | None) -> tuple[cache.Entry, str, bool]:
    """A page of a customer's orders from DynamoDB; from Postgres (served, never cached) when
    DynamoDB cannot answer or its page does not pass ``accept`` (it lacks the order the client
    placed). The page's version is the newest of its orders' versions.

    Postgres's page is served as it is: it holds every committed order, so no write the client
    made is missing from it. It lacks an order at ``min_version`` when the client passed a version
    that is not one of its orders', when the order changed since, or on a later page, whose orders
    are older than the one the client just placed; a listing has no version a client sees (no
    ETag), so none of these is refused.
    """
    for layer in dynamodb_layers():  # this region's DynamoDB (cached); in a replica, then the home's (served only)
        try:
            found, more = layer.read(partial(_query_orders, user_id, limit, after))
        except (CircuitOpen, *DYNAMODB_ERRORS) as exc:
            logger.warning("reader: %s unavailable for the orders of %s (%s)", layer.source, user_id, exc)
            continue
        page = _orders_body(user_id, found, more)
        if accept is None or accept(page):
            return page, layer.source, layer.own
        metrics.incr("reader.below_min_version")
    try:
        orders = order_list(user_id=user_id)
        if after:
            orders = orders.filter(pk__lt=order_id_of(after))
        rows = [
            (order_key(user_id, order.pk)["sk"], order.version, orjson.dumps(order_document(order)))
            for order in orders[: limit + 1]
        ]
    except DatabaseError as exc:
        raise Unavailable(f"neither DynamoDB nor Postgres could answer for the orders of {user_id}") from exc
    return _orders_body(user_id, rows[:limit], len(rows) > limit), "postgres", False


def _query_orders(
    user_id: int, limit: int, after: str, region: str | None
) -> tuple[list[tuple[str, int, bytes]], bool]:
    """(sort key, version, body) of up to ``limit`` orders after ``after`` in ``region``'s DynamoDB
    (None: this region's), and whether more follow."""
    table = regional_table(CustomerOrder, region)
    items = table.query(
        customer_partition(user_id), table.sk > after if after else None,
        filter_condition=table.deleted == False,  # noqa: E712
        limit=limit + 1, page_size=limit + 1, consistent_read=True,  # read after a generation bump
    )
    found = [(item.sk, item.version, item.body.encode()) for item in items]
    return found[:limit], len(found) > limit


def _orders_body(user_id: int, rows: list[tuple[str, int, bytes]], more: bool) -> cache.Entry:
    following = encode_order_cursor(user_id, rows[-1][0]) if rows and more else None
    body = b"".join([
        b'{"results":[', b",".join(body for _, _, body in rows), b'],"next_cursor":', orjson.dumps(following), b"}",
    ])
    return cache.Entry(max((version for _, version, _ in rows), default=0), 200, body)
