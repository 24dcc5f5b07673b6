"""The bench's Postgres databases: dropped and created before each run (run.py, suffering.py)."""

from __future__ import annotations

import psycopg2
from django.conf import settings


def fresh_database(name: str) -> None:
    """Drop and create database ``name`` on the bench's Postgres server."""
    db = settings.DATABASES["default"]
    conn = psycopg2.connect(
        dbname="postgres", user=db["USER"] or None, password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None, connect_timeout=5,
    )
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
