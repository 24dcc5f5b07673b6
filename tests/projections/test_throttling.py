"""DynamoDB throttling (ProvisionedThroughputExceededException, ThrottlingException,
RequestLimitExceeded) slows the projector and the backfill down and loses nothing.

DynamoDB Local and moto never throttle: an HTTP proxy in front of them answers a share of the
requests, for ten seconds, as AWS answers a throttled call.
"""

from __future__ import annotations

import random
import time

import pytest
from django.conf import settings

from catalog import services
from catalog.models import OutboxEvent
from devtools.net import wait_for
from projections import metrics
from projections.backfill import backfill
from tests.projections.test_resilience import drained_without_drift, make_catalog, random_write

pytestmark = pytest.mark.integration

PRODUCTS = 20


def test_throttled_for_ten_seconds_the_projector_and_the_backfill_slow_down_and_lose_nothing(
    start_worker, throttling_proxy, seed
):
    rng = random.Random(seed)
    products, warehouses = make_catalog(PRODUCTS)
    start_worker(DYNAMODB_ENDPOINT=throttling_proxy.url)
    wait_for(lambda: drained_without_drift(PRODUCTS), 60, 0.3, "initial projection")

    throttling_proxy.throttle(share=0.5, seconds=10)
    writes, halfway = 0, time.monotonic() + 4
    while time.monotonic() < halfway or not writes:
        random_write(rng, products, warehouses)
        writes += 1
        time.sleep(0.05)
    throttled = throttling_proxy.throttled
    assert backfill("product", chunk=5, workers=2) == PRODUCTS  # this process, through the proxy, throttled
    assert throttling_proxy.throttled > throttled  # the backfill was throttled too, and finished

    wait_for(lambda: drained_without_drift(PRODUCTS), 90, 0.5, "every write projected after the throttling")
    assert not OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).exists()

    def lag_under_objective() -> bool:
        services.stock_adjust(product=rng.choice(products), warehouse=warehouses[0], delta=1)
        wait_for(lambda: not OutboxEvent.objects.exists(), 30, 0.02, "the write projected")
        return metrics.lag_samples()[0] <= settings.SLO_PROJECTION_LAG_P95_MS

    wait_for(lag_under_objective, 30, 0.2, "projection lag back under its objective")
