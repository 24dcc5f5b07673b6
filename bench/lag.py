"""Phase 6: projection lag at sustained write rates, from the documents' own timestamps, and the
CPU each kind of process spent per write."""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from typing import Any

from bench import cpu, report
from bench.config import Clock, Config
from bench.procs import Processes
from bench.writers import finish_writer, go, spawn_writer, wait_for_outbox


def spawn_lag_writers(cfg: Config, procs: Processes, pool: list[str]) -> dict[int, Any]:
    """One writer per rate, each on SKUs of its own: every product is written once in the lag phase."""
    writers = {}
    offset = 0
    for rate, seconds in cfg.lag_seconds.items():
        n = int(rate * seconds)
        writers[rate] = spawn_writer(procs, rate, seconds, "distinct", pool[offset:offset + n], f"lag{rate}")
        offset += n
    return writers


def projection_lag(
    cfg: Config, procs: Processes, writers: dict[int, Any], worker: subprocess.Popen, clock: Clock
) -> list[dict[str, Any]]:
    from projections import metrics
    from projections.tables import ProductDocument

    rows = []
    for rate, writer in writers.items():
        began = time.perf_counter()
        metrics.reset()
        with cpu.CpuByKind({"projector": worker.pid, "writer": writer.pid}) as used:
            go(procs, writer)
            written = finish_writer(procs, writer, cfg.lag_seconds[rate] + 120)
            drain, left, dead = wait_for_outbox(cfg.drain_timeout)
        start_wall = written["start_wall"]
        points: list[tuple[float, float]] = []
        missing = 0
        for document in ProductDocument.batch_get(written["skus"]):
            if not document.source_committed_at or not document.projected_at:
                missing += 1
                continue
            committed = datetime.fromisoformat(document.source_committed_at).timestamp()
            projected = datetime.fromisoformat(document.projected_at).timestamp()
            if committed < start_wall - 1:  # still the backfilled state: this write was not projected
                missing += 1
                continue
            points.append((committed - start_wall, (projected - committed) * 1000))
        points.sort()
        relay_samples = metrics.lag_samples()
        row = {
            "writer": {k: v for k, v in written.items() if k != "skus"},
            "lag_ms": report.summarize([lag for _, lag in points]),
            "not_projected": len(written["skus"]) - len(points),
            "drain_seconds": drain,
            "outbox": {"pending_left": left, "dead": dead},
            "relay_lag_samples": report.summarize(relay_samples),
            "cpu_ms_per_write": cpu.per_unit_ms(used.seconds, written["done"]),
            "points": points,
        }
        rows.append(row)
        lag = row["lag_ms"]
        clock.step(
            f"lag at {rate} writes/s", began,
            f"achieved {written['achieved_rate']:.1f} writes/s; p50 {lag['p50']:.1f} ms,"
            f" p95 {lag['p95']:.1f} ms, p99 {lag['p99']:.1f} ms over {lag['n']:,} documents;"
            f" not projected {row['not_projected']}; drained {drain:.1f}s after the last write",
        )
    return rows
