"""The regions fixtures (tests/regions/conftest.py) for the replication bench's test."""

from tests.regions.conftest import regions, replica_redis, replica_tables, second_dynamodb_local

__all__ = ["regions", "replica_redis", "replica_tables", "second_dynamodb_local"]
