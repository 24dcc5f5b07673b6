"""The circuit breaker's states: closed, open for the cool-down, then one trial call (half-open).
A test clock moves time: no test waits."""

from __future__ import annotations

import pytest

from projections.breaker import Breaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class DependencyDown(Exception):
    pass


class BadRequest(Exception):
    """An error the caller caused: the dependency answered."""


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def breaker(clock: Clock) -> Breaker:
    return Breaker(
        "test", failures=3, cooldown_seconds=5.0, errors=(DependencyDown, BadRequest),
        caller_fault=lambda exc: isinstance(exc, BadRequest), clock=clock,
    )


def fail(breaker: Breaker, error: type[Exception] = DependencyDown) -> None:
    def call() -> None:
        raise error()

    with pytest.raises(error):
        breaker.call(call)


def open_it(breaker: Breaker) -> None:
    for _ in range(breaker.threshold):
        fail(breaker)
    assert breaker.is_open


def test_it_opens_at_the_threshold_of_consecutive_failures(breaker: Breaker) -> None:
    fail(breaker)
    fail(breaker)
    assert not breaker.is_open
    fail(breaker)
    assert breaker.is_open


def test_an_open_breaker_refuses_without_calling(breaker: Breaker) -> None:
    open_it(breaker)
    called = []
    with pytest.raises(CircuitOpen, match="test"):
        breaker.call(lambda: called.append(1))
    assert called == []


def test_a_success_starts_the_count_again(breaker: Breaker) -> None:
    fail(breaker)
    fail(breaker)
    assert breaker.call(lambda: "answer") == "answer"
    fail(breaker)
    fail(breaker)
    assert not breaker.is_open


def test_errors_the_caller_caused_pass_through_and_count_as_an_answer(breaker: Breaker) -> None:
    fail(breaker)
    fail(breaker)
    for _ in range(5):
        fail(breaker, BadRequest)
    assert not breaker.is_open
    fail(breaker)
    fail(breaker)
    assert not breaker.is_open


def test_errors_it_does_not_watch_are_not_counted(breaker: Breaker) -> None:
    for _ in range(5):
        fail(breaker, KeyError)
    assert not breaker.is_open


def test_it_stays_open_for_the_whole_cool_down(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.now += 4.999
    assert breaker.is_open
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: None)


def test_after_the_cool_down_a_successful_trial_closes_it(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.now += 5.0
    assert not breaker.is_open
    assert breaker.call(lambda: "back") == "back"
    fail(breaker)
    fail(breaker)
    assert not breaker.is_open  # closed again: a full count of failures is needed to open it


def test_a_failed_trial_opens_it_again_at_once(breaker: Breaker, clock: Clock) -> None:
    open_it(breaker)
    clock.now += 5.0
    fail(breaker)
    assert breaker.is_open
    clock.now += 4.999
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: None)


def test_is_open_only_reads(breaker: Breaker, clock: Clock) -> None:
    """Looking at the breaker (health, tests) never moves it to half-open: only a call does."""

    def state() -> dict[str, object]:
        return {name: value for name, value in vars(breaker).items() if name != "_lock"}

    open_it(breaker)
    clock.now += 60
    before = state()
    assert not breaker.is_open
    assert not breaker.is_open
    assert state() == before
    assert breaker.allows_call()
    assert state() != before


def test_reset_closes_it(breaker: Breaker) -> None:
    open_it(breaker)
    breaker.reset()
    assert not breaker.is_open
    assert breaker.call(lambda: 1) == 1
