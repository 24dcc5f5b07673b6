"""Postgres rows the projections keep for themselves: owner manifests, backfill checkpoints and
durable read floors. (The DynamoDB tables are PynamoDB models, in ``tables.py``.)"""

from __future__ import annotations

from django.db import models


class OwnerManifest(models.Model):
    """The keys each aggregate has written, per DynamoDB table.

    The projector finds the items an aggregate no longer wants (a moved or renamed product) here:
    a strongly consistent read under the aggregate's lock, cheaper than a DynamoDB call, and
    unlike the owner index never behind.
    """

    owner = models.CharField(max_length=100, primary_key=True)
    version = models.BigIntegerField()
    keys = models.JSONField(default=dict)  # {table name: [[key values], ...]}
    unstorable = models.PositiveIntegerField(default=0)
    """How many of its documents were too large to store at ``version`` (Postgres serves them)."""

    class Meta:
        indexes = [
            models.Index(fields=["owner"], condition=models.Q(unstorable__gt=0), name="ownermanifest_unstorable"),
        ]

    def __str__(self) -> str:
        return self.owner


class BackfillCheckpoint(models.Model):
    """Postgres row recording how far a backfill got, so that ``--resume`` continues after a crash."""

    aggregate_type = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)
    projected = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0, help_text="aggregates of the type when the run began")
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.aggregate_type} after #{self.last_id}"

    @property
    def percent(self) -> float:
        return 100.0 if self.finished or not self.total else min(100.0, 100.0 * self.projected / self.total)


class ReadFloor(models.Model):
    """A version served from Postgres while DynamoDB could not be written (so DynamoDB may be
    behind it), kept where a Redis restart cannot lose it.

    Readers consult it only on a miss whose Redis floor is gone; the relay removes old rows.
    """

    name = models.CharField(max_length=200, primary_key=True)  # the document's cache name
    version = models.BigIntegerField()
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.name} >= v{self.version}"
