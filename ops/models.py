"""Postgres rows of the operations app: drift watch runs, the SLO history."""

from __future__ import annotations

from django.db import models


class DriftRun(models.Model):
    """One sampled drift check by the watch (beat): what it compared and which aggregates differed
    between Postgres and DynamoDB, confirmed by a second look; "repair" re-projects those."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    sample = models.PositiveIntegerField(help_text="aggregates checked of each type")
    checked = models.PositiveIntegerField()
    missing = models.PositiveIntegerField()
    stale = models.PositiveIntegerField()
    differ = models.PositiveIntegerField()
    extra = models.PositiveIntegerField()
    drifted = models.JSONField(default=list, help_text='[aggregate type, id] pairs, e.g. ["product", 42]')
    repaired_at = models.DateTimeField(null=True, blank=True)
    repaired = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["-started_at"], name="driftrun_recent")]
        permissions = [("repair_driftrun", "Can re-project the aggregates a drift check found")]

    def __str__(self) -> str:
        return f"drift check {self.started_at:%Y-%m-%d %H:%M:%S}: {len(self.drifted)} drifted"

    @property
    def is_clean(self) -> bool:
        """Named apart from ``Model.clean()``, the validation hook ``full_clean()`` calls."""
        return not self.drifted


class SloSample(models.Model):
    """What the processes on this host had counted at ``at`` (``totals``, as the registry adds them
    up) and since the sample before (``delta``; a counter that went down was reset by a restart,
    so its whole value is new). A window's numbers are the sum of its rows' deltas.

    Histograms are ``{"buckets": [[upper bound, cumulative count], ...], "count": n}``; the upper
    bounds are strings (``"+Inf"``), as JSON has no infinity.
    """

    at = models.DateTimeField(db_index=True)
    totals = models.JSONField(default=dict)
    delta = models.JSONField(default=dict)

    class Meta:
        verbose_name = "SLO"
        verbose_name_plural = "SLOs"
        ordering = ("-at",)

    def __str__(self) -> str:
        return f"sample at {self.at:%Y-%m-%d %H:%M:%S}"
