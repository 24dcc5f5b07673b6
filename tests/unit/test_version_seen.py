"""The version a client says it holds (its If-None-Match): the floor a read answers at or above, in
whichever region (docs/architecture/regions.md)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from projections.apis import MAX_VERSION, version_seen


@pytest.mark.parametrize(("header", "version"), [
    (None, 0),
    ("", 0),
    ("*", 0),
    ('"5"', 5),
    ('W/"5"', 5),
    ('"5-s2"', 5),  # the ETag of another document shape: the same version
    ('W/"7", "5-s2"', 7),  # several: the highest
    ('"12" , garbage', 12),
    ('"²"', 0),  # a digit, but no number
    ('"99999999999999999999"', 0),  # longer than any version: not one
    (f'"{10**19 - 1}"', MAX_VERSION),
])
def test_the_highest_version_among_the_tags(header: str | None, version: int) -> None:
    request = RequestFactory().get("/", headers={} if header is None else {"If-None-Match": header})
    assert version_seen(request) == version
