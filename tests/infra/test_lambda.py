"""The write-back Lambda's package as Lambda runs it: ``make lambda``'s zip unpacked into a clean
virtual environment (no package of this one), its handler run on real records read from the
engine's cart stream, applied to Postgres; a redelivery changes nothing; a record that cannot be
applied is reported by its sequence number."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from carts import services
from carts.models import CartCopy
from infra.lambda_build import UNZIPPED_LIMIT, build
from tests.services import database_url
from tests.writeback.conftest import customers, dynamodb_carts, on_sale, postgres_carts, stream_records

STREAMS = "DynamoDB Streams as AWS serves them (moto's iterators break and its records differ)"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.aws_engine(reason=STREAMS)]
__all__ = ["customers", "on_sale"]  # fixtures of the write-back tests, used here too


@pytest.fixture(scope="module")
def lambda_python(tmp_path_factory) -> tuple[Path, Path]:
    """A clean virtual environment's Python, and the unpacked package (what Lambda puts on its path)."""
    where = tmp_path_factory.mktemp("lambda")
    package = build(where / "writeback.zip")
    with zipfile.ZipFile(package) as archive:
        assert sum(info.file_size for info in archive.infolist()) < UNZIPPED_LIMIT
        archive.extractall(where / "task")
    venv.create(where / "venv", with_pip=False)
    return where / "venv" / "bin" / "python", where / "task"


INVOKE = "import json, sys, lambda_entry; print(json.dumps(lambda_entry.handle(json.load(sys.stdin), None)))"


def invoke(lambda_python: tuple[Path, Path], event: dict) -> dict:
    python, task = lambda_python
    environment = {
        "PATH": "/usr/bin:/bin", "HOME": str(task), "PYTHONPATH": str(task),
        "DATABASE_URL": database_url(), "REDIS_URL": os.environ["REDIS_URL"], "SECRET_KEY": "lambda-test",
        "DYNAMODB_ENDPOINT": settings.DYNAMODB_ENDPOINT, "DYNAMODB_TABLE_PREFIX": settings.DYNAMODB_TABLE_PREFIX,
        "AWS_REGION": settings.AWS_REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }
    run = subprocess.run(
        [str(python), "-c", INVOKE],
        input=json.dumps(event), capture_output=True, text=True, cwd=task, env=environment, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_the_clean_environment_has_none_of_this_ones_packages(lambda_python) -> None:
    python, task = lambda_python
    run = subprocess.run([str(python), "-c", "import django"], capture_output=True, env={"PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and Path(sys.executable).parent != python.parent
    assert (task / "django").is_dir() and (task / "lambda_entry.py").is_file()


def test_the_packaged_handler_applies_real_stream_records(fresh_streams, on_sale, customers, lambda_python) -> None:
    ann, bob = customers(2)
    services.cart_line_set(user_id=bob, sku="SKU-0", quantity=2)
    services.cart_line_set(user_id=ann, sku="SKU-3", quantity=5)
    services.cart_line_remove(user_id=bob, sku="SKU-0")
    records = stream_records()
    assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY"]
    assert invoke(lambda_python, {"Records": records}) == {"batchItemFailures": []}
    assert postgres_carts() == dynamodb_carts()
    copied = list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "copied_at"))
    assert invoke(lambda_python, {"Records": records}) == {"batchItemFailures": []}  # redelivered
    assert list(CartCopy.objects.order_by("user_id").values_list("user_id", "version", "lines", "copied_at")) == copied

    stranger = {**records[0], "dynamodb": {**records[0]["dynamodb"], "SequenceNumber": "999"}}
    stranger["dynamodb"]["NewImage"] = {**stranger["dynamodb"]["NewImage"], "user_id": {"S": str(ann + 1000)}}
    answer = invoke(lambda_python, {"Records": [records[1], stranger, records[2]]})
    assert answer == {"batchItemFailures": [{"itemIdentifier": "999"}]}
