"""Cart reads and writes against the DynamoDB table: versions, conditions, limits."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from carts import services
from carts.selectors import cart_get
from projections.projector import project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def on_sale(product):
    """SKU-1 projected: the hot path knows it."""
    project("product", product.pk)
    return product


def test_no_cart_reads_as_version_zero(dynamodb):
    assert cart_get(user_id=7).version == 0
    assert cart_get(user_id=7).lines == {}


def test_each_write_counts_the_version_up_by_one(on_sale):
    first = services.cart_line_set(user_id=7, sku="SKU-1", quantity=2)
    second = services.cart_line_set(user_id=7, sku="SKU-1", quantity=3)
    assert second.version == first.version + 1
    assert cart_get(user_id=7).lines == {"SKU-1": 3}
    assert cart_get(user_id=7).version == second.version


def test_a_write_at_an_old_version_is_refused_and_changes_nothing(on_sale):
    first = services.cart_line_set(user_id=7, sku="SKU-1", quantity=2)
    services.cart_line_set(user_id=7, sku="SKU-1", quantity=5, expected=first.version)
    with pytest.raises(services.CartVersionMismatch) as refused:
        services.cart_line_set(user_id=7, sku="SKU-1", quantity=9, expected=first.version)
    assert refused.value.current.version == first.version + 1
    assert cart_get(user_id=7).lines == {"SKU-1": 5}


def test_clear_at_the_ordered_version_empties_the_cart_and_keeps_counting(on_sale):
    cart = services.cart_line_set(user_id=7, sku="SKU-1", quantity=2)
    cleared = services.cart_clear(user_id=7, version=cart.version)
    assert cleared.lines == {} and cleared.version == cart.version + 1
    with pytest.raises(services.CartVersionMismatch):
        services.cart_clear(user_id=7, version=cart.version)
    assert cart_get(user_id=7).version == cart.version + 1


def test_clear_without_a_cart_creates_none(dynamodb):
    assert services.cart_clear(user_id=7).version == 0
    assert cart_get(user_id=7).version == 0
    with pytest.raises(services.CartVersionMismatch):
        services.cart_clear(user_id=7, version=3)


def test_unknown_sku_and_limits_are_refused(on_sale, settings):
    settings.CART_MAX_LINES = 1
    with pytest.raises(services.ProductNotOnSale):
        services.cart_line_set(user_id=7, sku="NOPE", quantity=1)
    for quantity in (0, -1, settings.CART_MAX_QUANTITY + 1):
        with pytest.raises(ValidationError):
            services.cart_line_set(user_id=7, sku="SKU-1", quantity=quantity)
    assert cart_get(user_id=7).version == 0
