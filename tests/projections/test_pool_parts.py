"""How the relay and the backfill divide a batch between a pool's projector threads: every
aggregate once, in order, at most one part per thread, and no part so small that its own snapshot
costs more than the thread saves."""

from __future__ import annotations

import pytest

from projections.pool import MIN_PART, split
from projections.projector import Request


@pytest.mark.parametrize(
    ("count", "threads", "sizes"),
    [
        (1, 2, [1]),
        (MIN_PART - 1, 2, [MIN_PART - 1]),
        (2 * MIN_PART - 1, 2, [2 * MIN_PART - 1]),
        (2 * MIN_PART, 2, [MIN_PART, MIN_PART]),
        (0, 2, []),
        (200, 2, [100, 100]),
        (201, 4, [51, 50, 50, 50]),
        (76, 4, [26, 25, 25]),
        (201, 8, [26, 25, 25, 25, 25, 25, 25, 25]),
        (200, 1, [200]),
    ],
)
def test_a_batch_is_split_only_into_parts_worth_a_snapshot(count: int, threads: int, sizes: list[int]) -> None:
    requests = [Request("product", i) for i in range(count)]
    parts = split(requests, threads)
    assert [len(part) for part in parts] == sizes
    assert [r for part in parts for r in part] == requests
