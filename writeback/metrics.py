"""The write-back's lag for Prometheus (the SLO page reads it): a stream record's creation in
DynamoDB to its change committed in Postgres. DynamoDB Local and AWS give the creation time to
the second, so the figure is that coarse."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Histogram

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
LAG = Histogram(
    "hybridsite_writeback_lag_seconds",
    "A stream record's creation in DynamoDB to its change committed in Postgres.",
    buckets=LAG_BUCKETS,
)


def observe_lag(records: list[dict[str, Any]]) -> None:
    now = time.time()
    for record in records:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, (int, float)):
            LAG.observe(max(0.0, now - created))
