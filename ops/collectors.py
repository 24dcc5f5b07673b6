"""What /metrics reads at scrape time rather than counting on the way: the outbox and the write-back
consumer's state (Postgres), and the pipeline's counters (Redis, where ``projections.metrics``
counts them for every process and host).

A store that cannot be read leaves its metrics out of that scrape (logged): the scrape itself,
and the store-call metrics that show the failure, still answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from projections import metrics as pipeline_metrics

from .selectors import outbox_backlog, unstorable_documents, writeback_state

logger = logging.getLogger(__name__)


class StateCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from self._postgres()
        yield from self._pipeline()

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
