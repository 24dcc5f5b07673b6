"""The operator's kit against a real scrape: /metrics passes Prometheus's own linter, and the
dashboard's queries name only metrics the app exports."""

from __future__ import annotations

import subprocess

import pytest
from django.test import Client

from catalog.models import Product
from tests.promtool import promtool

pytestmark = pytest.mark.django_db


def full_scrape(staff_client: Client, product: Product) -> str:
    """A scrape after a read of each kind (a miss, a hit, a 404), so every family shows samples."""
    for path in (f"/api/products/{product.sku}/", f"/api/products/{product.sku}/", "/api/products/NO-SUCH-SKU/"):
        staff_client.get(path)
    response = staff_client.get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def test_promtool_finds_no_problem_in_a_scrape(staff_client: Client, product: Product) -> None:
    text = full_scrape(staff_client, product)
    checked = subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), text
