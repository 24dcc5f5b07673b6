"""bench/replication.py times what it says: a product's new version noticed when it arrives in the
replica region's DynamoDB, by replication from the home region's, and not before. (Its times are
the bench's to report, not asserted here.)"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.conf import settings

from bench.replication import ArrivalPoller, document_versions
from catalog import services
from devtools.replication import fill
from hybridsite.dynamodb import all_tables
from projections.projector import project
from projections.tables import ProductDocument
from tests.regions.conftest import HOME, REPLICA

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.aws_engine(reason="the stand-in replicates between two DynamoDB Local processes (Java)"),
]


def test_a_new_version_is_noticed_once_it_is_replicated(regions, product) -> None:
    stand_in = regions.replication([ProductDocument])
    first = project("product", product.pk).version
    stand_in.settle()
    before = document_versions(regions.home_endpoint, HOME, [product.sku])
    assert before == document_versions(regions.replica_endpoint, REPLICA, [product.sku]) == {product.sku: first}

    stand_in.pause()
    poller = ArrivalPoller(regions.replica_endpoint, REPLICA, [product.sku], before)
    poller.start()
    services.price_set(product=product, currency="EUR", amount=Decimal("1.23"))
    written = project("product", product.pk).version
    assert written > first
    stand_in.settle()  # paused: the change waits; the poller has not seen it
    assert poller.seen == {}
    stand_in.resume()
    poller.wait(30)

    assert set(poller.seen) == {product.sku}
    assert document_versions(regions.replica_endpoint, REPLICA, [product.sku]) == {product.sku: written}
    assert poller.rounds


def test_a_document_filled_into_the_replica_takes_the_next_replicated_version(regions, product) -> None:
    """As the bench and `make run REGIONS=2` start: the replica filled from the home region, then the
    stand-in started. The projector's write had no stamp at home, so its copy had none either, and
    the next change of it was dropped as older (a bench run saw none of its 400 writes arrive)."""
    first = project("product", product.pk).version
    tables = [model.Meta.table_name for model in all_tables()]
    fill(regions.home_endpoint, regions.replica_endpoint, prefix=settings.DYNAMODB_TABLE_PREFIX, only=tables)
    assert document_versions(regions.replica_endpoint, REPLICA, [product.sku]) == {product.sku: first}
    stand_in = regions.replication()
    services.price_set(product=product, currency="EUR", amount=Decimal("2.34"))
    written = project("product", product.pk).version
    stand_in.settle()
    assert document_versions(regions.replica_endpoint, REPLICA, [product.sku]) == {product.sku: written}
