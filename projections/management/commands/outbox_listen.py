import logging
import select
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import OperationalError, connection

from catalog.models import NOTIFY_CHANNEL
from hybridsite import regions
from projections import relay
from projections.tasks import kick_relay

logger = logging.getLogger("projections.relay")


class Command(BaseCommand):
    help = (
        "Kick the relay within milliseconds of every commit that wrote outbox rows, raw SQL from other "
        "programs included (Postgres LISTEN/NOTIFY). The beat sweep stays the guarantee; when no relay "
        "task has run for OUTBOX_STALL_SECONDS (broker down, or a worker that stopped consuming after "
        "losing it), this process drains the outbox itself."
    )

    def handle(self, *args, **options) -> None:
        regions.require_home_region(process="outbox_listen")
        while True:
            try:
                self._listen()
            except (OperationalError, OSError) as exc:
                self.stderr.write(f"outbox_listen: connection lost ({exc}); reconnecting in 1s")
                connection.close()
                time.sleep(1)

    def _listen(self) -> None:
        connection.ensure_connection()
        raw = connection.connection
        with connection.cursor() as cursor:
            cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.stdout.write(f"outbox_listen: listening on {NOTIFY_CHANNEL}", ending="\n")
        self.stdout.flush()
        kick_relay()  # rows committed while nobody listened
        next_check = time.monotonic() + settings.OUTBOX_STALL_SECONDS
        while True:
            if select.select([raw], [], [], max(0.0, next_check - time.monotonic()))[0]:
                raw.poll()
                if raw.notifies:
                    raw.notifies.clear()
                    kick_relay()
            if time.monotonic() >= next_check:
                self._drain_if_stalled()  # its query also notices a dead connection while idle
                raw.notifies.clear()  # what arrived during the drain was drained with it
                next_check = time.monotonic() + settings.OUTBOX_STALL_SECONDS

    def _drain_if_stalled(self) -> None:
        if not relay.overdue():
            return
        logger.error(
            "relay stalled: outbox rows due for more than %ss and no relay task ran; draining in outbox_listen",
            settings.OUTBOX_STALL_SECONDS,
        )
        rows = 0
        while True:
            result = relay.drain()
            rows += result.rows
            if result.stopped_by is not relay.StopReason.TIME:
                break
        logger.warning("outbox_listen drained %d rows (%s)", rows, result.stopped_by)
