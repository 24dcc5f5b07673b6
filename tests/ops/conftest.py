from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import caches


@pytest.fixture(autouse=True)
def flags_cache_clean() -> Iterator[None]:
    """A switch cached by one test must not outlive that test's database (rolled back under it)."""
    caches["flags"].delete_pattern("*")
    yield
    caches["flags"].delete_pattern("*")
