"""Celery tasks of the operations app."""

from __future__ import annotations

from celery import shared_task

from hybridsite.heartbeat import heartbeat_write

from .drift_watch import drift_watch_run
from .services import slo_sample_record


@shared_task(name="ops.drift_watch", ignore_result=True)
def drift_watch() -> None:
    """Beat runs it every DRIFT_WATCH_SECONDS; one sampled check, stored and shown in the admin."""
    drift_watch_run()


@shared_task(name="ops.slo_sample", ignore_result=True)
def slo_sample() -> None:
    """Beat's SLO sample: a row of the history the admin's SLO page reads."""
    slo_sample_record()


@shared_task(name="ops.replication_heartbeat", ignore_result=True)
def replication_heartbeat() -> None:
    """Beat runs it every REPLICATION_HEARTBEAT_SECONDS, in the home region (the worker runs only
    there): the item every region's replication lag is measured from."""
    heartbeat_write()
