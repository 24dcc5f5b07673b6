"""bench/orders.py measures what it says: every timed read is a cache hit of the customer's own
page, and a hit asks Postgres nothing. (Its times are the bench's to report, not asserted here.)"""

from __future__ import annotations

import pytest

from bench.orders import order_list_hit

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_order_list_hit_is_measured_on_hits_without_postgres(product, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "orders": 10**9}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "bench"]  # the bench driver's host
    result = order_list_hit(sku=product.sku, customers=10, orders_each=2, requests=200, count_requests=50)
    print(f"\norder list hit: {result}")
    assert result["outcomes"] == {"200 cache": 200}
    assert result["counts"]["queries"] == 0 and result["counts"]["dynamodb_calls"] == 0
    assert result["latency_us"]["n"] == 200
