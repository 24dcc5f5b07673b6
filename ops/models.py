"""The SLO history: one row per sample of the metrics the objectives are about."""

from __future__ import annotations

from django.db import models


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
