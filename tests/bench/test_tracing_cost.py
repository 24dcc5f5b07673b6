"""bench/tracingcost.py measures hot hits both ways and leaves tracing as it found it: off. (Its
times are the bench's to report, not asserted here.)"""

from __future__ import annotations

import pytest

from bench.tracingcost import hot_hit_tracing
from hybridsite import tracing

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_hot_hit_is_measured_with_tracing_off_then_on_and_left_off(product, client, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "bench"]  # the bench driver's host
    client.get(f"/api/products/{product.sku}/")  # projected and cached
    result = hot_hit_tracing([product.sku], requests=50)
    assert result["outcomes_off"] == result["outcomes_on"] == {"200 cache": 50}
    assert result["off_us"]["n"] == result["on_us"]["n"] == 50
    assert not tracing.current_ids()  # no span open, and nothing instrumented any more:
    assert not tracing._installed
