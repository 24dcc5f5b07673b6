"""Fixed rate-limit windows: which one a moment falls in, and how long until it ends."""

from __future__ import annotations

import pytest

from hybridsite import ratelimit


@pytest.mark.parametrize("now, number, seconds_left", [
    (0.0, 0, 60),
    (59.999, 0, 1),
    (60.0, 1, 60),
    (1_800_000_030.5, 30_000_000, 30),
])
def test_window_number_and_seconds_left(
    monkeypatch: pytest.MonkeyPatch, now: float, number: int, seconds_left: int
) -> None:
    """Seconds left run from 60 down to 1, never 0: Retry-After 0 would invite a retry into the
    same full window."""
    monkeypatch.setattr(ratelimit, "clock", lambda: now)
    assert ratelimit.window(60) == (number, seconds_left)

