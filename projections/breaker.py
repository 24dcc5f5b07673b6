"""A small circuit breaker: a dead dependency costs one fast failure, not a timeout per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class CircuitOpen(Exception):
    """The dependency failed recently; it is not called until the cool-down ends."""


class Breaker:
    def __init__(self, name: str, failures: int, cooldown_seconds: float, errors: tuple[type[BaseException], ...]) -> None:
        self.name = name
        self.threshold = failures
        self.cooldown = cooldown_seconds
        self.errors = errors
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def is_open(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return False
            if time.monotonic() - self._opened_at >= self.cooldown:
                self._opened_at = None  # half-open: the next call is a trial
                self._failures = self.threshold - 1
                return False
            return True

    def call(self, func: Callable[[], T]) -> T:
        if self.is_open:
            raise CircuitOpen(self.name)
        try:
            result = func()
        except self.errors:
            with self._lock:
                self._failures += 1
                if self._failures >= self.threshold:
                    self._opened_at = time.monotonic()
            raise
        with self._lock:
            self._failures = 0
        return result

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
