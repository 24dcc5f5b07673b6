"""Writes of the ops app: the SLO history."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import slo
from .instruments import process_registry
from .models import SloSample


@transaction.atomic
def slo_sample_record(*, at: datetime | None = None, registry: Any = None) -> SloSample:
    """Store what the host's processes have counted, and the difference from the last sample; drop
    samples older than ``SLO_KEEP_DAYS``. Beat calls it every ``SLO_SAMPLE_SECONDS``."""
    at = at or timezone.now()
    totals = slo.registry_totals(registry or process_registry())
    previous = SloSample.objects.select_for_update().order_by("-at").first()
    sample = SloSample.objects.create(
        at=at, totals=totals, delta=slo.totals_delta(totals, previous.totals if previous else None)
    )
    SloSample.objects.filter(at__lt=at - timedelta(days=settings.SLO_KEEP_DAYS)).delete()
    return sample
