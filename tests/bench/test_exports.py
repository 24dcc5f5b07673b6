"""bench/exports.py measures what it says: the export streams every order line it inserted (and the
header), and it rolls back what it inserted. (Its rates and memory are the bench's to report, not
asserted here.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from bench.exports import LINES_PER_ORDER, export
from catalog import services
from orders.models import Order, OrderLine

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_export_streams_every_inserted_line_and_leaves_nothing_behind(tools):
    for n in range(LINES_PER_ORDER):  # each order has a line of each
        services.product_create(sku=f"SKU-{n}", name=f"Product {n}", category=tools)

    result = export(rows=100)

    print(f"\nexport: {result}")
    assert result["rows"] == 100
    assert result["rss_before_mb"] > 0 and result["rss_peak_mb"] >= result["rss_before_mb"]
    assert not Order.objects.exists() and not OrderLine.objects.exists()
    assert not get_user_model().objects.filter(username__startswith="bench-export-").exists()
