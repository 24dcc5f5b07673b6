"""Celery tasks of the operations app."""

from __future__ import annotations

from celery import shared_task

from .drift_watch import drift_watch_run


@shared_task(name="ops.drift_watch", ignore_result=True)
def drift_watch() -> None:
    """Beat runs it every DRIFT_WATCH_SECONDS; one sampled check, stored and shown in the admin."""
    drift_watch_run()
