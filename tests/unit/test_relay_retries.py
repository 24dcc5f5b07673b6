"""Which failures the relay retries until they pass (transient) and which dead-letter a row, and
how long it waits between attempts."""

from __future__ import annotations

import botocore.exceptions
import pytest
from django.db import InterfaceError, OperationalError
from pynamodb.exceptions import PutError
from pytest_django.fixtures import Settings
from redis.exceptions import ConnectionError as RedisConnectionError

from projections import relay
from projections.projector import Fenced, PermanentProjectionError
from projections.relay import CacheRefreshFailed, backoff_seconds, is_transient


def client_error(code: str) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": code}}, "PutItem")


def error_id(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return f"ClientError-{error.response['Error']['Code']}"
    return type(error).__name__


def raised_from(cause: BaseException) -> RuntimeError:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("error", [
    botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
    client_error("ThrottlingException"),
    client_error("ProvisionedThroughputExceededException"),
    client_error("InternalServerError"),
    client_error("TransactionConflictException"),
    OperationalError("terminating connection due to administrator command"),
    InterfaceError("connection already closed"),
    RedisConnectionError("Connection refused"),
    CacheRefreshFailed("product:SKU-1"),
    Fenced("product#1: the projection lock is no longer held"),
], ids=error_id)
def test_connection_trouble_and_throttling_are_transient(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    client_error("ValidationException"),
    client_error("ResourceNotFoundException"),
    client_error("ConditionalCheckFailedException"),
    PermanentProjectionError("no projection is registered for 'retired'"),
    ValueError("a bug"),
    KeyError("product"),
], ids=error_id)
def test_anything_else_needs_a_fix(error: Exception) -> None:
    assert not is_transient(error)


def test_the_cause_decides_through_pynamodb_and_exception_chains() -> None:
    assert is_transient(PutError(cause=client_error("ThrottlingException")))
    assert not is_transient(PutError(cause=client_error("ValidationException")))
    assert is_transient(raised_from(OperationalError("server closed the connection")))
    assert not is_transient(raised_from(ValueError("a bug")))


def test_an_error_raised_while_handling_a_transient_one_is_transient() -> None:
    try:
        try:
            raise OperationalError("server closed the connection")
        except OperationalError:
            raise RuntimeError("cleanup failed")  # noqa: B904 (the implicit context is the point)
    except RuntimeError as exc:
        assert exc.__context__ is not None
        assert is_transient(exc)


@pytest.fixture
def draws(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> list[tuple[float, float]]:
    """The ranges ``backoff_seconds`` draws from (it gets their top), with base 1 s and cap 60 s."""
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 1.0
    settings.OUTBOX_BACKOFF_CAP_SECONDS = 60.0
    ranges: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        ranges.append((low, high))
        return high

    monkeypatch.setattr(relay.random, "uniform", uniform)
    return ranges


@pytest.mark.parametrize("attempts, low, high", [
    (0, 0.5, 1.0),
    (1, 0.5, 1.0),
    (2, 1.0, 2.0),
    (3, 2.0, 4.0),
    (6, 16.0, 32.0),
    (7, 30.0, 60.0),
    (100, 30.0, 60.0),
])
def test_backoff_doubles_per_attempt_up_to_the_cap_with_jitter_down_to_half(
    draws: list[tuple[float, float]], attempts: int, low: float, high: float
) -> None:
    assert backoff_seconds(attempts) == high
    assert draws == [(low, high)]


def test_backoff_draws_within_its_range(settings: Settings) -> None:
    settings.OUTBOX_BACKOFF_BASE_SECONDS = 0.2
    settings.OUTBOX_BACKOFF_CAP_SECONDS = 1.0
    draws = [backoff_seconds(4) for _ in range(200)]
    assert all(0.5 <= seconds <= 1.0 for seconds in draws)
    assert len(set(draws)) > 1  # jittered: retries of rows that failed together spread out
