"""Replication lag made visible: the home region's heartbeat in DynamoDB, the lag on /metrics (with
the cache followers' state), its SLO, and each region in the health check's details (never in the
anonymous answer)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from hybridsite import heartbeat
from hybridsite import settings as base_settings
from ops import slo, tasks
from projections import follow

pytestmark = pytest.mark.django_db


def samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def checks_observed() -> float:
    labels = {"region": settings.HYBRIDSITE_REGION}
    return REGISTRY.get_sample_value("hybridsite_replication_lag_check_seconds_count", labels) or 0.0


def test_the_lag_is_now_minus_the_newest_heartbeat_and_a_late_one_never_moves_it_back(dynamodb) -> None:
    assert heartbeat.lag_seconds() is None  # before the first heartbeat: unknown, not zero
    assert heartbeat.heartbeat_write(now=1_700_000_000.0)
    assert heartbeat.lag_seconds(now=1_700_000_003.5) == 3.5
    assert not heartbeat.heartbeat_write(now=1_699_999_990.0)
    assert heartbeat.heartbeat_at() == 1_700_000_000.0
    tasks.replication_heartbeat()  # beat's task, as the worker runs it: the time now
    assert heartbeat.lag_seconds() < 60
    scheduled = base_settings.CELERY_BEAT_SCHEDULE["replication-heartbeat"]  # the tests' beat runs no heartbeat
    assert (scheduled["task"], scheduled["schedule"]) == (
        "ops.replication_heartbeat", base_settings.REPLICATION_HEARTBEAT_SECONDS
    )


def test_metrics_show_the_regions_lag_and_its_followers(dynamodb, redis_clean, staff_client: Client) -> None:
    now = time.time()
    heartbeat.heartbeat_write(now=now - 4)
    follow.apply(follow.Changes(heartbeat=now - 9))  # as cache_follow records it from the stream
    text = staff_client.get("/metrics").content.decode()
    found = samples(text)
    region = (("region", settings.HYBRIDSITE_REGION),)
    assert 4 <= found["hybridsite_replication_lag_seconds"][region] < 60
    assert 9 <= found["hybridsite_cache_follow_behind_seconds"][region] < 65
    assert found["hybridsite_cache_follow_processes"][region] == 0  # none runs in this test
    assert found["hybridsite_cache_follow_shards_unowned"][region] == 0  # and none ever listed a shard


def test_a_lag_check_is_an_event_of_the_slo(dynamodb) -> None:
    before = checks_observed()
    assert heartbeat.lag_check() is None  # no heartbeat: nothing to count
    assert checks_observed() == before
    heartbeat.heartbeat_write(now=time.time() - 7)
    assert heartbeat.lag_check() >= 7
    assert checks_observed() == before + 1
    objective = next(o for o in slo.objectives() if o.key == "replication_lag")
    assert objective.describe() == "p99 ≤ 5000 ms" and slo.HISTOGRAMS[objective.source] == (
        "hybridsite_replication_lag_check_seconds"
    )
    totals = slo.registry_totals(REGISTRY)
    assert totals["replication_lag"]["count"] >= 1


def test_health_details_show_each_region_and_the_anonymous_answer_does_not(dynamodb, client, settings) -> None:
    settings.HEALTH_TOKEN = "monitoring-token"
    heartbeat.heartbeat_write(now=time.time() - 2)
    details = client.get("/api/health/", HTTP_AUTHORIZATION="Bearer monitoring-token").json()
    mine = details["regions"][settings.HYBRIDSITE_REGION]
    assert mine["role"] == "home" and mine["this_region"] is True
    assert 2 <= mine["replication_lag_seconds"] < 60
    assert set(details["regions"]) == set(settings.REGIONS)
    assert client.get("/api/health/").json() == {"status": "ok"}
