"""Django's Postgres backend with a faster flush between transactional tests.

Django empties every table after each transactional test with one TRUNCATE of all of them, which
costs a few hundred milliseconds whatever the tables hold; the suite runs hundreds of such tests on
tables holding a few rows. A DELETE of each is a few milliseconds, with triggers off for the
flush's transaction (``session_replication_role``: foreign keys are triggers too, so the order does
not matter, and no outbox row is written by the catalog's triggers). That needs a superuser, as the
suite's Postgres is; anything else, or a flush that resets sequences, gets Django's TRUNCATE.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.db.backends.postgresql import base


class DatabaseOperations(base.DatabaseOperations):
    def sql_flush(
        self, style: Any, tables: Any, *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        if not tables or reset_sequences or not self._superuser:
            return super().sql_flush(style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        deletes = "".join(f" DELETE FROM {self.quote_name(table)};" for table in tables)
        return [f"SET LOCAL session_replication_role = replica;{deletes}"]  # one round trip

    @cached_property
    def _superuser(self) -> bool:
        with self.connection.cursor() as cursor:
            cursor.execute("SHOW is_superuser")
            return bool(cursor.fetchone()[0] == "on")


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
