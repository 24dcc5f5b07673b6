"""Postgres state of the streams consumer: shard leases with their checkpoints, the consumers alive,
records parked after failing, and resyncs after a trimmed stream.

The checkpoint lives on the lease row and is written in the transaction that applies the records
it covers: a consumer killed at any moment has either applied and checkpointed a batch, or
neither.
"""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class ShardLease(models.Model):
    stream_arn = models.CharField(max_length=400)
    shard_id = models.CharField(max_length=200)
    parent_shard_id = models.CharField(max_length=200, blank=True, default="")
    table_name = models.CharField(max_length=255)
    owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(db_default=Now())
    checkpoint = models.CharField(
        max_length=100, blank=True, default="", help_text="Sequence number of the last applied record (opaque)."
    )
    finished = models.BooleanField(default=False, help_text="Closed shard read to its end.")
    records_applied = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = (models.UniqueConstraint(fields=["stream_arn", "shard_id"], name="shard_lease_unique"),)

    def __str__(self) -> str:
        return f"{self.table_name} {self.shard_id}"


class ConsumerProcess(models.Model):
    """A consumer alive until ``expires_at`` (renewed by its heartbeat): shards are shared among
    the live ones."""

    owner = models.CharField(max_length=200, primary_key=True)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.owner


class DeadLetter(models.Model):
    """A record that could not be applied: kept with its error, retried from the admin; the shard
    went on without it."""

    table_name = models.CharField(max_length=255)
    shard_id = models.CharField(max_length=200, blank=True, default="")
    sequence_number = models.CharField(max_length=100)
    record = models.JSONField(help_text="The stream record (Lambda event format).")
    error = models.TextField()
    attempts = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    last_tried_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.table_name} {self.sequence_number}"


class Resync(models.Model):
    """A table reloaded from a Scan because its stream no longer held records the consumer needed."""

    table_name = models.CharField(max_length=255)
    shard_id = models.CharField(max_length=200)
    reason = models.TextField()
    items = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-started_at",)

    def __str__(self) -> str:
        return f"resync of {self.table_name} at {self.started_at:%Y-%m-%d %H:%M:%S}"
