"""The pure builders: what a document holds is decided here, so the reader, the drift check and
the projector agree on it without touching Postgres or DynamoDB."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from catalog import selectors
from catalog.models import Category, Product
from projections import documents
from projections.registry import (
    GONE,
    Snapshot,
    build_listing_item,
    build_product_document,
    load_products,
)
from tests.factories import (
    CategoryFactory,
    PriceFactory,
    ProductFactory,
    StockLevelFactory,
    WarehouseFactory,
)

pytestmark = pytest.mark.django_db

PROJECTED_AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


@pytest.fixture
def hammer() -> Product:
    """A product two category levels deep, priced in two currencies, stocked in two warehouses."""
    tools = CategoryFactory(slug="tools", name="Tools")
    hammers = CategoryFactory(slug="hammers", name="Hammers", parent=tools)
    product = ProductFactory(
        sku="HAM-1", name="Claw hammer", description="Forged steel.", category=hammers,
        attributes={"weight_g": 450, "colors": ["red", "black"]},
    )
    PriceFactory(product=product, currency="USD", amount=Decimal("12.5"))
    PriceFactory(product=product, currency="EUR", amount=Decimal("11"))
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="BER"), quantity=3)
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="AMS"), quantity=4)
    return selectors.product_get_aggregate(product_id=product.pk)


def _document(product: Product) -> dict:
    return documents.product_document(product, selectors.category_path(category=product.category), PROJECTED_AT)


def test_product_document_fields(hammer: Product) -> None:
    assert hammer.version > 0
    assert _document(hammer) == {
        "sku": "HAM-1",
        "name": "Claw hammer",
        "description": "Forged steel.",
        "attributes": {"weight_g": 450, "colors": ["red", "black"]},
        "category": {
            "slug": "hammers",
            "name": "Hammers",
            "path": [{"slug": "tools", "name": "Tools"}, {"slug": "hammers", "name": "Hammers"}],
        },
        "prices": {"EUR": "11.00", "USD": "12.50"},
        "in_stock": True,
        "stock_band": "medium",
        "version": hammer.version,
        "source_committed_at": hammer.updated_at.isoformat(),
        "projected_at": "2024-05-01T12:30:00+00:00",
    }


def test_product_without_prices_or_stock_is_out_of_stock() -> None:
    product = ProductFactory(sku="BARE-1", category=CategoryFactory(slug="bare", name="Bare"))
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="ZERO"), quantity=0)
    document = _document(selectors.product_get_aggregate(product_id=product.pk))
    assert document["prices"] == {}
    assert document["in_stock"] is False
    assert document["stock_band"] == "none"
    assert document["category"]["path"] == [{"slug": "bare", "name": "Bare"}]


def test_listing_item_is_the_summary(hammer: Product) -> None:
    assert documents.listing_item(hammer) == {
        "sku": "HAM-1",
        "name": "Claw hammer",
        "prices": {"EUR": "11.00", "USD": "12.50"},
        "in_stock": True,
        "version": hammer.version,
    }


def test_products_loaded_together_are_loaded_as_one_at_a_time(hammer: Product) -> None:
    """A batch reads its products and every category above them in a few queries; each snapshot
    holds what a read of its product alone holds, and a product that is gone is gone."""
    mallets = CategoryFactory(slug="mallets", name="Mallets", parent=hammer.category)
    mallet = ProductFactory(sku="MAL-1", name="Mallet", category=mallets)
    PriceFactory(product=mallet, currency="EUR", amount=Decimal("7"))
    top = ProductFactory(sku="TOP-1", name="Toolbox", category=hammer.category.parent)
    missing = max(hammer.pk, mallet.pk, top.pk) + 1

    snapshots = load_products([hammer.pk, mallet.pk, top.pk, missing])

    assert snapshots[missing] == GONE
    for product in (hammer, mallet, top):
        alone = selectors.product_get_aggregate(product_id=product.pk)
        state = snapshots[product.pk].state
        assert state.category_path == selectors.category_path(category=alone.category)
        assert build_product_document(snapshots[product.pk], PROJECTED_AT)[0].body == _document(alone)
    assert [c.slug for c in snapshots[mallet.pk].state.category_path] == ["tools", "hammers", "mallets"]


def test_registry_keys_and_inactive_products(hammer: Product) -> None:
    """Inactive products are absent from the public views, so the projector tombstones them."""
    [snapshot] = load_products([hammer.pk]).values()
    [document] = build_product_document(snapshot, PROJECTED_AT)
    [listing] = build_listing_item(snapshot, PROJECTED_AT)
    assert document.key == {"pk": "HAM-1"}
    assert document.body == _document(hammer)
    assert listing.key == {"pk": "CATEGORY#hammers", "sk": "HAM-1"}

    Product.objects.filter(pk=hammer.pk).update(is_active=False)
    [inactive] = load_products([hammer.pk]).values()
    assert build_product_document(inactive, PROJECTED_AT) == []
    assert build_listing_item(inactive, PROJECTED_AT) == []
    gone = Snapshot(state=None, version=0, committed_at=None)
    assert build_product_document(gone, PROJECTED_AT) == []


def test_category_tree_nests_children_sorted_by_name() -> None:
    categories = [
        Category(id=1, slug="tools", name="Tools", parent_id=None),
        Category(id=2, slug="saws", name="Saws", parent_id=1),
        Category(id=3, slug="hammers", name="Hammers", parent_id=1),
        Category(id=4, slug="claw", name="Claw hammers", parent_id=3),
        Category(id=5, slug="garden", name="Garden", parent_id=None),
    ]
    [(index, piece)] = documents.category_tree_pieces(categories)
    assert index == 0
    head = documents.category_tree_head(["TREE#0#x"], 42, PROJECTED_AT)
    assert head == {"piece_keys": ["TREE#0#x"], "version": 42, "projected_at": "2024-05-01T12:30:00+00:00"}
    assert documents.category_tree_assembled(head, [piece]) == {
        "categories": [
            {"slug": "garden", "name": "Garden", "children": []},
            {"slug": "tools", "name": "Tools", "children": [
                {"slug": "hammers", "name": "Hammers", "children": [
                    {"slug": "claw", "name": "Claw hammers", "children": []},
                ]},
                {"slug": "saws", "name": "Saws", "children": []},
            ]},
        ],
        "version": 42,
        "projected_at": "2024-05-01T12:30:00+00:00",
    }


def test_category_tree_pieces_are_cut_by_id_and_assemble_to_the_same_tree(monkeypatch) -> None:
    categories = [Category(id=1, slug="root", name="Root", parent_id=None)] + [
        Category(id=n, slug=f"c{n}", name=f"Category {n:03d}", parent_id=1 + (n % 3 == 0)) for n in range(2, 200)
    ]
    head = documents.category_tree_head([], 7, PROJECTED_AT)

    def whole(pieces: list[tuple[int, dict]]) -> dict:
        return documents.category_tree_assembled(head, [piece for _, piece in pieces])

    one = whole(documents.category_tree_pieces(categories))
    monkeypatch.setattr(documents, "TREE_PIECE_CATEGORIES", 16)
    pieces = documents.category_tree_pieces(categories)
    assert [index for index, _ in pieces] == list(range(13))  # ids 1 to 199, sixteen a piece
    assert max(len(piece["nodes"]) for _, piece in pieces) == 16
    assert whole(pieces) == one
    assert whole(list(reversed(pieces))) == one  # the pieces' order does not matter
    assert [c["slug"] for c in one["categories"]] == ["root"]

    # A rename (here one that moves the category first among its siblings) changes one piece.
    renamed = [Category(id=c.pk, slug=c.slug, name="AAA" if c.pk == 100 else c.name, parent_id=c.parent_id)
               for c in categories]
    changed = [i for (i, a), (_, b) in zip(pieces, documents.category_tree_pieces(renamed)) if a != b]
    assert changed == [100 // 16]
    assert whole(documents.category_tree_pieces(renamed))["categories"][0]["children"][0]["name"] == "AAA"


def test_comparable_drops_only_projected_at(hammer: Product) -> None:
    """Two projections of one version differ only in when they ran; the drift check ignores that."""
    first = _document(hammer)
    later = documents.product_document(
        hammer, selectors.category_path(category=hammer.category), datetime(2025, 1, 1, tzinfo=UTC)
    )
    assert first != later
    assert documents.comparable(first) == documents.comparable(later)
    assert set(first) - set(documents.comparable(first)) == {"projected_at"}
    assert "projected_at" in first


@pytest.mark.parametrize(
    "total, band", [(0, "none"), (1, "low"), (5, "low"), (6, "medium"), (20, "medium"), (21, "high")]
)
def test_customers_see_a_stock_band_not_quantities(total: int, band: str) -> None:
    """Stock per warehouse and warehouse codes are the business's own: staff read them through the
    internal API, customers get in_stock and a band."""
    product = ProductFactory(category=CategoryFactory())
    StockLevelFactory(product=product, warehouse=WarehouseFactory(code="SECRET1"), quantity=total)
    document = _document(selectors.product_get_aggregate(product_id=product.pk))
    assert (document["in_stock"], document["stock_band"]) == (total > 0, band)
    assert "stock" not in document and "SECRET1" not in str(document)
