"""The one adapter to DynamoDB through PynamoDB: table ``Meta`` from settings, connections, creating
the tables, hooks on every client (metrics), and PynamoDB's and botocore's private API. Every app's
tables go through these functions; nothing else touches a private attribute.

An app declares its tables on its ``AppConfig`` as ``dynamodb_tables = "<module>.<TUPLE>"``;
:func:`all_tables` collects them, so ``projections_setup`` creates every table of every app.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

import botocore.exceptions
import botocore.handlers
import botocore.loaders
import botocore.session
import orjson
import pynamodb.connection.base
import pynamodb.settings
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.httpsession import get_cert_path
from botocore.utils import get_environ_proxies
from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string
from pynamodb._schema import ModelSchema
from pynamodb.attributes import TTLAttribute
from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition
from pynamodb.models import MetaProtocol, Model

if TYPE_CHECKING:  # botocore-stubs' name for a Config's retries
    from botocore.config import _RetryDict

M = TypeVar("M", bound=Model)


def table_meta(name: str, **extra: object) -> MetaProtocol:
    """A PynamoDB ``Meta`` whose connection and table name come from settings."""
    attrs = {
        "table_name": f"{settings.DYNAMODB_TABLE_PREFIX}{name}",
        "region": settings.AWS_REGION,
        "host": settings.DYNAMODB_ENDPOINT or None,
        "connect_timeout_seconds": settings.DYNAMODB_TIMEOUT_SECONDS,
        "read_timeout_seconds": settings.DYNAMODB_TIMEOUT_SECONDS,
        "max_retry_attempts": 1,
        "max_pool_connections": settings.DYNAMODB_MAX_POOL_CONNECTIONS,
        "billing_mode": "PAY_PER_REQUEST",
        **extra,
    }
    if settings.AWS_ACCESS_KEY_ID:
        attrs["aws_access_key_id"] = settings.AWS_ACCESS_KEY_ID
        attrs["aws_secret_access_key"] = settings.AWS_SECRET_ACCESS_KEY
        attrs["aws_session_token"] = settings.AWS_SESSION_TOKEN or None
    return cast(MetaProtocol, type("Meta", (), attrs))  # a class with these attributes, as Model.Meta is


_regional: dict[tuple[type[Model], str, str, str], type[Model]] = {}
_regional_lock = threading.Lock()


def _read_only(self: Model, *args: object, **kwargs: object) -> Any:
    raise TypeError(f"{type(self).__name__} is another region's table, read here only")


def regional_table(model: type[M], region: str | None) -> type[M]:
    """``model`` as ``region`` holds it (global tables: the same table name, key and attributes in
    every region), reached at ``DYNAMODB_REGION_ENDPOINTS[region]`` (empty: AWS's endpoint of that
    region); ``model`` itself for this region (or None). Another region's table is for reads
    (GetItem, BatchGetItem, Query, Scan): saving or deleting its items raises, as each item has one
    writing region (docs/architecture/regions.md). Built once per table, region and endpoint, its
    connection (a pooled botocore client) kept as PynamoDB keeps a model's."""
    if region is None or region == settings.HYBRIDSITE_REGION:
        return model
    endpoint = settings.DYNAMODB_REGION_ENDPOINTS.get(region)
    if endpoint is None:
        raise ValueError(f"{region} is not one of the site's regions ({', '.join(settings.REGIONS)})")
    cache_key = (model, region, endpoint, model.Meta.table_name)
    found = _regional.get(cache_key)
    if found is None:
        with _regional_lock:
            found = _regional.get(cache_key)
            if found is None:
                meta = {name: value for name, value in vars(model.Meta).items() if not name.startswith("__")}
                meta.update(region=region, host=endpoint or None)
                # A subclass: PynamoDB copies the indexes onto it and builds its own connection
                # (``_connection`` None here: the model's, inherited, has the same table name).
                found = type(f"{model.__name__}In{region.title().replace('-', '')}", (model,), {
                    "__module__": model.__module__, "Meta": type("Meta", (), meta), "_connection": None,
                    "save": _read_only, "update": _read_only, "delete": _read_only,
                })
                _regional[cache_key] = found
    return cast("type[M]", found)


def all_tables() -> list[type[Model]]:
    """Every installed app's tables, in app order."""
    found: list[type[Model]] = []
    for config in apps.get_app_configs():
        path = getattr(config, "dynamodb_tables", None)
        if path:
            found.extend(import_string(path))
    return found


# --- PynamoDB's private API, in this one place ---------------------------------------------------


def connection(model: type[Model]) -> Any:
    """PynamoDB's low-level connection of a table (its host, its botocore client)."""
    return model._get_connection().connection


_loader: botocore.loaders.Loader | None = None


def _session() -> botocore.session.Session:
    """A new botocore session, as PynamoDB makes one for each connection (and thread) that builds
    a client, but reading botocore's data files through the first session's loader, which keeps
    what it read: a client then costs 30 ms of CPU instead of 190 (the endpoint rules and the
    service model, some megabytes of JSON, parsed again by every new session)."""
    global _loader
    session = botocore.session.get_session()
    if _loader is None:
        _loader = session.get_component("data_loader")
    else:
        session.register_component("data_loader", _loader)
    return session


pynamodb.connection.base.get_session = _session  # type: ignore[assignment]

ADAPTIVE_RETRIES: _RetryDict = {"mode": "adaptive", "total_max_attempts": 2}
"""botocore's retries for every client: two attempts (a repeated conditional write is refused by
its own condition), and once DynamoDB throttles, a client-side rate limit that eases as calls pass."""
# PynamoDB reads its clients' retry configuration from its settings (its ``Meta`` has none).
pynamodb.settings.default_settings_dict["retry_configuration"] = ADAPTIVE_RETRIES  # type: ignore[assignment]

_client_lock = threading.Lock()


def client(model: type[Model]) -> Any:
    """The botocore DynamoDB client a table's calls go through. PynamoDB builds it on first use
    without a lock: the projector's sixteen writer threads would each build one (loading
    botocore's service model, tens of milliseconds of CPU apiece) and all but one be thrown away."""
    table = connection(model)
    if table._client is None:
        with _client_lock:
            return table.client
    return table.client


def reset_connection(model: type[Model]) -> None:
    """Forget the cached connection, so that the next call builds one from ``Meta`` again."""
    model._connection = None


def key_names(model: type[Model]) -> list[str]:
    """The table's key attribute names: the hash key, then the range key if there is one."""
    return [name for name in (model._hash_keyname, model._range_keyname) if name]


def get_item(model: type[M], key: dict[str, Any]) -> M | None:
    """A strongly consistent read of one item by its key attributes; None when there is none."""
    hash_name, *range_name = key_names(model)
    try:
        return model.get(key[hash_name], key[range_name[0]] if range_name else None, consistent_read=True)
    except model.DoesNotExist:
        return None


def key_of(model: type[Model], key: dict[str, Any]) -> tuple[Any, ...]:
    """An item's key attributes as a tuple, hash key first: how ``batch_get_items`` files items."""
    return tuple(key[name] for name in key_names(model))


def batch_get_items(model: type[M], keys: list[dict[str, Any]]) -> dict[tuple[Any, ...], M]:
    """Strongly consistent reads of several items (BatchGetItem, 100 keys a call, unprocessed keys
    retried by PynamoDB), by ``key_of``; keys without an item are left out."""
    names = key_names(model)
    wanted = [key_of(model, key) if len(names) > 1 else key[names[0]] for key in keys]
    return {
        key_of(model, {name: getattr(item, name) for name in names}): item
        for item in model.batch_get(wanted, consistent_read=True)
    }


def hash_key_attribute(model: type[Model]) -> Any:
    """The hash key attribute, for conditions such as ``does_not_exist()``."""
    return getattr(model, key_names(model)[0])


def error_code(exc: Exception) -> str | None:
    """The DynamoDB error code behind a PynamoDB exception (``ConditionalCheckFailedException``);
    None for a failure without an answer (a timeout), where PynamoDB's own property would raise."""
    response = getattr(getattr(exc, "cause", None), "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def schema(model: type[Model]) -> ModelSchema:
    return model._get_schema()


# --- creating the tables -------------------------------------------------------------------------


def ttl_attribute(model: type[Model]) -> str | None:
    """The name of the model's TTL attribute, if it has one."""
    return next((name for name, attr in model.get_attributes().items() if isinstance(attr, TTLAttribute)), None)


def table_ensure(model: type[Model], *, drop_retired: bool | None = None) -> str:
    """Create the table, or add what an existing one lacks (indexes, stream, TTL), and with
    ``drop_retired`` delete the indexes it no longer declares (see :func:`_retired_indexes_drop`;
    by default on an emulator only: on AWS the stack owns the tables). Returns what it did."""
    if drop_retired is None:
        drop_retired = settings.DYNAMODB_ENGINE != "aws"
    meta = model.Meta
    dynamodb = client(model)
    if not model.exists():
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
        action = "created"
    else:
        action = "ok"
        description = dynamodb.describe_table(TableName=meta.table_name)["Table"]
        existing = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
        table_schema = schema(model)
        for index in table_schema.get("global_secondary_indexes", []):
            if index["index_name"] in existing:
                continue
            # PynamoDB's schema holds attribute definitions and key schemas in DynamoDB's own shape.
            dynamodb.update_table(
                TableName=meta.table_name,
                AttributeDefinitions=table_schema["attribute_definitions"],
                GlobalSecondaryIndexUpdates=[{"Create": {
                    "IndexName": index["index_name"],
                    "KeySchema": index["key_schema"],
                    "Projection": {"ProjectionType": index["projection"]["ProjectionType"]},
                }}],
            )
            action = "updated"
        if drop_retired:
            dropped, waiting = _retired_indexes_drop(model, existing)
            action = "updated" if dropped else action
            action = f"{action}; {', '.join(waiting)} kept until its replacement is active" if waiting else action
        view_type = getattr(meta, "stream_view_type", None)
        stream = description.get("StreamSpecification") or {}
        if view_type and not stream.get("StreamEnabled"):
            dynamodb.update_table(
                TableName=meta.table_name,
                StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
            )
            action = "updated"
    ttl_name = ttl_attribute(model)
    if ttl_name:
        ttl = dynamodb.describe_time_to_live(TableName=meta.table_name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=meta.table_name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_name},
            )
    return action


def _retired_indexes_drop(model: type[Model], existing: set[str]) -> tuple[bool, list[str]]:
    """Delete each index an older release made (the model's ``retired_indexes``, by name) whose
    replacement is active: its readers now read the replacement, and until it is active (DynamoDB
    backfills a new index for minutes on a large table) the retired one stays. Returns whether one
    was deleted, and those kept: a later run deletes them."""
    retired = {name: new for name, new in getattr(model, "retired_indexes", {}).items() if name in existing}
    if not retired:
        return False, []
    dynamodb, table = client(model), model.Meta.table_name
    indexes = dynamodb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])
    active = {i["IndexName"] for i in indexes if i.get("IndexStatus") == "ACTIVE" and not i.get("Backfilling")}
    dropped, waiting = False, []
    for name, replacement in retired.items():
        if replacement in active:  # one index change per UpdateTable call, as DynamoDB allows
            dynamodb.update_table(TableName=table, GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": name}}])
            dropped = True
        else:
            waiting.append(name)
    return dropped, waiting


def tables_ensure(*, drop_retired: bool | None = None) -> dict[str, str]:
    return {model.Meta.table_name: table_ensure(model, drop_retired=drop_retired) for model in all_tables()}


def tables_drop() -> None:
    """Remove every table of this prefix (the benchmark starts from empty tables)."""
    for model in all_tables():
        if model.exists():
            model.delete_table()


# --- hooks on every client -----------------------------------------------------------------------


def client_hook_add(event: str, handler: Callable[..., Any]) -> None:
    """Register a botocore event handler (``before-call.dynamodb``, ...) on every client built from
    now on, PynamoDB's included: PynamoDB builds its clients from fresh botocore sessions, each of
    which starts from botocore's built-in handlers, and a client copies its session's handlers."""
    spec = (event, handler)
    if spec not in botocore.handlers.BUILTIN_HANDLERS:
        botocore.handlers.BUILTIN_HANDLERS.append(spec)


# --- conditional puts, the projector's own call --------------------------------------------------

CallObserver = Callable[[str, str, float], object]
_call_observers: list[CallObserver] = []


def call_observer_add(observer: CallObserver) -> None:
    """Called with (operation, outcome, seconds) after each call :func:`put` makes: those calls do
    not pass botocore's event hooks (``ok``, DynamoDB's error code, or the connection error's name)."""
    if observer not in _call_observers:
        _call_observers.append(observer)


def call_observer_remove(observer: CallObserver) -> None:
    if observer in _call_observers:
        _call_observers.remove(observer)


THROTTLING_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
TRANSIENT_CODES = THROTTLING_CODES | {
    "InternalServerError", "InternalFailure", "ServiceUnavailable", "TransactionConflictException",
}
"""DynamoDB's error codes that pass by themselves (throttling, server trouble): botocore's retry
mode tries those once more (the models' clients make two attempts), and so does :func:`put`, which
tries throttled writes up to ``DYNAMODB_THROTTLE_ATTEMPTS`` times behind the process's pacer."""


class Pacer:
    """Adaptive backoff shared by one process's writes: each throttled answer doubles the pause
    that every write draws before it is sent (full jitter, from ``DYNAMODB_THROTTLE_BASE_SECONDS``
    up to the cap), each success halves it. A throttled process slows down as a whole, its writer
    threads bounded as they are, instead of each thread retrying at full speed."""

    def __init__(self) -> None:
        self.ceiling = 0.0
        self.lock = threading.Lock()

    def wait(self) -> None:
        if self.ceiling:
            time.sleep(random.uniform(0, self.ceiling))

    def throttled(self) -> None:
        with self.lock:
            base, cap = settings.DYNAMODB_THROTTLE_BASE_SECONDS, settings.DYNAMODB_THROTTLE_CAP_SECONDS
            self.ceiling = min(cap, max(base, self.ceiling * 2))

    def passed(self) -> None:
        if self.ceiling:
            with self.lock:
                halved = self.ceiling / 2
                self.ceiling = halved if halved >= settings.DYNAMODB_THROTTLE_BASE_SECONDS else 0.0


pacer = Pacer()


class _Sender:
    """One process's connections for :func:`put`: a pooled urllib3 manager, and whether botocore
    would send to an endpoint through an HTTP proxy (then ``save`` is used, which does)."""

    def __init__(self) -> None:
        self.pool = urllib3.PoolManager(
            maxsize=settings.DYNAMODB_MAX_POOL_CONNECTIONS,
            # A connection that fails, or a kept-alive one the server closed, is tried once more
            # (a repeated put is refused by its own version condition).
            retries=urllib3.Retry(total=1, connect=1, read=1, status=0, other=0, allowed_methods=None, redirect=0),
            ca_certs=os.environ.get("AWS_CA_BUNDLE") or get_cert_path(True),
        )
        self.proxied: dict[str, bool] = {}

    def through_proxy(self, url: str) -> bool:
        if url not in self.proxied:
            self.proxied[url] = urlsplit(url).scheme in get_environ_proxies(url)
        return self.proxied[url]


_sender: _Sender | None = None
_sender_lock = threading.Lock()


def _sender_here() -> _Sender:
    global _sender
    with _sender_lock:
        if _sender is None:
            _sender = _Sender()
        return _sender


def _forget_connections() -> None:
    """In a forked child (a Celery pool process, a backfill process): connections of its own (two
    processes on one socket would read each other's answers), and locks no thread holds."""
    global _sender, _sender_lock, _client_lock, pacer
    _sender, _sender_lock, _client_lock, pacer = None, threading.Lock(), threading.Lock(), Pacer()
    tables: list[type[Model]] = [Model]
    while tables:
        table = tables.pop()
        tables.extend(table.__subclasses__())
        if table.__dict__.get("_connection") is not None:
            reset_connection(table)


os.register_at_fork(after_in_child=_forget_connections)


def put(item: Model, condition: Condition) -> bool:
    """``item.save(condition=condition)``, sent directly: one JSON body signed with botocore's
    SigV4 signer and the model's client's own credentials, on a pooled urllib3 connection, with
    the model's timeouts. The projector writes two items per aggregate, and PynamoDB with botocore
    spend three to four times the CPU on each call (user agent, some ten event hooks, endpoint
    rules, serializer and parser). False when the condition refused the write; any other failure
    raises PynamoDB's ``PutError``, its cause botocore's ``ClientError`` or connection error, as
    ``save`` does; server errors are tried once more, as botocore does, and throttled writes up to
    ``DYNAMODB_THROTTLE_ATTEMPTS`` times, each after the pause of the process's :class:`Pacer`."""
    model = type(item)
    if model.save is _read_only:
        _read_only(item)
    dynamodb = client(model)
    url = dynamodb.meta.endpoint_url.rstrip("/") + "/"
    sender = _sender_here()
    if sender.through_proxy(url):
        try:
            item.save(condition=condition)
            return True
        except PutError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    request: dict[str, Any] = {
        "TableName": model.Meta.table_name, "Item": item.serialize(),
        "ConditionExpression": condition.serialize(names, values), "ReturnConsumedCapacity": "TOTAL",
    }
    if names:
        request["ExpressionAttributeNames"] = {placeholder: name for name, placeholder in names.items()}
    if values:
        request["ExpressionAttributeValues"] = values
    body = orjson.dumps(request, default=_base64)
    table = connection(model)
    timeout = urllib3.Timeout(connect=table._connect_timeout_seconds, read=table._read_timeout_seconds)
    attempts = max(2, settings.DYNAMODB_THROTTLE_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        pacer.wait()
        started = perf_counter()
        credentials = dynamodb._request_signer._credentials  # PynamoDB rebuilds a client that has none
        if credentials is None:
            _observed("PutItem", "NoCredentialsError", started)
            raise PutError("Failed to put item", botocore.exceptions.NoCredentialsError())
        signed = AWSRequest(method="POST", url=url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem",
        })
        SigV4Auth(credentials.get_frozen_credentials(), "dynamodb", dynamodb.meta.region_name).add_auth(signed)
        try:
            response = sender.pool.request(
                "POST", url, body=body, headers=dict(signed.headers.items()), timeout=timeout
            )
        except urllib3.exceptions.HTTPError as exc:
            error = _connection_error(exc, url)
            _observed("PutItem", type(error).__name__, started)
            raise PutError(f"Failed to put item in {model.Meta.table_name}", error) from exc
        if response.status == 200:
            _observed("PutItem", "ok", started)
            _count_units(model.Meta.table_name, response.data)
            pacer.passed()
            return True
        code, message = _error_of(response)
        _observed("PutItem", code, started)
        if code == "ConditionalCheckFailedException":
            pacer.passed()
            return False
        if code in THROTTLING_CODES:
            pacer.throttled()
            if attempt < attempts:
                continue
        elif attempt == 1 and code in TRANSIENT_CODES:
            time.sleep(random.uniform(0, 1))  # botocore's first backoff: full jitter, base one second
            continue
        request_id = response.headers.get("x-amzn-RequestId", "")
        raise PutError(
            f"Failed to put item in {model.Meta.table_name}: {code}: {message} (request {request_id})",
            botocore.exceptions.ClientError({
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {
                    "HTTPStatusCode": response.status, "RequestId": request_id, "HostId": "",
                    "RetryAttempts": attempt - 1,
                    "HTTPHeaders": {name.lower(): value for name, value in response.headers.items()},
                },
            }, "PutItem"),
        )
    raise AssertionError("unreachable: the last attempt returns or raises")


_write_units: dict[str, float] = {}
_write_units_lock = threading.Lock()


def _count_units(table: str, answer: bytes) -> None:
    units = (orjson.loads(answer).get("ConsumedCapacity") or {}).get("CapacityUnits") or 0.0
    with _write_units_lock:
        _write_units[table] = _write_units.get(table, 0.0) + units


def write_units() -> dict[str, float]:
    """Write units DynamoDB reported for this process's conditional puts so far, per table (each
    put asks for ``ReturnConsumedCapacity``): a projection's cost, measured by ``projections.sizes``."""
    with _write_units_lock:
        return dict(_write_units)


def _base64(value: object) -> str:
    """A binary attribute value (bytes) as DynamoDB JSON writes it."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def _error_of(response: urllib3.BaseHTTPResponse) -> tuple[str, str]:
    """DynamoDB's error code and message (``{"__type": "...#Code", "message": ...}``, as botocore
    reads them)."""
    try:
        answer = orjson.loads(response.data)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or "__type" not in answer:
        # Not DynamoDB's answer (a proxy's, a load balancer's): transient when it is a 5xx.
        return ("InternalFailure" if response.status >= 500 else f"http_{response.status}"), response.data[:200].decode(
            errors="replace"
        )
    code = str(answer["__type"]).split(":", 1)[0].rsplit("#", 1)[-1]
    return code, str(answer.get("message") or answer.get("Message") or "")


def _connection_error(exc: urllib3.exceptions.HTTPError, url: str) -> botocore.exceptions.BotoCoreError:
    """botocore's exception for what urllib3 met, so that callers tell failures apart as they do
    for every other call (a timeout, a refused or a dropped connection: all transient)."""
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.NewConnectionError):  # before its base class, a timeout
        return botocore.exceptions.EndpointConnectionError(endpoint_url=url, error=reason)
    if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
        return botocore.exceptions.ConnectTimeoutError(endpoint_url=url, error=reason)
    if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
        return botocore.exceptions.ReadTimeoutError(endpoint_url=url, error=reason)
    return botocore.exceptions.ConnectionClosedError(endpoint_url=url, error=reason)


def _observed(operation: str, outcome: str, started: float) -> None:
    seconds = perf_counter() - started
    for observer in _call_observers:
        observer(operation, outcome, seconds)


# --- streams -------------------------------------------------------------------------------------


def streams_client() -> Any:
    """A boto3 DynamoDB Streams client from the same settings as the tables (endpoint, region,
    credentials, timeouts)."""
    import boto3
    from botocore.config import Config

    credentials = (
        {
            "aws_access_key_id": settings.AWS_ACCESS_KEY_ID, "aws_secret_access_key": settings.AWS_SECRET_ACCESS_KEY,
            "aws_session_token": settings.AWS_SESSION_TOKEN or None,
        }
        if settings.AWS_ACCESS_KEY_ID else {}
    )
    return boto3.client(
        "dynamodbstreams",
        region_name=settings.AWS_REGION,
        endpoint_url=settings.DYNAMODB_ENDPOINT or None,
        config=Config(
            connect_timeout=settings.DYNAMODB_TIMEOUT_SECONDS,
            read_timeout=settings.DYNAMODB_TIMEOUT_SECONDS,
            retries=ADAPTIVE_RETRIES,
        ),
        **credentials,
    )


def shard_iterator(
    streams: Any, stream_arn: str, shard_id: str, checkpoint: str, on_trimmed: Callable[[str], None]
) -> str | None:
    """An iterator after ``checkpoint`` (from the shard's oldest record without one). A checkpoint the
    stream no longer holds calls ``on_trimmed`` with the reason, then reads from the oldest record."""
    position = (
        {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
        if checkpoint else {"ShardIteratorType": "TRIM_HORIZON"}
    )
    try:
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, **position)
    except streams.exceptions.TrimmedDataAccessException as exc:
        on_trimmed(str(exc))
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
    return iterator.get("ShardIterator")


class ShardReadPace:
    """At most one GetRecords per stream shard every ``STREAM_READ_INTERVAL_SECONDS``, busy or
    idle: AWS serves five a second per shard, shared by every reader of it, and throttles the rest.
    ``sleep`` is the reader's own wait (its stop event's), so that stopping never waits on a pace."""

    def __init__(self, sleep: Callable[[float], object]) -> None:
        self.sleep = sleep
        self.next_read: dict[str, float] = {}

    def before_read(self, shard: str) -> None:
        """Wait until ``shard`` may be read again, and count this read."""
        wait = self.next_read.get(shard, 0.0) - time.monotonic()
        if wait > 0:
            self.sleep(wait)
        self.next_read[shard] = time.monotonic() + settings.STREAM_READ_INTERVAL_SECONDS


def stream_arn(model: type[Model]) -> str | None:
    """The table's current stream, or None when it has none."""
    return client(model).describe_table(TableName=model.Meta.table_name)["Table"].get("LatestStreamArn")


def from_image(model: type[Model], image: dict[str, Any]) -> Any:
    """An item of ``model`` from a stream record's image (DynamoDB JSON)."""
    return model.from_raw_data(image)


def table_name(model: type[Model]) -> str:
    return model.Meta.table_name
