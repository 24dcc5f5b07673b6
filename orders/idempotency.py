"""Exactly one effect per ``Idempotency-Key``, with the response kept in DynamoDB for a retry.

A request first claims its key with a conditional put (an in-progress record holding the hash of
the request and a lease), does its work, then stores its response in the record. Another request
with the key finds the record: a different hash is a misuse of the key (422); a stored response is
replayed; a claim still in progress is a duplicate to retry later (409 with ``Retry-After``),
unless the work had already committed — ``recover`` finds it (the order row holds the key), which
covers a crash between the commit and the response. A claim whose holder died before committing
is taken over once its lease has run out. A failure lets go of the claim, so that the same key may
be tried again: only a success is remembered.

DynamoDB is the quick answer, not the guarantee: the work itself must refuse a second effect for
one key (orders: a unique constraint), because a lease can run out under a request that is slow
rather than dead.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from pynamodb.exceptions import PynamoDBException
from rest_framework import exceptions

from hybridsite import dynamodb

from .tables import IdempotencyRecord

logger = logging.getLogger(__name__)

IN_PROGRESS = "in_progress"
DONE = "done"
CONDITION_FAILED = "ConditionalCheckFailedException"


class KeyReused(exceptions.APIException):
    status_code = 422
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was used with a different request; use a new key for a new request."


class RequestInProgress(exceptions.APIException):
    status_code = 409
    default_code = "request_in_progress"
    default_detail = "A request with this Idempotency-Key is in progress; retry after Retry-After."

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait


class KeysUnavailable(exceptions.APIException):
    status_code = 503
    default_code = "unavailable"
    default_detail = "Idempotency keys cannot be checked right now; retry shortly with the same key."
    wait = 5


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: bytes
    replayed: bool


Work = Callable[[], tuple[int, bytes]]
Recover = Callable[[], tuple[int, bytes] | None]


def request_hash(*, data: dict[str, Any]) -> str:
    """The hash of a request's validated body: equal meaning, equal hash (key order, defaults)."""
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _pk(user_id: int, key: str) -> str:
    return f"{user_id}#{key}"


def _claim(pk: str, digest: str, token: str, condition: Any) -> bool:
    """Write an in-progress record if ``condition`` holds; False when another record stands."""
    record = IdempotencyRecord(
        pk, request_hash=digest, state=IN_PROGRESS, token=token,
        lease_until=time.time() + settings.IDEMPOTENCY_LEASE_SECONDS,
        expires_at=datetime.now(UTC) + timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS),
    )
    try:
        record.save(condition=condition)
    except PynamoDBException as exc:
        if dynamodb.error_code(exc) == CONDITION_FAILED:
            return False
        raise
    return True


def _complete(pk: str, status_code: int, body: bytes) -> None:
    """Store the response. Conditional on the claim still standing: whoever completes it writes
    the same response (it is rendered from the committed rows), and a released key stays free."""
    try:
        IdempotencyRecord(pk).update(
            actions=[
                IdempotencyRecord.state.set(DONE),
                IdempotencyRecord.status_code.set(status_code),
                IdempotencyRecord.body.set(body.decode()),
            ],
            condition=IdempotencyRecord.state == IN_PROGRESS,
        )
    except PynamoDBException as exc:
        if dynamodb.error_code(exc) != CONDITION_FAILED:
            # The work is committed; a retry finds it through ``recover``.
            logger.warning("idempotency record %s not completed: %s", pk, exc)


def _release(pk: str, token: str) -> None:
    """Let go of a claim after a failure, so that the key can be tried again."""
    try:
        ours = (IdempotencyRecord.token == token) & (IdempotencyRecord.state == IN_PROGRESS)
        IdempotencyRecord(pk).delete(condition=ours)
    except PynamoDBException as exc:
        if dynamodb.error_code(exc) != CONDITION_FAILED:
            logger.warning("idempotency record %s not released (its lease will run out): %s", pk, exc)


def _standing(pk: str, digest: str, token: str, recover: Recover) -> Outcome | None:
    """Someone holds the key: the outcome to answer with, or None when this request took the claim
    over from a holder whose lease ran out."""
    record = dynamodb.get_item(IdempotencyRecord, {"pk": pk})
    if record is None:  # released between our put and this read
        if _claim(pk, digest, token, IdempotencyRecord.pk.does_not_exist()):
            return None
        raise _in_progress(1)
    if record.request_hash != digest:
        raise KeyReused()
    if record.state == DONE:
        return Outcome(int(record.status_code), record.body.encode(), replayed=True)
    found = recover()
    if found is not None:
        _complete(pk, *found)
        return Outcome(*found, replayed=True)
    wait = record.lease_until - time.time()
    stale = (IdempotencyRecord.token == record.token) & (IdempotencyRecord.state == IN_PROGRESS)
    if wait <= 0 and _claim(pk, digest, token, stale):
        return None
    raise _in_progress(wait)


def _in_progress(wait: float) -> RequestInProgress:
    return RequestInProgress(wait=max(1, math.ceil(wait)))


def run(*, user_id: int, key: str, digest: str, work: Work, recover: Recover) -> Outcome:
    """Run ``work`` at most once per key of this customer and return its response, or replay the
    response of the request that did. ``recover`` returns the response of work already committed
    under the key, if any."""
    pk = _pk(user_id, key)
    token = uuid.uuid4().hex
    try:
        if not _claim(pk, digest, token, IdempotencyRecord.pk.does_not_exist()):
            outcome = _standing(pk, digest, token, recover)
            if outcome is not None:
                return outcome
    except PynamoDBException as exc:
        logger.warning("idempotency key %s not checked: %s", pk, exc)
        raise KeysUnavailable() from exc
    try:
        status_code, body = work()
    except BaseException:
        _release(pk, token)
        raise
    _complete(pk, status_code, body)
    return Outcome(status_code, body, replayed=False)
