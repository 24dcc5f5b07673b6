"""bench/search.py measures what it says: each query is answered by Postgres the first time and by
the cache the second (the module refuses any other answer), and a cached search asks Postgres and
DynamoDB nothing. (Its times are the bench's to report, not asserted here.)"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from bench.search import search
from projections.relay import StopReason, drain

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_search_is_measured_uncached_then_cached(dynamodb, redis_clean, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "bench"]  # the bench driver's host
    call_command("seed_demo", "--products", "40", stdout=io.StringIO(), stderr=io.StringIO())
    while drain().stopped_by is not StopReason.EMPTY:  # projected, as the bench's catalog is
        pass

    result = search(n=20, count_requests=5)

    print(f"\nsearch: {result}")
    assert result["uncached_us"]["n"] == result["cached_us"]["n"] == 20
    assert result["counts_uncached"]["queries"] > 0  # the SKUs computed by Postgres
    assert result["counts_cached"]["queries"] == 0 and result["counts_cached"]["dynamodb_calls"] == 0
