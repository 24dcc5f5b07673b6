"""What every phase of `make bench` shares: the run's configuration, its log and its clock."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Config:
    quick: bool
    products: int
    hot_skus: int
    requests: dict[str, int]
    warmup: dict[str, int]
    count_requests: int
    http_seconds: float
    http_warmup_seconds: float
    load_rates: tuple[int, ...] = (10, 100)
    load_seconds: float = 15.0
    lag_seconds: dict[int, float] = field(default_factory=lambda: {50: 15.0, 200: 10.0})
    drain_timeout: float = 150.0
    cold_skus: int = 1_500
    backfill_workers: int = 4
    backfill_chunk: int = 500
    concurrency: int = 16
    checkouts: int = 300
    warmup_puts: int = 20_000

    @classmethod
    def full(cls) -> Config:
        return cls(
            quick=False, products=10_000, hot_skus=1_000,
            requests={"floor": 20_000, "orm": 2_000, "cachalot": 2_000, "hit": 10_000, "dynamodb": 1_000, "cold": 300},
            warmup={"floor": 300, "orm": 50, "cachalot": 1_000, "hit": 300, "dynamodb": 20, "cold": 10},
            count_requests=30, http_seconds=10.0, http_warmup_seconds=1.0,
        )

    @classmethod
    def short(cls) -> Config:
        return cls(
            quick=True, products=2_000, hot_skus=200,
            requests={"floor": 2_000, "orm": 300, "cachalot": 300, "hit": 2_000, "dynamodb": 200, "cold": 60},
            warmup={"floor": 100, "orm": 20, "cachalot": 200, "hit": 100, "dynamodb": 10, "cold": 5},
            count_requests=10, http_seconds=3.0, http_warmup_seconds=0.3,
            load_seconds=3.0, lag_seconds={50: 3.0, 200: 2.0}, drain_timeout=60.0, cold_skus=300, checkouts=60,
            warmup_puts=10_000,
        )


def log(message: str) -> None:
    print(f"bench | {message}", file=sys.stderr, flush=True)


@dataclass
class Clock:
    started: float = field(default_factory=time.perf_counter)
    steps: dict[str, float] = field(default_factory=dict)

    def step(self, name: str, began: float, detail: str = "") -> None:
        self.steps[name] = round(time.perf_counter() - began, 1)
        log(f"{name}: {detail + '; ' if detail else ''}{self.steps[name]:.1f}s")
