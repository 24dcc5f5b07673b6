"""bench/scale.py reports the write units DynamoDB answered for a change of each kind, and reads the
results kept by earlier runs, which have no such figures. (Its times are the bench's to report.)"""

from __future__ import annotations

import json

import pytest

from bench import report, scale
from catalog import services

pytestmark = pytest.mark.django_db(transaction=True)


def test_write_units_are_reported_per_product_listing_item_and_tree_change(tools, dynamodb, redis_clean):
    for n in range(6):
        services.product_create(sku=f"SCALE-{n}", name=f"Product {n}", category=tools)
    scale.projection_units(sample=5)  # everything projected once (a first write also makes index entries)

    units = scale.projection_units(sample=5)

    assert units["products"] == 5
    assert set(units["product_projection"]) == {"products", "category-listing", "history"}
    assert units["listing_item"] == units["product_projection"]["category-listing"] >= 1
    assert units["product_projection_total"] == sum(units["product_projection"].values())
    assert units["tree_change"] > 0 and units["tree_rewrite"] > 0  # a tree this small fits in one piece

    kept = json.loads((report.RESULTS / "scale-10000.json").read_text())
    kept.pop("write_units", None)  # as a run from before these figures
    table = scale.markdown([kept, {**kept, "n": 20_000, "write_units": units}])
    assert "| write units per listing item (reported) | n/a | " in table
