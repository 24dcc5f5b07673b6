"""Deterministic demo data: a category tree, warehouses, and products with prices and stock.

Each product is drawn from its own ``random.Random`` keyed by the seed and its SKU number, so a
product's content depends only on ``--seed`` and its number, not on the batch size or on what was
seeded before. Running without ``--if-empty`` adds ``--products`` more, numbered after the highest
existing ``SKU-`` number.
"""

from __future__ import annotations

import random
import sys
import time
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import BigIntegerField, Max
from django.db.models.functions import Cast, Substr
from django.utils.text import slugify
from tqdm import tqdm

from catalog.models import Category, Price, Product, StockLevel, Warehouse

CHUNK_SIZE = 1000
SKU_PREFIX = "SKU-"

CATEGORY_TREE: dict[str, dict[str, tuple[str, ...]]] = {
    "Kitchen": {
        "Cookware": ("Frying Pan", "Saucepan", "Stock Pot", "Wok"),
        "Cutlery": ("Chef's Knife", "Paring Knife", "Bread Knife", "Steak Knife Set"),
        "Small Appliances": ("Kettle", "Toaster", "Blender", "Coffee Grinder"),
        "Tableware": ("Dinner Plate", "Mug", "Serving Bowl", "Wine Glass"),
    },
    "Outdoor": {
        "Camping": ("Tent", "Sleeping Bag", "Camp Stove", "Lantern"),
        "Hiking": ("Daypack", "Trekking Poles", "Water Bottle", "Headlamp"),
        "Cycling": ("Bike Light", "Helmet", "Saddle Bag", "Floor Pump"),
        "Garden": ("Pruning Shears", "Watering Can", "Garden Hose", "Trowel"),
    },
    "Electronics": {
        "Audio": ("Headphones", "Bluetooth Speaker", "Earbuds", "Soundbar"),
        "Computer Accessories": ("Keyboard", "Mouse", "USB-C Hub", "Monitor Stand"),
        "Phone Accessories": ("Phone Case", "Charger", "Power Bank", "Screen Protector"),
        "Smart Home": ("Smart Plug", "Motion Sensor", "Smart Bulb", "Door Sensor"),
    },
    "Home": {
        "Bedding": ("Duvet Cover", "Pillow", "Fitted Sheet", "Throw Blanket"),
        "Lighting": ("Desk Lamp", "Floor Lamp", "Pendant Light", "String Lights"),
        "Storage": ("Storage Box", "Shelf Unit", "Laundry Basket", "Drawer Organiser"),
        "Decor": ("Picture Frame", "Vase", "Wall Clock", "Candle Holder"),
    },
    "Sports": {
        "Fitness": ("Yoga Mat", "Kettlebell", "Resistance Band", "Jump Rope"),
        "Running": ("Running Shoes", "Running Vest", "Sports Watch", "Armband"),
        "Swimming": ("Goggles", "Swim Cap", "Kickboard", "Swim Towel"),
        "Team Sports": ("Football", "Basketball", "Shin Guards", "Goalkeeper Gloves"),
    },
    "Office": {
        "Paper": ("Notebook", "Sketchbook", "Sticky Notes", "Planner"),
        "Writing": ("Fountain Pen", "Gel Pen Set", "Mechanical Pencil", "Highlighter Set"),
        "Furniture": ("Office Chair", "Standing Desk", "Footrest", "Filing Cabinet"),
        "Organisation": ("Desk Tray", "Binder", "Label Maker", "Cable Organiser"),
    },
}
WAREHOUSES = {"AMS1": "Amsterdam", "FRA1": "Frankfurt", "LON1": "London", "NYC1": "New York"}
BRANDS = ("Nordvik", "Alder & Co", "Kestrel", "Halden", "Brightfield", "Ostra", "Luma", "Tessel")
STYLES = ("Classic", "Compact", "Pro", "Essential", "Deluxe", "Eco", "Ultra", "Heritage", "Urban", "Trail")
COLORS = ("black", "white", "grey", "navy", "olive", "sand", "red", "teal")
MATERIALS = ("steel", "aluminium", "oak", "bamboo", "recycled plastic", "cotton", "wool", "glass", "ceramic")
PITCHES = (
    "Built to last and easy to care for.",
    "A favourite with customers who want no fuss.",
    "Designed in Scandinavia, made to be used every day.",
    "Light, sturdy and covered by our standard warranty.",
    "Our best-selling model, refreshed for this season.",
)
# Every product has a EUR price; these follow at a rate, for a share of the products.
OTHER_CURRENCIES = {"USD": (Decimal("1.09"), 0.8), "GBP": (Decimal("0.86"), 0.5)}


def _price(amount: Decimal) -> Decimal:
    """Shop prices end in .99."""
    return max(amount.quantize(Decimal("1")), Decimal("1")) - Decimal("0.01")


def product_draft(
    *, seed: int, number: int, leaves: list[tuple[Category, tuple[str, ...]]], warehouses: list[Warehouse]
) -> tuple[Product, list[Price], list[StockLevel]]:
    """One product with its prices (EUR always, USD and GBP mostly) and stock (some zero, some low)."""
    rng = random.Random(f"{seed}:{number}")
    category, nouns = rng.choice(leaves)
    brand, style, noun = rng.choice(BRANDS), rng.choice(STYLES), rng.choice(nouns)
    color, material = rng.choice(COLORS), rng.choice(MATERIALS)
    product = Product(
        sku=f"{SKU_PREFIX}{number:06d}",
        name=f"{brand} {style} {noun}",
        description=f"{style} {noun.lower()} in {color} {material} by {brand}. {rng.choice(PITCHES)}",
        category=category,
        attributes={
            "brand": brand, "color": color, "material": material,
            "weight_g": rng.randrange(50, 5000, 10), "warranty_years": rng.choice([1, 2, 3, 5]),
        },
        is_active=rng.random() >= 0.04,
    )
    eur = _price(Decimal(rng.randint(3, 400)))
    prices = [Price(product=product, currency="EUR", amount=eur)]
    prices += [
        Price(product=product, currency=currency, amount=_price(eur * rate))
        for currency, (rate, share) in OTHER_CURRENCIES.items()
        if rng.random() < share
    ]
    stock = []
    if rng.random() >= 0.03:
        for warehouse in warehouses:
            if rng.random() < 0.7:
                roll = rng.random()
                quantity = 0 if roll < 0.1 else rng.randint(1, 5) if roll < 0.25 else rng.randint(6, 250)
                stock.append(StockLevel(product=product, warehouse=warehouse, quantity=quantity))
    return product, prices, stock


def categories_ensure() -> tuple[list[tuple[Category, tuple[str, ...]]], int]:
    """The demo tree (existing categories are kept); returns the leaves with their nouns."""
    leaves, created = [], 0
    for root_name, children in CATEGORY_TREE.items():
        root, new = Category.objects.get_or_create(slug=slugify(root_name), defaults={"name": root_name})
        created += new
        for name, nouns in children.items():
            child, new = Category.objects.get_or_create(
                slug=f"{root.slug}-{slugify(name)}", defaults={"name": name, "parent": root}
            )
            created += new
            leaves.append((child, nouns))
    return leaves, created


def warehouses_ensure() -> tuple[list[Warehouse], int]:
    warehouses, created = [], 0
    for code, name in WAREHOUSES.items():
        warehouse, new = Warehouse.objects.get_or_create(code=code, defaults={"name": name})
        warehouses.append(warehouse)
        created += new
    return warehouses, created


def next_sku_number() -> int:
    last = (
        Product.objects.filter(sku__regex=rf"^{SKU_PREFIX}[0-9]+$")
        .aggregate(n=Max(Cast(Substr("sku", len(SKU_PREFIX) + 1), BigIntegerField())))["n"]
    )
    return (last or 0) + 1


class Command(BaseCommand):
    help = "Seed deterministic demo data (categories, warehouses, products with prices and stock)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=2000, help="How many products to add.")
        parser.add_argument("--seed", type=int, default=42, help="Same seed, same products.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any product exists.")

    def handle(self, *args: Any, products: int, seed: int, if_empty: bool, **options: Any) -> None:
        if products < 0:
            raise CommandError("--products must be >= 0")
        started = time.perf_counter()
        with transaction.atomic():
            if if_empty and Product.objects.exists():
                self.stdout.write("products exist; nothing seeded")
                return
            leaves, new_categories = categories_ensure()
            warehouses, new_warehouses = warehouses_ensure()
            first = next_sku_number()
            end = first + products
            price_count = stock_count = 0
            with tqdm(total=products, unit="product", file=sys.stderr, disable=None) as progress:
                for start in range(first, end, CHUNK_SIZE):
                    drafts = [
                        product_draft(seed=seed, number=number, leaves=leaves, warehouses=warehouses)
                        for number in range(start, min(start + CHUNK_SIZE, end))
                    ]
                    Product.objects.bulk_create([product for product, _, _ in drafts])
                    prices = Price.objects.bulk_create([price for _, chunk, _ in drafts for price in chunk])
                    stock = StockLevel.objects.bulk_create([level for _, _, chunk in drafts for level in chunk])
                    price_count += len(prices)
                    stock_count += len(stock)
                    progress.update(len(drafts))
        self.stdout.write(
            f"seeded {products} products, {new_categories} categories, {new_warehouses} warehouses,"
            f" {price_count} prices, {stock_count} stock levels in {time.perf_counter() - started:.1f}s"
        )
