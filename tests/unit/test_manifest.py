"""An owner manifest grows before the writes (every key about to be written is tracked first), and
keeps the keys it knew until the projection has tombstoned them."""

from __future__ import annotations

from projections.projector import Manifest

PRODUCTS, LISTING = "products", "category-listing"


def test_it_grows_by_the_keys_about_to_be_written() -> None:
    manifest = Manifest(version=3, keys={PRODUCTS: {("SKU-1",)}})
    grown = manifest.grown({PRODUCTS: {("SKU-1",)}, LISTING: {("CATEGORY#tools", "SKU-1")}})
    assert grown == {PRODUCTS: {("SKU-1",)}, LISTING: {("CATEGORY#tools", "SKU-1")}}


def test_keys_the_plan_no_longer_has_stay_until_they_are_tombstoned() -> None:
    """A product moved to another category: its old listing item is still tracked while the new
    one is written, so a crash in between leaves nothing untracked."""
    manifest = Manifest(version=3, keys={LISTING: {("CATEGORY#tools", "SKU-1")}})
    grown = manifest.grown({LISTING: {("CATEGORY#garden", "SKU-1")}})
    assert grown == {LISTING: {("CATEGORY#tools", "SKU-1"), ("CATEGORY#garden", "SKU-1")}}


def test_a_plan_within_what_is_known_leaves_it_unchanged() -> None:
    """The projector writes the manifest only when it changes: the usual update costs no write."""
    keys: dict[str, set[tuple[str, ...]]] = {PRODUCTS: {("SKU-1",)}, LISTING: {("CATEGORY#tools", "SKU-1")}}
    manifest = Manifest(version=3, keys=keys)
    assert manifest.grown({PRODUCTS: {("SKU-1",)}, LISTING: set()}) == keys


def test_tables_without_keys_are_left_out() -> None:
    assert Manifest(version=0, keys={}).grown({PRODUCTS: set(), LISTING: set()}) == {}
    assert Manifest(version=0, keys={}).grown({PRODUCTS: {("SKU-1",)}, LISTING: set()}) == {PRODUCTS: {("SKU-1",)}}


def test_growing_does_not_change_the_manifest_it_starts_from() -> None:
    manifest = Manifest(version=3, keys={PRODUCTS: {("SKU-1",)}})
    manifest.grown({PRODUCTS: {("SKU-2",)}})
    assert manifest.keys == {PRODUCTS: {("SKU-1",)}}
