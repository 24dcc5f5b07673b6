"""Stock taken out for an order: across warehouses, the fullest first, all or nothing."""

from __future__ import annotations

import pytest

from catalog.models import StockLevel
from catalog.services import Allocation, InsufficientStock, stock_allocate
from tests.factories import ProductFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def quantities(product) -> dict[str, int]:
    return dict(StockLevel.objects.filter(product=product).values_list("warehouse__code", "quantity"))


def test_the_fullest_warehouse_ships_first_and_the_rest_from_the_next():
    ams, ber, cph = WarehouseFactory(code="AMS"), WarehouseFactory(code="BER"), WarehouseFactory(code="CPH")
    kettle, mug = ProductFactory(), ProductFactory()
    for warehouse, count in ((ams, 2), (ber, 5), (cph, 0)):
        StockLevelFactory(product=kettle, warehouse=warehouse, quantity=count)
    StockLevelFactory(product=mug, warehouse=ams, quantity=3)

    allocations = stock_allocate(quantities={kettle: 6, mug: 3})

    assert sorted(allocations, key=lambda a: (a.product_id, a.warehouse_id)) == [
        Allocation(kettle.pk, ams.pk, 1), Allocation(kettle.pk, ber.pk, 5), Allocation(mug.pk, ams.pk, 3),
    ]
    assert quantities(kettle) == {"AMS": 1, "BER": 0, "CPH": 0} and quantities(mug) == {"AMS": 0}


def test_a_shortage_of_one_product_takes_nothing_of_any():
    ams = WarehouseFactory(code="AMS")
    kettle, mug, pan = ProductFactory(sku="KETTLE"), ProductFactory(sku="MUG"), ProductFactory(sku="PAN")
    StockLevelFactory(product=kettle, warehouse=ams, quantity=5)
    StockLevelFactory(product=mug, warehouse=ams, quantity=1)

    with pytest.raises(InsufficientStock) as refused:
        stock_allocate(quantities={kettle: 5, mug: 2, pan: 1})

    assert refused.value.available == {"MUG": 1, "PAN": 0}
    assert quantities(kettle) == {"AMS": 5} and quantities(mug) == {"AMS": 1}
