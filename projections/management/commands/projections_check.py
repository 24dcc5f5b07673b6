from django.core.management.base import BaseCommand, CommandError

from hybridsite import regions
from projections.drift import check
from projections.projector import project
from projections.registry import AGGREGATES


class Command(BaseCommand):
    help = (
        "Compare Postgres with DynamoDB: missing, stale, differing and extra documents. "
        "Prints one summary line; exits 1 on drift (after --repair: on drift left unrepaired)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sample", type=int, help="check N random aggregates of each type instead of all")
        parser.add_argument("--model", choices=sorted(AGGREGATES), action="append", help="only this aggregate type")
        parser.add_argument("--repair", action="store_true", help="re-project every aggregate that drifted")

    def handle(self, *args, sample: int | None, model: list[str] | None, repair: bool, **options) -> None:
        if repair:
            regions.require_home_region(process="projections_check --repair")
        if sample is not None and sample < 1:
            raise CommandError("--sample must be at least 1")
        report = check(sample=sample, aggregates=model)
        self.stdout.write(report.line())
        if report.clean:
            return
        if repair:
            for aggregate_type, aggregate_id in sorted(report.drifted):
                project(aggregate_type, aggregate_id, repair=True)
            self.stdout.write(f"repaired={len(report.drifted)}")
            after = check(sample=sample, aggregates=model)
            self.stdout.write(after.line())
            if after.clean:
                return
        raise SystemExit(1)
