"""Bench settings: the project's settings on a database, tables, Redis keys and queue of their own.

Nothing here reads the environment (``hybridsite.settings`` does). The DynamoDB prefix must be set
here, before ``projections.models`` is imported: PynamoDB's ``Meta`` reads it at import time.
"""

from hybridsite.settings import *  # noqa: F403
from hybridsite.settings import CACHES, DATABASES, DYNAMODB_TABLE_PREFIX, INSTALLED_APPS

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECURE_SSL_REDIRECT = False
ROOT_URLCONF = "bench.urls"

# Isolation from `make run` and from test runs: same servers, other names.
DATABASES = {"default": {**DATABASES["default"], "NAME": "hybridsite_bench"}}
DYNAMODB_TABLE_PREFIX = f"bench-{DYNAMODB_TABLE_PREFIX}"
CACHES = {
    **CACHES,
    "default": {**CACHES["default"], "KEY_PREFIX": f"hs-{DYNAMODB_TABLE_PREFIX}"},
    "flags": {**CACHES["flags"], "KEY_PREFIX": f"hs-{DYNAMODB_TABLE_PREFIX}flags"},
}
CELERY_TASK_DEFAULT_QUEUE = f"{DYNAMODB_TABLE_PREFIX}celery"

# Throttling stays on (counted in the reader's one Redis round trip) but never trips.
THROTTLE_ANON_PER_MINUTE = 1_000_000_000

# No entry expires during a run, for Hybridsite as for cachalot (whose entries never expire):
# every miss measured under write load comes from a write, not from the clock.
CACHE_TTL_SECONDS = 3600

# django-cachalot is a bench-only dependency, active only in the cachalot view (see cachalot_scope).
INSTALLED_APPS = [*INSTALLED_APPS, "cachalot", "bench.apps.BenchConfig"]
CACHALOT_ENABLED = True
CACHALOT_ONLY_CACHABLE_TABLES = (
    "catalog_category", "catalog_product", "catalog_price", "catalog_stocklevel", "catalog_warehouse",
)
