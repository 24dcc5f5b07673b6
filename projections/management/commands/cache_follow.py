"""``manage.py cache_follow``: keep this region's Redis current from its projection tables' streams,
until SIGTERM or Ctrl-C. Runs in every region, the home region included: it writes Redis only."""

from __future__ import annotations

import signal
from typing import Any

from django.core.management.base import BaseCommand

from projections.follow import Follower


class Command(BaseCommand):
    help = "Keep this region's Redis current from its projection tables' DynamoDB Streams (shards shared by lease)."

    def handle(self, *args: Any, **options: Any) -> None:
        follower = Follower()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: follower.stopping.set())
        follower.run()
