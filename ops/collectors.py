"""What /metrics reads at scrape time rather than counting on the way: the outbox and the write-back
consumer's state (Postgres), the pipeline's counters (Redis, where ``projections.metrics``
counts them for every process and host), and this region's replication lag (its DynamoDB's
heartbeat) and cache followers (its Redis).

A store that cannot be read leaves its metrics out of that scrape (logged): the scrape itself,
and the store-call metrics that show the failure, still answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from hybridsite import heartbeat
from projections import follow
from projections import metrics as pipeline_metrics

from .selectors import outbox_backlog, unstorable_documents, writeback_state

logger = logging.getLogger(__name__)


class StateCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._postgres()
        yield from self._pipeline()
        yield from self._replication()

    def _postgres(self) -> Iterator[Metric]:
        try:
            backlog, writeback = outbox_backlog(), writeback_state()
            unstorable = unstorable_documents()
        except DatabaseError as exc:
            logger.warning("metrics: outbox and write-back state not read: %s", exc)
            return
        yield GaugeMetricFamily("hybridsite_outbox_pending", "Outbox rows waiting to be projected.", backlog.pending)
        yield GaugeMetricFamily(
            "hybridsite_outbox_oldest_pending_age_seconds",
            "Time since the commit of the oldest outbox row still waiting (0 when none waits).",
            backlog.oldest_pending_age_seconds,
        )
        yield GaugeMetricFamily(
            "hybridsite_outbox_dead", "Dead-lettered outbox rows waiting for an operator.", backlog.dead
        )
        yield GaugeMetricFamily(
            "hybridsite_writeback_parked", "Stream records parked after failing, waiting for an operator.",
            writeback.parked,
        )
        yield GaugeMetricFamily(
            "hybridsite_writeback_shards_unowned",
            "Open stream shards whose lease no live consumer holds: nothing applies their records.",
            writeback.shards_unowned,
        )
        yield GaugeMetricFamily(
            "hybridsite_documents_unstorable",
            "Documents too large for a DynamoDB item (400 KB) at their current version: Postgres serves them.",
            unstorable,
        )

    def _pipeline(self) -> Iterator[Metric]:
        try:
            counts = pipeline_metrics.snapshot()
        except RedisError as exc:
            logger.warning("metrics: pipeline counters not read: %s", exc)
            return
        events = CounterMetricFamily(
            "hybridsite_pipeline_events",
            "Projection pipeline and read-path events counted in Redis by every process (projections_stats "
            "prints the same): relay.rows, relay.dead (dead letters), projector.written, reader.hit, ...",
            labels=["event"],
        )
        for name, value in counts.items():
            events.add_metric([name], value)
        yield events
        hits, misses = counts.get("reader.hit", 0), counts.get("reader.miss", 0)
        if hits + misses:
            yield GaugeMetricFamily(
                "hybridsite_cache_hit_ratio", "Customer reads answered by Redis, of all counted reads.",
                hits / (hits + misses),
            )

    def _replication(self) -> Iterator[Metric]:
        """This region's figures, labelled with it: each region's processes are scraped apart."""
        region = [settings.HYBRIDSITE_REGION]
        now = time.time()
        try:
            lag = heartbeat.lag_seconds(now=now)
        except Exception as exc:  # noqa: BLE001  (DynamoDB down: the store-call metrics show it)
            logger.warning("metrics: replication heartbeat not read: %s", exc)
            lag = None
        if lag is not None:
            family = GaugeMetricFamily(
                "hybridsite_replication_lag_seconds",
                "Now minus the newest replication heartbeat this region's DynamoDB holds (written by the home "
                "region every REPLICATION_HEARTBEAT_SECONDS).",
                labels=["region"],
            )
            family.add_metric(region, lag)
            yield family
        try:
            state = follow.follow_state(now=now)
        except RedisError as exc:
            logger.warning("metrics: cache_follow state not read: %s", exc)
            return
        for name, text, value in (
            ("hybridsite_cache_follow_processes", "Live cache_follow processes of this region.", state.processes),
            (
                "hybridsite_cache_follow_shards_unowned",
                "Ready stream shards of this region's projection tables that no live cache_follow holds.",
                state.shards_unowned,
            ),
        ):
            gauge = GaugeMetricFamily(name, text, labels=["region"])
            gauge.add_metric(region, value)
            yield gauge
        if state.heartbeat is not None:
            behind = GaugeMetricFamily(
                "hybridsite_cache_follow_behind_seconds",
                "Now minus the newest replication heartbeat cache_follow has read from this region's stream: "
                "how far this region's Redis has followed.",
                labels=["region"],
            )
            behind.add_metric(region, max(0.0, now - state.heartbeat))
            yield behind
