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
    def __init__(
        self,
        name: str,
        failures: int,
        cooldown_seconds: float,
        errors: tuple[type[BaseException], ...],
        caller_fault: Callable[[BaseException], bool] = lambda exc: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``caller_fault`` tells errors the request caused (a malformed key) from a failing
        dependency: those pass through without counting, or one bad request would send everyone
        else to the fallback. ``clock`` measures the cool-down (a test passes its own)."""
        self.name = name
        self.caller_fault = caller_fault
        self.threshold = failures
        self.cooldown = cooldown_seconds
        self.errors = errors
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def allows_call(self) -> bool:
        """Whether a call may go through now; once the cool-down is over this moves the breaker to
        half-open (the next call is a trial), so it is a decision, not a read-only look."""
        with self._lock:
            if self._opened_at is None:
                return True
            if self._clock() - self._opened_at >= self.cooldown:
                self._opened_at = None
                self._failures = self.threshold - 1
                return True
            return False

    @property
    def is_open(self) -> bool:
        """Read-only: open and still cooling down."""
        with self._lock:
            return self._opened_at is not None and self._clock() - self._opened_at < self.cooldown

    def call(self, func: Callable[[], T]) -> T:
        if not self.allows_call():
            raise CircuitOpen(self.name)
        try:
            result = func()
        except self.errors as exc:
            if self.caller_fault(exc):  # the dependency answered: it is alive
                with self._lock:
                    self._failures = 0
                raise
            with self._lock:
                self._failures += 1
                if self._failures >= self.threshold:
                    self._opened_at = self._clock()
            raise
        with self._lock:
            self._failures = 0
        return result

    def reset(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
