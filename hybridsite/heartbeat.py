"""Replication lag, measured by a heartbeat (docs/architecture/regions.md).

The home region writes one small item every ``REPLICATION_HEARTBEAT_SECONDS`` (beat's
``ops.replication_heartbeat``): the time of the write, by the home region's clock. The item lives in
a table of its own, replicated like every table (a global table on AWS), so that no scan, drift
check or owner index of a projection table ever meets it. A region's replication lag is now minus
the newest heartbeat its own DynamoDB holds: it includes up to one heartbeat interval (the time since
the last beat) and the two regions' clock difference (NTP keeps it to milliseconds). AWS's own
figure, CloudWatch's ``ReplicationLatency`` per receiving region, is the same delay seen by DynamoDB.

Here, not in an app, because the health check (the project's base) reads it too.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from botocore.config import Config
from django.conf import settings
from prometheus_client import Histogram
from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.constants import STREAM_NEW_AND_OLD_IMAGE
from pynamodb.models import Model

from hybridsite import dynamodb
from hybridsite.regions import is_home_region


class ReplicationHeartbeat(Model):
    """One item per home region: when it last wrote its heartbeat. Its stream tells cache_follow
    how far the region's Redis has followed."""

    Meta = dynamodb.table_meta("heartbeat", stream_view_type=STREAM_NEW_AND_OLD_IMAGE)
    pk = UnicodeAttribute(hash_key=True)  # the home region's name
    written_at = NumberAttribute()  # epoch seconds, the home region's clock


TABLES: tuple[type[Model], ...] = (ReplicationHeartbeat,)

LAG_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
LAG_CHECKS = Histogram(
    "hybridsite_replication_lag_check_seconds",
    "Replication lag as cache_follow checks it once per heartbeat interval (the SLO's events).",
    ["region"],
    buckets=LAG_BUCKETS,
)
LAG_CHECKS.labels(settings.HYBRIDSITE_REGION)  # shown from the start, at zero


def heartbeat_write(*, now: float | None = None) -> bool:
    """Write the heartbeat (home region only; False elsewhere, or when a later one is stored: a
    task that waited in the queue never moves it back)."""
    if not is_home_region():
        return False
    now = time.time() if now is None else now
    item = ReplicationHeartbeat(pk=settings.HOME_REGION, written_at=now)
    condition = ReplicationHeartbeat.pk.does_not_exist() | (ReplicationHeartbeat.written_at < now)
    return dynamodb.put(item, condition)


@lru_cache(maxsize=8)
def _region_client(region: str) -> Any:
    """A DynamoDB client of another region's endpoint (one attempt: the health check waits for it)."""
    table = dynamodb.connection(ReplicationHeartbeat)
    credentials = (
        {
            "aws_access_key_id": settings.AWS_ACCESS_KEY_ID, "aws_secret_access_key": settings.AWS_SECRET_ACCESS_KEY,
            "aws_session_token": settings.AWS_SESSION_TOKEN or None,
        }
        if settings.AWS_ACCESS_KEY_ID else {}
    )
    config = Config(
        connect_timeout=settings.DYNAMODB_TIMEOUT_SECONDS, read_timeout=settings.DYNAMODB_TIMEOUT_SECONDS,
        retries={"total_max_attempts": 1},
    )
    endpoint = settings.DYNAMODB_REGION_ENDPOINTS.get(region) or None
    return table.session.create_client("dynamodb", region, endpoint_url=endpoint, config=config, **credentials)


def heartbeat_at(region: str | None = None) -> float | None:
    """The newest heartbeat ``region``'s DynamoDB holds (this region's by default), a strongly
    consistent read; None when it holds none."""
    if region is None or region == settings.HYBRIDSITE_REGION:
        item = dynamodb.get_item(ReplicationHeartbeat, {"pk": settings.HOME_REGION})
        return None if item is None else float(item.written_at)
    answer = _region_client(region).get_item(
        TableName=dynamodb.table_name(ReplicationHeartbeat), Key={"pk": {"S": settings.HOME_REGION}},
        ConsistentRead=True,
    )
    item = answer.get("Item")
    return None if item is None else float(item["written_at"]["N"])


def lag_seconds(region: str | None = None, *, now: float | None = None) -> float | None:
    """Now minus the newest heartbeat ``region``'s DynamoDB holds; None before the first one."""
    at = heartbeat_at(region)
    return None if at is None else max(0.0, (time.time() if now is None else now) - at)


def lag_check() -> float | None:
    """This region's lag, observed as one event of the replication-lag SLO (cache_follow calls it
    once per heartbeat interval)."""
    lag = lag_seconds()
    if lag is not None:
        LAG_CHECKS.labels(settings.HYBRIDSITE_REGION).observe(lag)
    return lag


def regions_state() -> dict[str, dict[str, object]]:
    """Each region of the site as this process sees it, for the health check's details: its role
    and its replication lag (None before the first heartbeat), or why it could not be read."""
    state: dict[str, dict[str, object]] = {}
    for region in settings.REGIONS:
        entry: dict[str, object] = {
            "role": "home" if region == settings.HOME_REGION else "replica",
            "this_region": region == settings.HYBRIDSITE_REGION,
        }
        try:
            lag = lag_seconds(region)
            entry["replication_lag_seconds"] = None if lag is None else round(lag, 3)
        except Exception as exc:  # a region that does not answer is reported, not raised
            entry["replication_lag_seconds"] = None
            entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
        state[region] = entry
    return state
