"""The projector's conditional puts (``hybridsite.dynamodb.put``), sent without botocore's client:
signed over exactly what is sent, refused conditions told apart from failures, failures raised as
``Model.save`` raises them, every call observed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError
from django.conf import settings
from pynamodb.exceptions import PutError

from hybridsite import dynamodb as adapter
from projections.relay import is_transient
from projections.tables import CategoryListingItem, ProductDocument


def document(sku: str, version: int, body: str = "{}") -> ProductDocument:
    return ProductDocument(pk=sku, owner=f"product#{sku}", version=version, body=body)


@pytest.fixture
def calls() -> Iterator[list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def observe(operation: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        seen.append((operation, outcome))

    adapter.call_observer_add(observe)
    yield seen
    adapter.call_observer_remove(observe)


def test_a_put_writes_and_a_refused_condition_is_false(dynamodb, calls):
    assert adapter.put(document("PUT-1", 5), ProductDocument.pk.does_not_exist() | (ProductDocument.version < 5))
    stored = ProductDocument.get("PUT-1", consistent_read=True)
    assert (stored.version, stored.owner, stored.body, stored.deleted) == (5, "product#PUT-1", "{}", False)
    assert not adapter.put(document("PUT-1", 5, body="changed"), ProductDocument.version < 5)
    assert ProductDocument.get("PUT-1", consistent_read=True).body == "{}"
    assert calls == [("PutItem", "ok"), ("PutItem", "ConditionalCheckFailedException")]


def test_a_condition_without_values_is_sent_without_the_empty_map_dynamodb_refuses(dynamodb, calls):
    assert adapter.put(document("PUT-5", 1), ProductDocument.pk.does_not_exist())
    assert not adapter.put(document("PUT-5", 2), ProductDocument.pk.does_not_exist())
    assert ProductDocument.get("PUT-5", consistent_read=True).version == 1
    assert calls == [("PutItem", "ok"), ("PutItem", "ConditionalCheckFailedException")]


def test_dynamodb_refusing_the_request_raises_put_error_with_its_code(dynamodb, calls):
    with pytest.raises(PutError) as refused:
        adapter.put(document("PUT-2", 1, body="x" * 410_000), ProductDocument.version < 1)
    assert isinstance(refused.value.cause, ClientError)
    assert adapter.error_code(refused.value) == "ValidationException"
    assert "size" in str(refused.value) and ProductDocument.Meta.table_name in str(refused.value)
    assert not is_transient(refused.value)
    assert calls == [("PutItem", "ValidationException")]


def test_an_unreachable_dynamodb_raises_a_transient_put_error(dynamodb_proxy, calls):
    dynamodb_proxy.down()
    with pytest.raises(PutError) as failed:
        adapter.put(document("PUT-3", 1), ProductDocument.pk.does_not_exist())
    assert isinstance(failed.value.cause, EndpointConnectionError)
    assert is_transient(failed.value)
    assert calls == [("PutItem", "EndpointConnectionError")]


class Recorder(BaseHTTPRequestHandler):
    """Keeps what it receives; answers with the next of ``answers`` (status, body), then as
    DynamoDB answers a put that was written."""

    received: list[tuple[str, str, dict[str, str], bytes]] = []
    answers: list[tuple[int, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Recorder.received.append((self.command, self.path, dict(self.headers.items()), body))
        status, answer = Recorder.answers.pop(0) if Recorder.answers else (200, b"{}")
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder(monkeypatch) -> Iterator[str]:
    """ProductDocument's endpoint is a server that records what it receives."""
    Recorder.received, Recorder.answers = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(ProductDocument.Meta, "host", f"http://127.0.0.1:{server.server_port}")
    adapter.reset_connection(ProductDocument)
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    adapter.reset_connection(ProductDocument)


def received_signature_is_valid(credentials: Credentials) -> dict[str, str]:
    """The one request received, its signature recomputed with botocore's signer and
    ``credentials`` from the request as the server received it; returns its headers."""
    [(method, path, headers, body)] = Recorder.received
    authorization = headers["Authorization"]
    credential = authorization.split("Credential=", 1)[1].split(",", 1)[0]
    key_id, day, region, service, _ = credential.split("/")
    assert (key_id, region, service) == (credentials.access_key, settings.AWS_REGION, "dynamodb")
    signed = authorization.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    assert {"host", "x-amz-date", "x-amz-target", "content-type"} <= set(signed)
    assert headers["X-Amz-Date"].startswith(day) and datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    request = AWSRequest(method=method, url=f"http://{headers['Host']}{path}", data=body, headers={
        name: headers[next(h for h in headers if h.lower() == name)] for name in signed if name != "host"
    })
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(credentials, service, region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert authorization.endswith(f"Signature={expected}")
    return {name.lower(): value for name, value in headers.items()} | {"signed": ";".join(signed)}


def test_a_put_is_signed_over_exactly_what_it_sends(recorder):
    """Neither engine here checks signatures, AWS does: the signature is recomputed, with botocore's
    signer and the client's credentials, from the request as the server received it."""
    assert adapter.put(document("PUT-4", 3), ProductDocument.version < 3)
    [(method, path, headers, body)] = Recorder.received
    assert (method, path, headers["Host"]) == ("POST", "/", recorder)
    assert headers["X-Amz-Target"] == "DynamoDB_20120810.PutItem"
    sent = orjson.loads(body)
    assert sent["TableName"] == ProductDocument.Meta.table_name
    assert sent["Item"]["pk"] == {"S": "PUT-4"} and sent["Item"]["version"] == {"N": "3"}
    [(placeholder, name)] = sent["ExpressionAttributeNames"].items()
    [(value_name, value)] = sent["ExpressionAttributeValues"].items()
    assert (sent["ConditionExpression"], name, value) == (f"{placeholder} < {value_name}", "version", {"N": "3"})
    credentials = adapter.client(ProductDocument)._request_signer._credentials.get_frozen_credentials()
    assert "x-amz-security-token" not in received_signature_is_valid(credentials)


def test_temporary_credentials_send_and_sign_their_session_token(recorder, monkeypatch):
    for name, value in {"aws_access_key_id": "ASIATEMPORARY", "aws_secret_access_key": "s3cret",
                        "aws_session_token": "the-session-token"}.items():
        monkeypatch.setattr(ProductDocument.Meta, name, value, raising=False)
    adapter.reset_connection(ProductDocument)
    assert adapter.put(document("PUT-6", 1), ProductDocument.version < 1)
    headers = received_signature_is_valid(Credentials("ASIATEMPORARY", "s3cret", "the-session-token"))
    assert headers["x-amz-security-token"] == "the-session-token"
    assert "x-amz-security-token" in headers["signed"].split(";")


def test_throttling_is_tried_once_more_then_raised_as_transient(recorder, calls):
    throttled = (400, orjson.dumps({
        "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded",
    }))
    Recorder.answers = [throttled]
    assert adapter.put(document("PUT-7", 1), ProductDocument.version < 1)
    assert len(Recorder.received) == 2
    Recorder.answers = [throttled, (503, b"<html>Service Unavailable</html>")]
    with pytest.raises(PutError) as failed:
        adapter.put(document("PUT-7", 2), ProductDocument.version < 2)
    assert adapter.error_code(failed.value) == "InternalFailure" and is_transient(failed.value)
    assert calls == [("PutItem", "ThrottlingException"), ("PutItem", "ok"),
                     ("PutItem", "ThrottlingException"), ("PutItem", "InternalFailure")]


def test_threads_that_first_use_a_table_at_once_share_one_client(dynamodb):
    """The projector's writer threads all start with a table's first put."""
    adapter.reset_connection(ProductDocument)
    everyone = threading.Barrier(16)

    def first_use(_: int) -> int:
        everyone.wait()
        return id(adapter.client(ProductDocument))

    with ThreadPoolExecutor(16) as pool:
        assert len(set(pool.map(first_use, range(16)))) == 1


def test_every_new_client_reads_botocores_data_files_through_one_loader(dynamodb):
    """PynamoDB makes a botocore session for each connection that builds a client; each parsed
    botocore's endpoint rules and service model again (190 ms of CPU per client)."""
    models = (ProductDocument, CategoryListingItem)
    for model in models:
        adapter.reset_connection(model)
        adapter.client(model)
    sessions = [adapter.connection(model).session for model in models]
    assert sessions[0] is not sessions[1]
    assert sessions[0].get_component("data_loader") is sessions[1].get_component("data_loader")

