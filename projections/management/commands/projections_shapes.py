from collections import Counter

from django.core.management.base import BaseCommand

from projections import shapes
from projections.documents import PRODUCT_SHAPES, product_shape
from projections.tables import ProductDocument


class Command(BaseCommand):
    help = (
        "Count the product documents in DynamoDB by shape (one Scan), and show the shape switches: "
        "a rollout is finished when the old shape counts 0."
    )

    def handle(self, *args, **options) -> None:
        counts = Counter(product_shape(item.body.encode()) for item in ProductDocument.scan() if not item.deleted)
        self.stdout.write(" ".join(f"shape{shape}={counts.get(shape, 0)}" for shape in PRODUCT_SHAPES))
        self.stdout.write(f"writing shape {shapes.write_shape()}, serving shape {shapes.read_shape()}")
