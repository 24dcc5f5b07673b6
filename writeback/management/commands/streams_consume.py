"""``manage.py streams_consume``: the write-back consumer, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from writeback.consumer import Consumer


class Command(BaseCommand):
    help = "Apply the write-back tables' DynamoDB Streams to Postgres (shards shared by lease)."

    def handle(self, *args: Any, **options: Any) -> None:
        consumer = Consumer()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: consumer.stopping.set())
        consumer.run()
