"""Test settings: the real services from the environment, isolated by prefixes."""

from hybridsite.settings import *

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The suite collects static files once per run (tests/conftest.py), apart from `make run`'s.
STATIC_ROOT = BASE_DIR / "var" / "test-static"
# Each test client builds its own handler, and WhiteNoise would scan STATIC_ROOT for each (50 at once
# in the single-flight test, slowing it past its wait); looked up per request instead. A production
# process scans once.
WHITENOISE_AUTOREFRESH = True

# Django's Postgres backend with a faster flush between transactional tests (tests/postgres/base.py).
DATABASES["default"]["ENGINE"] = "tests.postgres"  # noqa: F405

# One namespace isolates a test run's DynamoDB tables, Redis keys and Celery queue from `make run`
# (and from other test runs given another DYNAMODB_TABLE_PREFIX).
DYNAMODB_TABLE_PREFIX = f"test-{DYNAMODB_TABLE_PREFIX}"
CACHES["default"]["KEY_PREFIX"] = f"hs-{DYNAMODB_TABLE_PREFIX}"
CACHES["flags"]["KEY_PREFIX"] = f"hs-flags-{DYNAMODB_TABLE_PREFIX}"
CELERY_TASK_DEFAULT_QUEUE = f"{DYNAMODB_TABLE_PREFIX}celery"

# Fast retries and short leases, so that crash and outage tests finish in seconds.
OUTBOX_SWEEP_SECONDS = 0.5
OUTBOX_MAX_ATTEMPTS = 2
OUTBOX_BACKOFF_BASE_SECONDS = 0.2
OUTBOX_BACKOFF_CAP_SECONDS = 1.0
OUTBOX_DRAIN_SECONDS = 5.0
CELERY_BEAT_SCHEDULE = {
    "relay-outbox-sweep": {"task": "projections.relay_outbox", "schedule": OUTBOX_SWEEP_SECONDS},
    "drift-watch": CELERY_BEAT_SCHEDULE["drift-watch"],  # noqa: F405  (DRIFT_WATCH_SECONDS from the env)
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 5}
WRITEBACK_LEASE_SECONDS = 1.5
WRITEBACK_DISCOVERY_SECONDS = 0.5
CACHE_FOLLOW_LEASE_SECONDS = 1.5
