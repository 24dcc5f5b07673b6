"""The Celery app: configuration comes from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridsite.settings")

app = Celery("hybridsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def refuse_outside_the_home_region(**kwargs: object) -> None:
    """The worker runs the relay and the drift watch, which write projections: the home region's
    work only (docs/architecture/regions.md). SystemExit, because Celery logs and ignores a signal
    handler's exceptions."""
    from django.core.management.base import SystemCheckError

    from hybridsite.regions import require_home_region

    try:
        require_home_region(process="celery worker")
    except SystemCheckError as refused:
        raise SystemExit(f"celery worker: {refused}") from None
