"""The unit layer: the pure parts (breakers, codecs, backoff, manifests), with no service touched.

The suite's session fixtures that start or prepare services (the broker, static files, the test
database) are replaced here by nothing, and a connection attempt fails the test: these tests run
in seconds on their own (``make unit``) and as part of the whole suite.
"""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


@pytest.fixture(scope="session")
def broker() -> None:
    """No broker: nothing here dispatches a task."""


@pytest.fixture(scope="session")
def static_files() -> None:
    """No static files: nothing here renders a page."""


@pytest.fixture(scope="session")
def projector_threads() -> None:
    """No test database, so no relay threads holding connections to it."""


@pytest.fixture(autouse=True)
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError(f"a unit test tried to connect to {args[1:]!r}: it belongs with the service tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
