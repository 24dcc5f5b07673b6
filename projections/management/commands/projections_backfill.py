import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from hybridsite import regions
from projections.backfill import backfill, default_processes
from projections.registry import AGGREGATES


class Command(BaseCommand):
    help = "Project every aggregate (or those of --model) into DynamoDB; --resume continues after a crash."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--model", choices=sorted(AGGREGATES), action="append", help="only this aggregate type")
        parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
        parser.add_argument("--chunk", type=int, default=500, help="aggregates per checkpoint (default 500)")
        parser.add_argument("--workers", type=int, default=4, help="parallel projections per process (default 4)")
        parser.add_argument(
            "--processes", type=int, default=default_processes(),
            help="processes projecting chunks at once (default: one per CPU this process may use, at most 4;"
            " one with --rate)",
        )
        parser.add_argument(
            "--reshape", action="store_true",
            help="rewrite documents at their current version, in the shape written now (see projections/shapes.py)",
        )
        parser.add_argument("--rate", type=float, help="at most this many aggregates per second")

    def handle(
        self, *args, model: list[str] | None, resume: bool, chunk: int, workers: int, processes: int,
        reshape: bool, rate: float | None, **options,
    ) -> None:
        regions.require_home_region(process="projections_backfill")
        if rate is not None and rate <= 0:
            raise CommandError("--rate must be positive")
        for aggregate_type in model or sorted(AGGREGATES):
            started = time.perf_counter()
            with tqdm(desc=aggregate_type, unit="doc", disable=None) as bar:
                count = backfill(
                    aggregate_type, resume=resume, chunk=max(chunk, 1), workers=max(workers, 1),
                    processes=max(processes, 1), reshape=reshape, rate=rate, progress=bar.update,
                )
            elapsed = time.perf_counter() - started
            speed = count / elapsed if elapsed else 0.0
            self.stdout.write(f"{aggregate_type}: projected={count} seconds={elapsed:.1f} docs_per_second={speed:.0f}")
