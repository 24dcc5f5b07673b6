"""moto server with IAM enforced (``INITIAL_NO_AUTH_ACTION_COUNT=0``), in this process, and the app
switched to it with one IAM user's keys.

moto checks a request's signature and its action against the user's policies, but authorizes every
DynamoDB and Streams call against the resource ``*``: it cannot tell one table from another. The
harness gives it the resource AWS authorizes against (the table's ARN, the index's for a Query on
an index, the stream's for a Streams call, ``*`` for ListTables and ListStreams), so that a policy
of exact ARNs is evaluated as IAM would. Calls of several tables at once (batch and transaction
calls) are checked against their first table only: no process here makes one. Conditions
(``Condition`` blocks) are not evaluated by moto; the policies have none.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.test import override_settings

from devtools.net import free_port
from hybridsite.dynamodb import all_tables, reset_connection

ACCOUNT = "123456789012"  # moto's account


@dataclass
class Decision:
    user: str
    action: str
    resource: str
    allowed: bool


@dataclass
class IamMoto:
    url: str
    region: str
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    decisions: list[Decision] = field(default_factory=list)

    def user_add(self, name: str, policy: dict[str, Any]) -> None:
        from moto.iam.models import iam_backends

        iam = iam_backends[ACCOUNT]["aws"]
        iam.create_user(self.region, name)
        iam.put_user_policy(name, "policy", json.dumps({"Version": "2012-10-17", **policy}))
        key = iam.create_access_key(name)
        self.keys[name] = (key.access_key_id, key.secret_access_key)

    def denied(self, user: str) -> list[Decision]:
        return [d for d in self.decisions if d.user == user and not d.allowed]

    def allowed_actions(self, user: str) -> set[str]:
        return {d.action for d in self.decisions if d.user == user and d.allowed}

    @contextmanager
    def signed_as(self, user: str) -> Iterator[None]:
        """Every table of the app, and the Streams client, on this server with ``user``'s keys."""
        key_id, secret = self.keys[user]
        models = all_tables()
        saved = {m: dict(vars(m.Meta)) for m in models}
        for model in models:
            model.Meta.host = self.url
            model.Meta.aws_access_key_id = key_id
            model.Meta.aws_secret_access_key = secret
            model.Meta.aws_session_token = None
            reset_connection(model)
        try:
            with override_settings(
                DYNAMODB_ENDPOINT=self.url, AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret,
                AWS_SESSION_TOKEN="",
            ):
                yield
        finally:
            for model, attrs in saved.items():
                for name in ("host", "aws_access_key_id", "aws_secret_access_key", "aws_session_token"):
                    if name in attrs:
                        setattr(model.Meta, name, attrs[name])
                    elif hasattr(model.Meta, name):
                        delattr(model.Meta, name)
                reset_connection(model)


def _dynamodb_resource(handler: Any) -> str:
    body = json.loads(handler.raw_body or b"{}")
    action = handler._get_action()
    prefix = f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/"
    if action in ("ListTables", "ListStreams"):
        return "*"
    if "StreamArn" in body:
        return str(body["StreamArn"])
    if "ShardIterator" in body:  # moto's iterators are "<stream arn>|1|<id>"
        return str(body["ShardIterator"]).split("|", 1)[0]
    name = body.get("TableName")
    if name is None:  # BatchGetItem, BatchWriteItem, TransactWriteItems, ...: the first table
        first = next(iter(body.get("RequestItems") or {}), None) or next(
            (next(iter(item.values()))["TableName"] for item in body.get("TransactItems", [])), "*"
        )
        return prefix + first if first != "*" else "*"
    index = body.get("IndexName")
    return prefix + name + (f"/index/{index}" if index and action in ("Query", "Scan") else "")


def start(region: str) -> IamMoto:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    from moto import settings as moto_settings
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.iam.access_control import IAMRequest
    from moto.server import ThreadedMotoServer

    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # read when moto was imported: set it here too
    server = IamMoto(url="", region=region)
    DynamoHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
    DynamoDBStreamsHandler._determine_resource = _dynamodb_resource  # type: ignore[attr-defined]
    check = IAMRequest.check_action_permitted

    def recorded(request: IAMRequest, resource: str) -> None:
        user = getattr(request._access_key, "_owner_user_name", "?")
        try:
            check(request, resource)
        except Exception:
            server.decisions.append(Decision(user, request._action, resource, False))
            raise
        server.decisions.append(Decision(user, request._action, resource, True))

    IAMRequest.check_action_permitted = recorded  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False).start()
    server.url = f"http://127.0.0.1:{port}"
    server.user_add("admin", {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
    return server
