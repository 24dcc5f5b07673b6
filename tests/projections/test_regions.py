"""Projections are written in the home region only: in a replica region the projection writers are
refused at start with a clear message, and the projector refuses every version-conditioned write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from projections.projector import ReplicaRegionWrite, project
from projections.tables import ProductDocument
from tests.services import BIN, database_url

BASE_DIR = Path(__file__).resolve().parents[2]
HOME, REPLICA = "eu-west-1", "us-east-1"


@pytest.fixture
def replica(settings) -> None:
    """This process in the replica region of a two-region site."""
    settings.HYBRIDSITE_REGION = REPLICA
    settings.HOME_REGION = HOME
    settings.REGIONS = [HOME, REPLICA]


def replica_env() -> dict[str, str]:
    """A process of the replica region, on the test database and services; the home region's
    DynamoDB is named as the settings ask (the same endpoint here: nothing is written to it)."""
    endpoint = django_settings.DYNAMODB_ENDPOINT
    home_endpoint = {"DYNAMODB_ENDPOINT_EU_WEST_1": endpoint} if endpoint else {}
    return {
        **os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
        "AWS_REGION": "", "HYBRIDSITE_REGION": REPLICA, "HOME_REGION": HOME, **home_endpoint,
    }


@pytest.mark.django_db(transaction=True)
def test_a_replica_refuses_every_projection_write_and_writes_nothing(product, replica, settings) -> None:
    with pytest.raises(ReplicaRegionWrite, match=(
        f"refused a version-conditioned write into {ProductDocument.Meta.table_name} in replica region {REPLICA}: "
        f"projections are written in the home region \\({HOME}\\) only"
    )):
        project("product", product.id)
    assert ProductDocument.count() == 0

    settings.HYBRIDSITE_REGION = HOME  # the control: the same projection in the home region
    assert project("product", product.id).written > 0
    assert ProductDocument.get("SKU-1").version == product.version


@pytest.mark.django_db(transaction=True)
def test_a_miss_in_a_replica_answers_from_postgres_without_projecting(client, product, replica, redis_clean) -> None:
    response = client.get("/api/products/SKU-1/")
    assert response.status_code == 200
    assert response["X-Served-From"] == "postgres"
    assert response["ETag"] == f'"{product.version}"'
    assert ProductDocument.count() == 0


@pytest.mark.parametrize("command", [
    ["outbox_listen"], ["projections_backfill"], ["projections_setup", "--backfill-created"],
    ["projections_check", "--repair"],
])
@pytest.mark.django_db
def test_projection_writers_are_refused_at_start_in_a_replica(command: list[str], replica, dynamodb) -> None:
    process = " ".join(command)
    with pytest.raises(SystemCheckError) as refused:
        call_command(*command)
    assert str(refused.value) == (
        f"?: (projections.E001) {process} writes projections, and this process is in replica region {REPLICA}\n"
        f"\tHINT: projections are written in the home region only: run {process} with HYBRIDSITE_REGION={HOME};"
        " the replica's tables receive them by replication"
    )


@pytest.mark.django_db
def test_a_replica_may_create_its_tables(replica, dynamodb_tables, capsys) -> None:
    """Creating a replica's tables writes no projection (on AWS the global table adds its replicas)."""
    call_command("projections_setup")
    assert f"{ProductDocument.Meta.table_name}: ok" in capsys.readouterr().out


@pytest.mark.parametrize("command", [
    [sys.executable, str(BASE_DIR / "manage.py"), "outbox_listen"],
    [str(BIN / "celery"), "-A", "hybridsite", "worker", "--pool", "solo", "--without-gossip", "--without-mingle"],
], ids=["outbox_listen", "celery worker"])
@pytest.mark.django_db
def test_a_replica_s_relay_process_exits_at_start_saying_why(command: list[str], broker) -> None:
    result = subprocess.run(
        command, cwd=BASE_DIR, env={**replica_env(), "CELERY_BROKER_URL": broker.url},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    process = "outbox_listen" if "outbox_listen" in command else "celery worker"
    assert (
        f"(projections.E001) {process} writes projections, and this process is in replica region {REPLICA}"
        in result.stderr
    ), result.stderr
    assert f"HINT: projections are written in the home region only: run {process} with HYBRIDSITE_REGION={HOME}" \
        in result.stderr
