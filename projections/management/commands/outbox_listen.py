import select
import time

from django.core.management.base import BaseCommand
from django.db import OperationalError, connection

from catalog.models import NOTIFY_CHANNEL
from projections.tasks import kick_relay


class Command(BaseCommand):
    help = (
        "Kick the relay within milliseconds of every commit that wrote outbox rows, raw SQL from other "
        "programs included (Postgres LISTEN/NOTIFY). The beat sweep stays the guarantee."
    )

    def handle(self, *args, **options) -> None:
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
        self.stdout.write(f"outbox_listen: listening on {NOTIFY_CHANNEL}")
        kick_relay()  # rows committed while nobody listened
        while True:
            if select.select([raw], [], [], 30.0)[0]:
                raw.poll()
                if raw.notifies:
                    raw.notifies.clear()
                    kick_relay()
            else:
                with connection.cursor() as cursor:  # notices a dead connection while idle
                    cursor.execute("SELECT 1")
