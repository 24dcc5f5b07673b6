"""The write-back as an AWS Lambda function behind a DynamoDB Streams event source mapping (with
``ReportBatchItemFailures``): the same apply function as ``streams_consume``, one transaction per
record. Lambda keeps the checkpoint; the apply functions make redelivery a no-op.

On the first failing record the rest of the batch is left alone and that record reported: Lambda
retries from it, in order (a later change of an item never overtakes an earlier one); the mapping's
bisection and on-failure destination keep a poisoned record from blocking the shard.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import django
from django.apps import apps

logger = logging.getLogger(__name__)


def handle(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    if not apps.ready:  # a cold start: Lambda imports the module, nothing has set Django up
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hybridsite.settings")
        django.setup(set_prefix=False)
    from django.db import transaction

    from .apply import apply_record

    records = event.get("Records", [])
    for record in records:
        try:
            with transaction.atomic():
                apply_record(record)
        except Exception:  # reported to Lambda, which retries from this record
            logger.exception("write-back (lambda): record %s failed", record["dynamodb"]["SequenceNumber"])
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}
