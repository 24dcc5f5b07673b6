from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hybridsite import regions
from projections.drift import check, check_cache
from projections.projector import project
from projections.registry import AGGREGATES


class Command(BaseCommand):
    help = (
        "Compare Postgres with DynamoDB: missing, stale, differing and extra documents; with --region, that "
        "region's DynamoDB, and its Redis entries against its DynamoDB. Prints one summary line (two with "
        "--region); exits 1 on drift (after --repair: on drift left unrepaired)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sample", type=int, help="check N random aggregates of each type instead of all")
        parser.add_argument("--model", choices=sorted(AGGREGATES), action="append", help="only this aggregate type")
        parser.add_argument("--repair", action="store_true", help="re-project every aggregate that drifted")
        parser.add_argument(
            "--region", choices=settings.REGIONS,
            help="check this region's DynamoDB (its replicas of the tables) against Postgres, and its Redis's"
            " document entries against its DynamoDB: an entry at a version its DynamoDB does not hold (ahead) or"
            " older than it (behind) is drift",
        )

    def handle(
        self, *args, sample: int | None, model: list[str] | None, repair: bool, region: str | None, **options
    ) -> None:
        if repair:
            regions.require_home_region(process="projections_check --repair")
            if region not in (None, settings.HOME_REGION):
                raise CommandError(
                    f"--repair writes in the home region ({settings.HOME_REGION}) only: repair it there (without"
                    f" --region), then check {region} again once replication has brought the repairs"
                )
        if sample is not None and sample < 1:
            raise CommandError("--sample must be at least 1")
        report = check(sample=sample, aggregates=model, region=region)
        self.stdout.write(report.line())
        cached = None
        if region is not None:
            cached = check_cache(region)
            self.stdout.write(cached.line())
        if report.clean and (cached is None or cached.clean):
            return
        if repair and not report.clean:
            for aggregate_type, aggregate_id in sorted(report.drifted):
                project(aggregate_type, aggregate_id, repair=True)
            self.stdout.write(f"repaired={len(report.drifted)}")
            after = check(sample=sample, aggregates=model, region=region)
            self.stdout.write(after.line())
            if after.clean and (cached is None or cached.clean):
                return
        raise SystemExit(1)
