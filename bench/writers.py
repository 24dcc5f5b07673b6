"""Writer processes (bench/writer.py) started, released and collected, and the outbox drained:
what the write-load, lag and throughput phases share."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.config import log
from bench.procs import BASE_DIR, LOG_DIR, Processes


def spawn_writer(procs: Processes, rate: float, seconds: float, mode: str, skus: list[str], tag: str):
    """Start a writer process; it loads Django and its products, then waits for ``go()``."""
    skus_file = LOG_DIR / f"skus-{tag}.txt"
    skus_file.write_text("\n".join(skus))
    with open(LOG_DIR / f"writer-{tag}.log", "wb") as errors:
        process = procs.start(
            f"writer-{tag}",
            [sys.executable, str(BASE_DIR / "bench" / "writer.py"), "--rate", str(rate), "--seconds", str(seconds),
             "--mode", mode, "--skus-file", str(skus_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
        )
    return process


def go(procs: Processes, process) -> None:
    line = process.stdout.readline()
    if line.strip() != b"READY":
        procs.stop(process)
        raise RuntimeError(f"a writer did not start (see {LOG_DIR}/writer-*.log): {line!r}")
    process.stdin.write(b"GO\n")
    process.stdin.flush()


def finish_writer(procs: Processes, process, timeout: float) -> dict[str, Any]:
    out, _ = process.communicate(timeout=timeout)
    procs.stop(process)
    lines = out.decode().strip().splitlines()
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"writer failed with {process.returncode} (see {LOG_DIR})")
    result = json.loads(lines[-1])
    if result["errors"]:
        log(f"  writer: {result['errors']} failed writes, last: {result['last_error']}")
    return result


def wait_for_outbox(timeout: float) -> tuple[float, int, int]:
    """Seconds until no outbox row is pending, the pending rows left at the timeout, dead rows."""
    from catalog.models import OutboxEvent

    began = time.perf_counter()
    pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING)
    while pending.exists() and time.perf_counter() - began < timeout:
        time.sleep(0.05)
    left = pending.count()
    dead = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).count()
    return time.perf_counter() - began, left, dead
