"""Every call to Postgres, DynamoDB and Redis counted and timed, each at the one place its clients
are made: a database execute wrapper installed on each new connection, botocore event hooks on
every DynamoDB client (``hybridsite.dynamodb``), and the Redis client class django-redis builds
(``CACHES["default"]["OPTIONS"]["REDIS_CLIENT_CLASS"]``)."""

from __future__ import annotations

import re
from time import perf_counter
from typing import Any

from redis import Redis
from redis.client import Pipeline

from hybridsite import dynamodb

from .instruments import store_call_observe

# --- Postgres -----------------------------------------------------------------------------------

SQL_OPS = frozenset({
    "select", "insert", "update", "delete", "with", "savepoint", "release", "rollback", "set", "lock",
    "listen", "notify", "truncate", "copy", "declare", "fetch", "close", "show",
})
_FIRST_WORD = re.compile(r"\W*(\w+)")


def sql_op(sql: Any) -> str:
    """The statement's verb (``select``, ``insert``, ...), or ``other``: never the statement."""
    match = _FIRST_WORD.match(str(sql)[:64])
    verb = match.group(1).lower() if match else ""
    return verb if verb in SQL_OPS else "other"


def postgres_wrapper(execute, sql, params, many, context):
    started = perf_counter()
    try:
        result = execute(sql, params, many, context)
    except Exception as exc:
        store_call_observe("postgres", sql_op(sql), type(exc).__name__, perf_counter() - started)
        raise
    store_call_observe("postgres", sql_op(sql), "ok", perf_counter() - started)
    return result


def postgres_install(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver. First in the list, so that a wrapper someone pushes with
    ``connection.execute_wrapper()`` (which pops the last one) is still the one popped."""
    if postgres_wrapper not in connection.execute_wrappers:
        connection.execute_wrappers.insert(0, postgres_wrapper)


# --- DynamoDB -----------------------------------------------------------------------------------

DYNAMODB_OPS = {
    "GetItem": "get", "PutItem": "put", "UpdateItem": "update", "DeleteItem": "delete",
    "Query": "query", "Scan": "scan", "TransactWriteItems": "tx", "TransactGetItems": "tx_get",
    "BatchWriteItem": "batch_write", "BatchGetItem": "batch_get",
}
_STARTED = "ops.started"


def dynamodb_op(event_name: str) -> str:
    operation = event_name.rsplit(".", 1)[-1]
    return DYNAMODB_OPS.get(operation) or re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()


def _dynamodb_before(context: dict, **kwargs) -> None:
    context[_STARTED] = perf_counter()


def _dynamodb_observe(event_name: str, context: dict, outcome: str) -> None:
    started = context.pop(_STARTED, None)
    if started is not None:
        store_call_observe("dynamodb", dynamodb_op(event_name), outcome, perf_counter() - started)


def _dynamodb_after(http_response, parsed: dict, context: dict, event_name: str, **kwargs) -> None:
    """An answer: ``ok``, or DynamoDB's error code (``ConditionalCheckFailedException``, ...)."""
    outcome = "ok"
    if http_response.status_code >= 300:
        outcome = (parsed.get("Error") or {}).get("Code") or f"http_{http_response.status_code}"
    _dynamodb_observe(event_name, context, outcome)


def _dynamodb_error(exception: BaseException, context: dict, event_name: str, **kwargs) -> None:
    """No answer: the connection or read failed (``EndpointConnectionError``, ``ReadTimeoutError``)."""
    _dynamodb_observe(event_name, context, type(exception).__name__)


def _dynamodb_call(operation: str, outcome: str, seconds: float) -> None:
    """A call the adapter makes itself (the projector's puts), past botocore's hooks."""
    store_call_observe("dynamodb", dynamodb_op(operation), outcome, seconds)


def dynamodb_install() -> None:
    for service in ("dynamodb", "dynamodb-streams"):
        dynamodb.client_hook_add(f"before-call.{service}", _dynamodb_before)
        dynamodb.client_hook_add(f"after-call.{service}", _dynamodb_after)
        dynamodb.client_hook_add(f"after-call-error.{service}", _dynamodb_error)
    dynamodb.call_observer_add(_dynamodb_call)


# --- Redis --------------------------------------------------------------------------------------


def redis_op(command: Any) -> str:
    name = command.decode() if isinstance(command, bytes) else str(command)
    return "script" if name.upper() in ("EVALSHA", "EVAL") else name.lower().replace(" ", "_")


class InstrumentedPipeline(Pipeline):
    """One observation per round trip: ``tx`` (MULTI/EXEC) or ``pipeline``."""

    op = "pipeline"

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        op = self.op
        started = perf_counter()
        try:
            result = super().execute(raise_on_error)
        except Exception as exc:
            store_call_observe("redis", op, type(exc).__name__, perf_counter() - started)
            raise
        store_call_observe("redis", op, "ok", perf_counter() - started)
        return result


class InstrumentedRedis(Redis):
    """The Redis client django-redis builds for the cache: each command counted and timed."""

    def execute_command(self, *args, **options):
        started = perf_counter()
        try:
            result = super().execute_command(*args, **options)
        except Exception as exc:
            store_call_observe("redis", redis_op(args[0]), type(exc).__name__, perf_counter() - started)
            raise
        store_call_observe("redis", redis_op(args[0]), "ok", perf_counter() - started)
        return result

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = InstrumentedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.op = "tx" if transaction else "pipeline"
        return pipe
