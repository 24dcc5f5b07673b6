"""Where the CPU goes while a phase runs: CPU seconds per kind of process, read from /proc (Linux).

Every process on the machine shares its cores (the projector, the writers, DynamoDB's engine,
Postgres, Redis): a throughput or lag figure is only as good as the CPU each part needs per write.
Processes are read every ``INTERVAL`` seconds and the last reading of each is kept, so a process
that exits during the phase (a writer's children) still counts up to its last reading.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from types import TracebackType

INTERVAL = 0.2
TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ("projector", "writer", "dynamodb", "postgres", "redis", "bench", "other")
"""``projector``: the Celery worker (every process of its group); ``writer``: the write load's
processes; ``dynamodb``: DynamoDB Local's JVM or moto server; ``bench``: this process."""


def _reading(pid: str) -> tuple[int, str, float] | None:
    """(process group, command name, CPU seconds) of a process; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, rest = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
    return int(rest[2]), name, (int(rest[11]) + int(rest[12])) / TICKS


def _command(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuByKind:
    """``with CpuByKind({"projector": worker.pid}) as cpu: ...``, then ``cpu.seconds`` by kind.
    ``groups`` names process groups (the bench starts each child in a session of its own)."""

    def __init__(self, groups: dict[str, int]) -> None:
        self.kind_of_group = {group: kind for kind, group in groups.items()}
        self.first: dict[str, tuple[str, float]] = {}
        self.last: dict[str, tuple[str, float]] = {}
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _kind(self, group: int, name: str, command: str) -> str:
        if group in self.kind_of_group:
            return self.kind_of_group[group]
        if group == os.getpgrp():
            return "bench"
        if "DynamoDBLocal" in command or "moto" in command:
            return "dynamodb"
        if name.startswith("postgres") or "postgres" in command:
            return "postgres"
        if name.startswith("redis"):
            return "redis"
        return "other"

    def _read(self) -> None:
        for pid in os.listdir("/proc"):
            if pid.isdigit() and (reading := _reading(pid)) is not None:
                group, name, seconds = reading
                known = self.last.get(pid)  # a process keeps the kind it was first given
                kind = known[0] if known else self._kind(group, name, _command(pid))
                self.first.setdefault(pid, (kind, seconds))
                self.last[pid] = (kind, seconds)

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            self._read()

    def __enter__(self) -> CpuByKind:
        self._read()
        self.baseline = dict(self.first)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        used: Counter[str] = Counter()
        for pid, (kind_name, seconds) in self.last.items():
            _, before = self.baseline.get(pid, (kind_name, 0.0))
            used[kind_name] += seconds - before
        self.seconds = {kind_name: round(used[kind_name], 2) for kind_name in KINDS}


def per_unit_ms(seconds: dict[str, float], units: int) -> dict[str, float]:
    """CPU milliseconds per write (or projection) by kind, and their total."""
    if not units:
        return {}
    per = {kind: seconds.get(kind, 0.0) * 1000 / units for kind in KINDS}
    return {**per, "total": sum(per.values())}


def table(title: str, rows: list[tuple[str, dict[str, float]]]) -> list[str]:
    """A markdown table of CPU milliseconds per unit, one row per phase."""
    lines = [title, "", "| phase | " + " | ".join((*KINDS, "total")) + " |", "|---|" + "---:|" * (len(KINDS) + 1)]
    for label, per in rows:
        lines.append(f"| {label} | " + " | ".join(f"{per.get(kind, 0.0):.2f}" for kind in (*KINDS, "total")) + " |")
    return lines
