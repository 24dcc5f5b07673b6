from django.core.management.base import BaseCommand

from hybridsite import regions
from hybridsite.dynamodb import tables_ensure
from projections.backfill import backfill
from projections.registry import AGGREGATES


class Command(BaseCommand):
    help = "Create or update the DynamoDB tables of every projection (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--backfill-created", action="store_true",
            help="backfill the aggregates whose tables were just created (an emulator that lost its data)",
        )
        parser.add_argument(
            "--drop-retired-indexes", action="store_true",
            help="on AWS, delete the indexes an older release made once their replacements are active"
            " (done by default on an emulator; a CDK stack does it itself, see docs/architecture/scale.md)",
        )

    def handle(self, *args, backfill_created: bool, drop_retired_indexes: bool, **options) -> None:
        if backfill_created:
            regions.require_home_region(process="projections_setup --backfill-created")
        actions = tables_ensure(drop_retired=drop_retired_indexes or None)
        for table, action in actions.items():
            self.stdout.write(f"{table}: {action}")
        created = {table for table, action in actions.items() if action == "created"}
        if not backfill_created or not created:
            return
        for name, aggregate in AGGREGATES.items():
            if {p.model.Meta.table_name for p in aggregate.projections} & created:
                self.stdout.write(f"{name}: backfilled {backfill(name)} into new tables")
