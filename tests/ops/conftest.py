from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _flags(flags) -> None:
    """Every test here flips switches."""
