from django.core.management.base import BaseCommand

from projections.tables import tables_ensure


class Command(BaseCommand):
    help = "Create or update the DynamoDB tables of every projection (idempotent)."

    def handle(self, *args, **options) -> None:
        for table, action in tables_ensure().items():
            self.stdout.write(f"{table}: {action}")
