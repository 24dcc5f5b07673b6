from statistics import quantiles

from django.core.management.base import BaseCommand

from catalog.models import OutboxEvent
from projections import metrics


class Command(BaseCommand):
    help = "Print the pipeline's counters, the outbox backlog and projection lag percentiles."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--reset", action="store_true", help="zero the counters and lag samples afterwards")

    def handle(self, *args, reset: bool, **options) -> None:
        for name, value in metrics.snapshot().items():
            self.stdout.write(f"{name}={value}")
        pending = OutboxEvent.objects.filter(status=OutboxEvent.Status.PENDING).count()
        dead = OutboxEvent.objects.filter(status=OutboxEvent.Status.DEAD).count()
        self.stdout.write(f"outbox.pending={pending} outbox.dead={dead}")
        samples = metrics.lag_samples()
        if len(samples) >= 2:
            cuts = quantiles(samples, n=100, method="inclusive")
            self.stdout.write(
                f"lag_ms samples={len(samples)} p50={cuts[49]:.1f} p95={cuts[94]:.1f} p99={cuts[98]:.1f}"
            )
        if reset:
            metrics.reset()
