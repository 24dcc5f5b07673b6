"""Least privilege, proven: each process's real DynamoDB and Streams calls, made through the app's
own code, signed with the keys of a moto IAM user holding exactly that role's synthesized policy
(the test run's table prefix in place of the deployment's): every call is allowed, and a call the
process must not make is denied. moto evaluates actions; the harness gives it the resource of each
call (see ``iam_moto``), which it cannot find itself.

What the processes call is recorded by the server, so a call that the app swallows (the read path
falls back to Postgres, a cart is cleared "best effort") cannot hide a denial.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from pynamodb.exceptions import DeleteError, GetError, PutError, ScanError, TableError

from carts import services as carts
from carts.models import CartCopy
from carts.tables import Cart
from catalog import services as catalog
from catalog.models import Category, Product, Warehouse
from drafts import services as drafts
from hybridsite import health, heartbeat
from hybridsite.dynamodb import all_tables, client, get_item, stream_arn, streams_client, tables_ensure
from infra import policies
from infra.tables import base_name
from projections import drift, follow, relay
from projections.projector import project, put_document
from projections.registry import category_tree_document
from projections.tables import ProductDocument
from writeback.consumer import Consumer

from . import iam_moto
from .conftest import Synth

pytestmark = pytest.mark.django_db(transaction=True)

DEPLOYMENT_PREFIX = "hybridsite-"


@pytest.fixture(scope="module")
def iam(synth: Synth) -> iam_moto.IamMoto:
    """The server, the app's tables made by an administrator, and one user per role holding the
    role's synthesized policy."""
    server = iam_moto.start(settings.AWS_REGION)
    with server.signed_as("admin"):
        tables_ensure()
        streams = {base_name(model): stream_arn(model) for model in all_tables()}
    values = {
        "AWS::Partition": "aws", "AWS::Region": settings.AWS_REGION, "AWS::AccountId": iam_moto.ACCOUNT,
        **{f"table:{name}.StreamArn": arn for name, arn in streams.items() if arn},
        "queue:writeback-failures.Arn": f"arn:aws:sqs:{settings.AWS_REGION}:{iam_moto.ACCOUNT}:writeback-failures",
        **{f"secret:{s}": f"arn:aws:secretsmanager:{settings.AWS_REGION}:{iam_moto.ACCOUNT}:secret:{s}"
           for s in synth.stack.secrets},
    }
    for role, document in policies.role_policies(synth.stack, synth.template).items():
        statements = policies.concrete({"Statement": document["Statement"]}, values)["Statement"]
        for statement in statements:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            statement["Resource"] = [
                r.replace(f":table/{DEPLOYMENT_PREFIX}", f":table/{settings.DYNAMODB_TABLE_PREFIX}") for r in resources
            ]
        server.user_add(role, {"Statement": statements or [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    return server


@pytest.fixture
def catalog_on_sale(redis_clean) -> tuple[Category, list[str]]:
    """Three products on sale in Postgres, named anew for each test (moto keeps its items across
    the module's tests, Postgres does not)."""
    run = uuid.uuid4().hex[:8]
    category = Category.objects.create(slug=f"tools-{run}", name="Tools")
    warehouse = Warehouse.objects.create(code="AMS1", name="Amsterdam")
    skus = []
    for n in range(3):
        product = catalog.product_create(sku=f"SKU-{run}-{n}", name=f"Tool {n}", category=category)
        catalog.price_set(product=product, currency="EUR", amount=Decimal("9.99"))
        catalog.stock_adjust(product=product, warehouse=warehouse, delta=100)
        skus.append(product.sku)
    return category, skus


def _allowed_only(iam: iam_moto.IamMoto, role: str, needs: set[str]) -> None:
    assert iam.denied(role) == []
    assert needs <= iam.allowed_actions(role), f"{role} made none of {needs - iam.allowed_actions(role)}"


def _denied(iam: iam_moto.IamMoto, role: str, action: str) -> None:
    assert [d.action for d in iam.denied(role)] == [action]
    iam.decisions.clear()


def test_web(iam, catalog_on_sale) -> None:
    category, skus = catalog_on_sale
    customer = get_user_model().objects.create_user("customer", password="x")
    editor = get_user_model().objects.create_user("editor", password="x", is_staff=True)
    iam.decisions.clear()
    with iam.signed_as("web"):
        web = Client()
        for sku in skus:  # misses: read, then projected
            assert web.get(f"/api/products/{sku}/").status_code == 200
        assert web.get(f"/api/categories/{category.slug}/products/").status_code == 200
        assert web.get("/api/categories/").status_code == 200
        carts.cart_line_set(user_id=customer.pk, sku=skus[1], quantity=2)
        web.force_login(customer)
        ordered = web.post("/api/orders/", {"note": "ring"}, content_type="application/json",
                           headers={"Idempotency-Key": str(uuid.uuid4())})
        assert ordered.status_code == 201, ordered.content
        drafts.draft_save(sku=skus[2], user_id=editor.pk, changes={"name": "Better tool"})
        drafts.draft_publish(sku=skus[2], user_id=editor.pk)
        project("product", Product.objects.get(sku=skus[0]).pk, repair=True)  # the admin's drift repair
        health.CHECKS["dynamodb"]()
        assert heartbeat.regions_state()  # the health check's details: the replication lag
    _allowed_only(iam, "web", {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:DeleteItem", "dynamodb:ListTables",
    })
    with iam.signed_as("web"), pytest.raises(ScanError):
        next(iter(ProductDocument.scan()))
    _denied(iam, "web", "dynamodb:Scan")
    with iam.signed_as("web"), pytest.raises(DeleteError):
        ProductDocument(pk=skus[0]).delete()
    _denied(iam, "web", "dynamodb:DeleteItem")


@pytest.mark.parametrize("role", ["worker", "listener"])
def test_the_relay(iam, catalog_on_sale, role: str) -> None:
    """The worker's relay task and the listener's drain of a stalled relay project the outbox; the
    worker also reads the tables back (drift watch, projections_check, projections_shapes)."""
    iam.decisions.clear()
    with iam.signed_as(role):
        assert relay.drain().rows > 0
        if role == "worker":
            # moto keeps the earlier tests' tree pieces, under content keys this test's Postgres
            # (its owner manifest) never had: drift repair finds them through the owner index.
            project("category", 0, repair=True)
            assert drift.check(sample=2).clean
            # the whole-catalog check Scans every table (moto keeps the other tests' documents,
            # which this test's Postgres never had: "extra" here)
            assert drift.check().checked >= len(catalog_on_sale[1])
            call_command("projections_shapes", stdout=open("/dev/null", "w"))
            heartbeat.heartbeat_write()  # beat's task, which the worker runs
    reads_back = {"dynamodb:Scan", "dynamodb:Query", "dynamodb:BatchGetItem"} if role == "worker" else set()
    _allowed_only(iam, role, {"dynamodb:PutItem"} | reads_back)
    with iam.signed_as(role), pytest.raises((PutError, GetError)):
        carts.cart_line_set(user_id=1, sku=catalog_on_sale[1][0], quantity=1)  # a process that never writes a cart
    _denied(iam, role, "dynamodb:GetItem")


def _cart_of_a_new_customer(iam: iam_moto.IamMoto, sku: str) -> Any:
    """A customer whose cart holds ``sku``, written (and the product projected) by the administrator."""
    customer = get_user_model().objects.create_user("customer", password="x")
    with iam.signed_as("admin"):
        project("product", Product.objects.get(sku=sku).pk)
        carts.cart_line_set(user_id=customer.pk, sku=sku, quantity=2)
    iam.decisions.clear()
    return customer


def test_the_streams_consumer(iam, catalog_on_sale) -> None:
    sku = catalog_on_sale[1][0]
    customer = _cart_of_a_new_customer(iam, sku)
    with iam.signed_as("consumer"):
        consumer = Consumer()
        for _ in range(50):  # a bound, not a measurement
            consumer.step()
            if CartCopy.objects.filter(user_id=customer.pk).exists():
                break
        items = list(Cart.scan(consistent_read=True))  # the resync of a trimmed shard
    mine = [item for item in items if item.user_id == str(customer.pk)]  # (earlier tests' carts stay in moto)
    assert CartCopy.objects.get(user_id=customer.pk).version == mine[0].version
    _allowed_only(iam, "consumer", {
        "dynamodb:DescribeTable", "dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords",
        "dynamodb:Scan",
    })
    with iam.signed_as("consumer"), pytest.raises(PutError):
        put_document(ProductDocument, {"pk": sku}, owner="product:1", version=99, body=b"{}",
                     committed_at=None, projected_at=datetime.now(UTC))
    _denied(iam, "consumer", "dynamodb:PutItem")


def test_the_write_back_lambda(iam, catalog_on_sale) -> None:
    """What Lambda's stream poller does with the function's role: list, describe, read."""
    _cart_of_a_new_customer(iam, catalog_on_sale[1][0])
    with iam.signed_as("admin"):
        arn = stream_arn(Cart)
    key_id, secret = iam.keys["writeback-lambda"]
    keys = {"aws_access_key_id": key_id, "aws_secret_access_key": secret, "region_name": settings.AWS_REGION}
    poller = boto3.client("dynamodbstreams", endpoint_url=iam.url, **keys)
    assert arn in [s["StreamArn"] for s in poller.list_streams(TableName=Cart.Meta.table_name)["Streams"]]
    shard = poller.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = poller.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    assert poller.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    _allowed_only(iam, "writeback-lambda", {
        "dynamodb:ListStreams", "dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords",
    })
    table = boto3.client("dynamodb", endpoint_url=iam.url, **keys)
    with pytest.raises(ClientError, match="AccessDenied"):
        table.put_item(TableName=Cart.Meta.table_name, Item={"user_id": {"S": "1"}})
    _denied(iam, "writeback-lambda", "dynamodb:PutItem")


def test_the_one_off_migrate_task(iam) -> None:
    iam.decisions.clear()
    with iam.signed_as("migrate"):
        assert set(tables_ensure().values()) == {"ok"}  # the stack's tables are the code's: nothing to do
    _allowed_only(iam, "migrate", {"dynamodb:DescribeTable", "dynamodb:DescribeTimeToLive"})
    with iam.signed_as("migrate"), pytest.raises(TableError):
        ProductDocument.delete_table()
    _denied(iam, "migrate", "dynamodb:DeleteTable")


def test_the_cache_follower(iam, catalog_on_sale) -> None:
    """cache_follow's discovery, leases (in Redis) and reads of every followed stream, its lag
    check, and the category tree read back whole."""
    with iam.signed_as("admin"):
        project("product", Product.objects.get(sku=catalog_on_sale[1][0]).pk)
        project("category", 0)
        heartbeat.heartbeat_write()
    iam.decisions.clear()
    with iam.signed_as("cache-follower"):
        follower = follow.Follower()
        for _ in range(20):  # a bound, not a measurement
            follower.step()
        assert follower.streams.keys() == follow.followed_tables().keys()
        assert category_tree_document().stored() is not None
    _allowed_only(iam, "cache-follower", {
        "dynamodb:DescribeTable", "dynamodb:DescribeStream", "dynamodb:GetShardIterator", "dynamodb:GetRecords",
        "dynamodb:GetItem", "dynamodb:BatchGetItem",
    })
    with iam.signed_as("admin"):
        carts_stream = stream_arn(Cart)
    with iam.signed_as("cache-follower"), pytest.raises(ClientError, match="AccessDenied"):
        streams_client().describe_stream(StreamArn=carts_stream)
    _denied(iam, "cache-follower", "dynamodb:DescribeStream")


def test_beat_touches_no_table(iam) -> None:
    iam.decisions.clear()
    with iam.signed_as("beat"), pytest.raises(GetError):
        get_item(ProductDocument, {"pk": "SKU-0"})
    _denied(iam, "beat", "dynamodb:GetItem")
    assert client  # the adapter's client is what every call above went through
