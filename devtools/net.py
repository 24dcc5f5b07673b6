"""Ports and waiting, for whatever starts servers and processes: the launcher, the bench, the tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


class NotReady(TimeoutError):
    """What was waited for did not happen in time; the message names it."""


def free_port() -> int:
    """A loopback port nobody listens on right now (the caller binds it soon after)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> None:
    """Poll ``predicate`` until it is true; raise :class:`NotReady` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise NotReady(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)
