from celery import shared_task

from .services import slo_sample_record


@shared_task(name="ops.slo_sample", ignore_result=True)
def slo_sample() -> None:
    """Beat's SLO sample: a row of the history the admin's SLO page reads."""
    slo_sample_record()
