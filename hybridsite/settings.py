"""Hybridsite settings: the only module that reads the environment.

Values come from the process environment first, then from ``var/services.env`` (written by
``devtools.launcher`` for the embedded services), then from the defaults below. A value that
cannot be used stops the process at start with one line naming the variable.
"""

from __future__ import annotations

import builtins
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url

from hybridsite.envfile import read_env_file

BASE_DIR = Path(__file__).resolve().parent.parent
SERVICES_ENV_FILE = BASE_DIR / "var" / "services.env"


class ImproperlyConfiguredEnv(SystemExit):
    """Raised for a bad environment: exits with one readable line instead of a traceback."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"hybridsite: configuration error: {name} {problem}")


def build_env(environ: dict[str, str] | None = None, env_file: Path = SERVICES_ENV_FILE) -> dict[str, str]:
    """The effective environment: the process environment wins over ``var/services.env``."""
    merged = read_env_file(env_file)
    merged.update(os.environ if environ is None else environ)
    return merged


class Env:
    """Typed access to one environment mapping, failing with a clear message.

    Its methods are named after the types they return, and so hide those names in the class body:
    annotations spell them ``builtins.str`` and so on."""

    TRUE = {"1", "true", "yes", "on"}
    FALSE = {"0", "false", "no", "off", ""}

    def __init__(self, values: dict[builtins.str, builtins.str]) -> None:
        self.values = values

    def str(self, name: builtins.str, default: builtins.str = "") -> builtins.str:
        return self.values.get(name, default)

    def bool(self, name: builtins.str, default: builtins.bool = False) -> builtins.bool:
        raw = self.values.get(name)
        if raw is None:
            return default
        if raw.strip().lower() in self.TRUE:
            return True
        if raw.strip().lower() in self.FALSE:
            return False
        raise ImproperlyConfiguredEnv(name, f"must be a boolean (1/0, true/false), got {raw!r}")

    def int(self, name: builtins.str, default: builtins.int, minimum: builtins.int = 0) -> builtins.int:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ImproperlyConfiguredEnv(name, f"must be an integer, got {raw!r}") from None
        if value < minimum:
            raise ImproperlyConfiguredEnv(name, f"must be >= {minimum}, got {value}")
        return value

    def float(self, name: builtins.str, default: builtins.float, minimum: builtins.float = 0.0) -> builtins.float:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ImproperlyConfiguredEnv(name, f"must be a number, got {raw!r}") from None
        if value < minimum:
            raise ImproperlyConfiguredEnv(name, f"must be >= {minimum}, got {value}")
        return value

    def choice(self, name: builtins.str, choices: tuple[builtins.str, ...], default: builtins.str) -> builtins.str:
        raw = self.values.get(name, "").strip()
        if not raw:
            return default
        if raw not in choices:
            raise ImproperlyConfiguredEnv(name, f"must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    def list(self, name: builtins.str, default: builtins.str = "") -> builtins.list[builtins.str]:
        return [item.strip() for item in self.values.get(name, default).split(",") if item.strip()]

    REGION_NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")

    def region(self, name: builtins.str, default: builtins.str) -> builtins.str:
        """A region's name, as AWS spells one (``eu-west-1``)."""
        return self._region_name(name, self.values.get(name, "").strip() or default)

    def regions(self, name: builtins.str, first: builtins.list[builtins.str]) -> builtins.list[builtins.str]:
        """``first``, then the regions a comma-separated list names, each once."""
        return builtins.list(dict.fromkeys([*first, *(self._region_name(name, raw) for raw in self.list(name))]))

    def _region_name(self, name: builtins.str, raw: builtins.str) -> builtins.str:
        if not self.REGION_NAME.fullmatch(raw):
            raise ImproperlyConfiguredEnv(name, f"must name regions such as eu-west-1, got {raw!r}")
        return raw

    @staticmethod
    def regional_name(name: builtins.str, region: builtins.str) -> builtins.str:
        """``REDIS_URL`` of ``us-east-1`` is ``REDIS_URL_US_EAST_1``."""
        return f"{name}_{region.upper().replace('-', '_')}"

    def regional_urls(
        self, name: builtins.str, schemes: tuple[builtins.str, ...], regions: builtins.list[builtins.str],
        here: builtins.str, required: builtins.bool = False,
    ) -> dict[builtins.str, builtins.str]:
        """Each region's ``<name>_<REGION>`` (empty where unset); here's defaults to ``<name>``, and
        must agree with it when both are set."""
        urls = {region: self.url(self.regional_name(name, region), schemes) for region in regions}
        plain = self.url(name, schemes, required=required and not urls[here])
        if plain and urls[here] and urls[here] != plain:
            raise ImproperlyConfiguredEnv(self.regional_name(name, here), f"and {name} differ in this region ({here})")
        urls[here] = urls[here] or plain
        return urls

    def url(
        self, name: builtins.str, schemes: tuple[builtins.str, ...], default: builtins.str = "",
        required: builtins.bool = False,
    ) -> builtins.str:
        raw = self.values.get(name, default).strip()
        if not raw:
            if required:
                raise ImproperlyConfiguredEnv(
                    name, "is not set (run `make run`, or set it; see docs/getting-started/configuration.md)"
                )
            return ""
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not (parts.netloc or parts.path):
            raise ImproperlyConfiguredEnv(name, f"must be a URL with scheme {'/'.join(schemes)}, got {raw!r}")
        return raw


env = Env(build_env())

DEBUG = env.bool("DEBUG", False)
SECRET_KEY = env.str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfiguredEnv("SECRET_KEY", "is required when DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS")

DATABASE_URL = env.url("DATABASE_URL", ("postgres", "postgresql"), required=True)
# Regions (docs/architecture/regions.md). HOME_REGION holds Postgres, the relay and every projection
# write; HYBRIDSITE_REGION is this process's region (by default AWS_REGION: a region's tables are that
# AWS region's replicas of the global tables). REGIONS lists the others; with none, this one region is
# the home region (where REGIONS names several, HOME_REGION must be given: a replica that took itself
# for the home region would project into its own tables). A region's DynamoDB endpoint and Redis URL
# may be named per region, DYNAMODB_ENDPOINT_<REGION> and REDIS_URL_<REGION> (the name upper-cased,
# "-" as "_"), so that one environment serves every region's processes; this region's own default to
# DYNAMODB_ENDPOINT and REDIS_URL.
HYBRIDSITE_REGION = env.region("HYBRIDSITE_REGION", env.str("AWS_REGION") or "eu-west-1")
REGIONS = env.regions("REGIONS", [HYBRIDSITE_REGION])
if len(REGIONS) > 1 and not env.str("HOME_REGION"):
    raise ImproperlyConfiguredEnv("HOME_REGION", f"is required: REGIONS names {', '.join(REGIONS)}")
HOME_REGION = env.region("HOME_REGION", HYBRIDSITE_REGION)
REGIONS = env.regions("REGIONS", [HOME_REGION, HYBRIDSITE_REGION])
REDIS_REGION_URLS = env.regional_urls(
    "REDIS_URL", ("redis", "rediss", "unix"), REGIONS, HYBRIDSITE_REGION, required=True
)
DYNAMODB_REGION_ENDPOINTS = env.regional_urls("DYNAMODB_ENDPOINT", ("http", "https"), REGIONS, HYBRIDSITE_REGION)
if DYNAMODB_REGION_ENDPOINTS[HYBRIDSITE_REGION]:  # an emulator here: never AWS's endpoint for the others
    for _region, _endpoint in DYNAMODB_REGION_ENDPOINTS.items():
        if not _endpoint:
            raise ImproperlyConfiguredEnv(
                env.regional_name("DYNAMODB_ENDPOINT", _region), "is not set, and this region's DynamoDB is local"
            )
REDIS_URL = REDIS_REGION_URLS[HYBRIDSITE_REGION]
CELERY_BROKER_URL = env.url(
    "CELERY_BROKER_URL", ("redis", "rediss", "amqp", "sqs", "memory"), default=REDIS_URL
)
DYNAMODB_ENDPOINT = DYNAMODB_REGION_ENDPOINTS[HYBRIDSITE_REGION]
# What answers at that endpoint, so that tests know which behaviours to expect: AWS itself (no
# endpoint), DynamoDB Local (AWS's emulator, the embedded default) or moto server (the second engine,
# which lacks TTL expiry and ClientRequestToken idempotency). The launcher records it beside the URL.
DYNAMODB_ENGINE = env.choice(
    "DYNAMODB_ENGINE", ("aws", "dynamodb-local", "moto"), "dynamodb-local" if DYNAMODB_ENDPOINT else "aws"
)
AWS_REGION = env.str("AWS_REGION") or HYBRIDSITE_REGION
if AWS_REGION != HYBRIDSITE_REGION:
    raise ImproperlyConfiguredEnv(
        "HYBRIDSITE_REGION",
        f"is {HYBRIDSITE_REGION!r} but AWS_REGION is {AWS_REGION!r}: a region's processes use its tables",
    )
DYNAMODB_TABLE_PREFIX = env.str("DYNAMODB_TABLE_PREFIX", "hybridsite-")
DYNAMODB_TIMEOUT_SECONDS = env.float("DYNAMODB_TIMEOUT_SECONDS", 5.0, minimum=0.05)
# HTTP connections kept per table client: at least the projectors' writer threads.
DYNAMODB_MAX_POOL_CONNECTIONS = env.int("DYNAMODB_MAX_POOL_CONNECTIONS", 32, 1)
# Empty keys mean the standard AWS credential chain; a local emulator accepts any keys.
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", "testing" if DYNAMODB_ENDPOINT else "")
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", "testing" if DYNAMODB_ENDPOINT else "")
AWS_SESSION_TOKEN = env.str("AWS_SESSION_TOKEN", "")  # with temporary keys (an assumed role, Lambda)
# Throttling (ProvisionedThroughputExceededException, ThrottlingException, RequestLimitExceeded): a
# process's conditional writes back off together, a pause drawn up to BASE doubled per throttled
# answer up to CAP and halved per success, each write tried ATTEMPTS times before its projection is
# retried later (never dead-lettered).
DYNAMODB_THROTTLE_BASE_SECONDS = env.float("DYNAMODB_THROTTLE_BASE_SECONDS", 0.05, 0.0)
DYNAMODB_THROTTLE_CAP_SECONDS = env.float("DYNAMODB_THROTTLE_CAP_SECONDS", 5.0, 0.0)
DYNAMODB_THROTTLE_ATTEMPTS = env.int("DYNAMODB_THROTTLE_ATTEMPTS", 8, 1)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "pgtrigger",
    "waffle",
    "catalog",
    "projections",
    "ops",
    "carts",
    "drafts",
    "writeback",
    "orders",
]

MIDDLEWARE = [
    # First: a customer read is timed as the client sees it (ops/middleware.py).
    "ops.middleware.ReadMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # A product read whose Redis entry is there is answered here, without the middleware below
    # (none of which it needs); anything else goes on down (projections/middleware.py).
    "projections.middleware.HotReadMiddleware",
    # Static files from the app itself (compressed, hashed names cached for a year): gunicorn alone
    # serves none, and the admin and the API docs need their CSS and JS.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Read-only mode: API writes answer 503; admin pages learn it as request.read_only.
    "ops.middleware.ReadOnlyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hybridsite.middleware.LoginRateLimitMiddleware",
    # Last, as django-axes asks: locks out a username from one client after repeated failures.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "hybridsite.urls"
WSGI_APPLICATION = "hybridsite.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env.int("DATABASE_CONN_MAX_AGE", 60)),
}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env.int("DATABASE_CONNECT_TIMEOUT", 3, 1)
# pgtrigger's triggers look this setting up on every row; when it is unset the lookup raises and is
# caught, which grows costly in long transactions. Our sessions set it (empty) up front.
DATABASES["default"]["OPTIONS"]["options"] = "-c pgtrigger.ignore={}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES: dict[str, dict[str, Any]] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "hs",
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
            # Every Redis call the app makes goes through this client: counted and timed per command.
            "REDIS_CLIENT_CLASS": "ops.stores.InstrumentedRedis",
        },
    },
}
# Switches and flags (django-waffle: read-only mode, document shapes) live in Postgres and are
# cached this long in Redis; saving one clears its cached value at once.
FLAG_CACHE_SECONDS = env.float("FLAG_CACHE_SECONDS", 5.0, 0.0)
# The hot read keeps the document-shape switches this long per process (no Redis call per request).
SHAPE_SWITCH_LOCAL_SECONDS = env.float("SHAPE_SWITCH_LOCAL_SECONDS", 1.0, 0.0)
CACHES["flags"] = {**CACHES["default"], "KEY_PREFIX": "hs-flags", "TIMEOUT": FLAG_CACHE_SECONDS}
WAFFLE_CACHE_NAME = "flags"
# Seconds a client is told to wait (Retry-After) while read-only mode refuses writes.
READ_ONLY_RETRY_AFTER_SECONDS = env.int("READ_ONLY_RETRY_AFTER_SECONDS", 60, 1)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# `collectstatic` fills it (make run, the Docker image); WhiteNoise serves it.
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(BASE_DIR / "var" / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Proxies in front of the app: how many of them append to X-Forwarded-For (0 = none, and then
# neither X-Forwarded-For nor X-Forwarded-Proto is believed). See hybridsite/clients.py.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", 0)

# Security: strict in production, relaxed only with DEBUG or where set (the local launcher serves
# plain HTTP with DEBUG off and sets the first three to 0).
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preloading is a promise about the whole domain that is slow to take back: only when asked.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False) and not DEBUG
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]  # preload off on purpose
# A client could send X-Forwarded-Proto itself: believe it only from a proxy that sets it.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXY_HOPS else None
SECURE_REDIRECT_EXEMPT = [r"^api/health/$"]
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    # Token first: an anonymous caller gets 401 with WWW-Authenticate, not a bare 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "hybridsite.errors.json_exception_handler",
    # Per user, or per client bucket for anonymous callers; the customer API counts its own.
    "DEFAULT_THROTTLE_CLASSES": ["hybridsite.ratelimit.ScopedThrottle"],
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Hybridsite API",
    "DESCRIPTION": "Catalog reads served from Redis and DynamoDB; Postgres is the source of truth.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Each caller sees the public reads, the customer API (cart, orders: each operation with its
    # security requirement) and the staff operations its permissions allow.
    "SERVE_PUBLIC": False,
    "DEFAULT_GENERATOR_CLASS": "hybridsite.schema.CallerSchemaGenerator",
    # Operations grouped by resource, in this order.
    "TAGS": [
        {"name": "products", "description": "Product documents. Public: no credentials."},
        {"name": "categories", "description": "The category tree and each category's products. Public."},
        {"name": "cart", "description": "The signed-in customer's own cart: `Authorization: Token <key>`."},
        {"name": "orders", "description": "Checkout and the customer's own orders: a token or a session."},
        {"name": "prices", "description": "Internal: staff holding `catalog.change_price`."},
        {"name": "stock", "description": "Internal: staff holding `catalog.view_stocklevel` or `change_stocklevel`."},
        {"name": "drafts", "description": "Internal: staff holding `catalog.change_product`, their own drafts."},
        {"name": "history", "description": "Internal: staff holding `catalog.view_product`, each product's versions."},
        {"name": "exports", "description": "Internal: CSV exports for audits, staff with the view permission."},
    ],
    # Swagger UI and Redoc from our own static files (drf-spectacular-sidecar): pinned, offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Path parameters get the URL converters' patterns; every error status the one error shape.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hybridsite.schema.add_error_responses",
        "hybridsite.schema.blank_or_pattern",  # a blank-allowed text field: anyOf, not oneOf
    ],
}

# Celery: JSON only, late acks so that a killed worker's task is delivered again.
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", 300, 1)}

# Admin bootstrap used by `make run` (printed once when generated).
ADMIN_USERNAME = env.str("ADMIN_USERNAME", "admin")
ADMIN_PASSWORD = env.str("ADMIN_PASSWORD")

LOW_STOCK_THRESHOLD = env.int("LOW_STOCK_THRESHOLD", 5)

# LOG_FORMAT=json: one JSON object per line and event, with the request (or Celery task) id and the
# trace and span ids (hybridsite/logs.py); Celery's worker then keeps this configuration.
LOG_FORMAT = env.choice("LOG_FORMAT", ("plain", "json"), "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        **({"json": {"()": "hybridsite.logs.JsonFormatter"}} if LOG_FORMAT == "json" else {}),
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "stream": sys.stderr, "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {"pynamodb": {"level": "WARNING"}},
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = LOG_FORMAT == "plain"
if LOG_FORMAT == "json":  # first, so that every line of a request carries its id (the hot read's too)
    MIDDLEWARE.insert(0, "hybridsite.logs.RequestIdMiddleware")

# Traces (hybridsite/tracing.py), configured by OpenTelemetry's own variables: off unless
# OTEL_TRACES_EXPORTER names an exporter (otlp, or console for a look) and OTEL_SDK_DISABLED is not
# true. Off, no instrumentation is loaded. The SDK and the OTLP exporter read their other
# variables themselves (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...).
OTEL_SDK_DISABLED = env.bool("OTEL_SDK_DISABLED", False)
OTEL_TRACES_EXPORTER = env.choice("OTEL_TRACES_EXPORTER", ("none", "otlp", "console"), "none")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", "hybridsite")
TRACING = OTEL_TRACES_EXPORTER != "none" and not OTEL_SDK_DISABLED

# Read path: Redis entries of rendered documents.
CACHE_TTL_SECONDS = env.int("CACHE_TTL_SECONDS", 300, 1)
CACHE_NEGATIVE_TTL_SECONDS = env.int("CACHE_NEGATIVE_TTL_SECONDS", 30, 1)
CACHE_FLOOR_TTL_SECONDS = env.int("CACHE_FLOOR_TTL_SECONDS", 86400, 1)
# The hot read's process-local layer, kept coherent by Redis's client tracking (projections/local.py,
# docs/performance/hot-read.md): off by default, as it lets processes differ for one push's delivery
# and counts rate limits in batches of HOT_READ_LOCAL_COUNT_BATCH local hits.
HOT_READ_LOCAL_CACHE = env.bool("HOT_READ_LOCAL_CACHE", False)
HOT_READ_LOCAL_ENTRIES = env.int("HOT_READ_LOCAL_ENTRIES", 10_000, 1)
HOT_READ_LOCAL_COUNT_BATCH = env.int("HOT_READ_LOCAL_COUNT_BATCH", 20, 1)

# Projection relay (see docs/architecture/projection.md).
OUTBOX_BATCH_SIZE = env.int("OUTBOX_BATCH_SIZE", 200, 1)
OUTBOX_PROJECT_THREADS = env.int("OUTBOX_PROJECT_THREADS", 2, 1)
# Threads per process issuing a batch's conditional DynamoDB writes at once.
PROJECTION_WRITE_THREADS = env.int("PROJECTION_WRITE_THREADS", 16, 1)
OUTBOX_SWEEP_SECONDS = env.float("OUTBOX_SWEEP_SECONDS", 2.0, 0.1)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", 5, 1)
OUTBOX_BACKOFF_BASE_SECONDS = env.float("OUTBOX_BACKOFF_BASE_SECONDS", 1.0, 0.0)
OUTBOX_BACKOFF_CAP_SECONDS = env.float("OUTBOX_BACKOFF_CAP_SECONDS", 60.0, 0.0)
OUTBOX_DRAIN_SECONDS = env.float("OUTBOX_DRAIN_SECONDS", 10.0, 0.1)
# outbox_listen drains the outbox itself when rows have been due this long (no Celery task ran).
OUTBOX_STALL_SECONDS = env.float("OUTBOX_STALL_SECONDS", 30.0, 0.1)
# The drift watch: beat compares this many random aggregates of each type with DynamoDB this often.
DRIFT_WATCH_SECONDS = env.float("DRIFT_WATCH_SECONDS", 300.0, 1.0)
DRIFT_WATCH_SAMPLE = env.int("DRIFT_WATCH_SAMPLE", 200, 1)
TOMBSTONE_TTL_SECONDS = env.int("TOMBSTONE_TTL_SECONDS", 7 * 24 * 3600, 60)
# Partition keys of each category's listing (docs/architecture/scale.md): a SKU's listing item lives
# in one of them, a page is read as the merge of one Query per shard. 1 keeps one key per category;
# a new count takes effect for each product as it is rewritten (`projections_backfill --model product
# --reshape` moves every item to its shard at its version).
LISTING_SHARDS = env.int("LISTING_SHARDS", 1, 1)
# How long a product's history keeps each version (DynamoDB's TTL removes it after).
HISTORY_DAYS = env.int("HISTORY_DAYS", 90, 1)

# Metrics and SLOs (ops/). prometheus_client reads PROMETHEUS_MULTIPROC_DIR from the process
# environment itself (the launcher gives every process it starts the same fresh directory); with it,
# /metrics adds up every process on the host. METRICS_TOKEN: the bearer token of a scraper (empty = none).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR")
METRICS_TOKEN = env.str("METRICS_TOKEN")
SLO_READ_P95_MS = env.float("SLO_READ_P95_MS", 100.0, 0.001)
SLO_READ_ERROR_PERCENT = env.float("SLO_READ_ERROR_PERCENT", 0.1, 0.0001)
SLO_PROJECTION_LAG_P95_MS = env.float("SLO_PROJECTION_LAG_P95_MS", 1000.0, 0.001)
SLO_WRITEBACK_LAG_P95_MS = env.float("SLO_WRITEBACK_LAG_P95_MS", 1000.0, 0.001)
# Replication lag (docs/architecture/regions.md): at most this, 99 % of the checks (one per heartbeat).
SLO_REPLICATION_LAG_SECONDS = env.float("SLO_REPLICATION_LAG_SECONDS", 5.0, 0.001)
SLO_SAMPLE_SECONDS = env.float("SLO_SAMPLE_SECONDS", 60.0, 1.0)
SLO_KEEP_DAYS = env.int("SLO_KEEP_DAYS", 2, 1)
# The home region writes a heartbeat item this often (beat); each region's replication lag is now
# minus the newest heartbeat its own DynamoDB holds (hybridsite/heartbeat.py).
REPLICATION_HEARTBEAT_SECONDS = env.float("REPLICATION_HEARTBEAT_SECONDS", 2.0, 0.1)

CELERY_BEAT_SCHEDULE = {
    "relay-outbox-sweep": {
        "task": "projections.relay_outbox",
        "schedule": OUTBOX_SWEEP_SECONDS,
        "options": {"expires": OUTBOX_SWEEP_SECONDS * 5},
    },
    "drift-watch": {
        "task": "ops.drift_watch",
        "schedule": DRIFT_WATCH_SECONDS,
        "options": {"expires": DRIFT_WATCH_SECONDS},
    },
    "ops-slo-sample": {
        "task": "ops.slo_sample",
        "schedule": SLO_SAMPLE_SECONDS,
        "options": {"expires": SLO_SAMPLE_SECONDS},
    },
    "replication-heartbeat": {
        "task": "ops.replication_heartbeat",
        "schedule": REPLICATION_HEARTBEAT_SECONDS,
        "options": {"expires": REPLICATION_HEARTBEAT_SECONDS},
    },
}
READ_FILL_LOCK_MS = env.int("READ_FILL_LOCK_MS", 2000, 1)
READ_FILL_WAIT_MS = env.int("READ_FILL_WAIT_MS", 1000, 0)
# A miss projects the document itself, but waits at most this long for a projection of the same
# aggregate already under way; then Postgres answers (served, not cached).
READ_PROJECT_LOCK_WAIT_MS = env.int("READ_PROJECT_LOCK_WAIT_MS", 200, 0)
BREAKER_FAILURES = env.int("BREAKER_FAILURES", 3, 1)
BREAKER_COOLDOWN_SECONDS = env.float("BREAKER_COOLDOWN_SECONDS", 5.0, 0.0)

# Customer API.
API_CACHE_CONTROL = env.str("API_CACHE_CONTROL", "public, max-age=5")
THROTTLE_ANON_PER_MINUTE = env.int("THROTTLE_ANON_PER_MINUTE", 600, 1)
# New cache entries (listing pages, absent keys) one client may cause per minute; each costs its
# share of THROTTLE_ANON_PER_MINUTE.
THROTTLE_CACHE_FILLS_PER_MINUTE = env.int("THROTTLE_CACHE_FILLS_PER_MINUTE", 60, 1)
# Limits off the hot path, per minute: per user (or client bucket) on the internal API and the
# schema, per client bucket on admin login attempts and on the health check.
THROTTLE_RATES = {
    "default": env.int("THROTTLE_INTERNAL_PER_MINUTE", 300, 1),
    "login": env.int("THROTTLE_LOGIN_PER_MINUTE", 10, 1),
    "health": env.int("THROTTLE_HEALTH_PER_MINUTE", 120, 1),
    "cart": env.int("THROTTLE_CART_PER_MINUTE", 600, 1),
    "orders": env.int("THROTTLE_ORDERS_PER_MINUTE", 600, 1),  # a customer's reads of their orders
    # Orders one customer may place (or try to), whatever the client.
    "checkout": env.int("THROTTLE_CHECKOUT_PER_MINUTE", 30, 1),
    # Staff exports (each one a scan of a table): per user.
    "export": env.int("THROTTLE_EXPORT_PER_MINUTE", 10, 1),
}

# Carts (DynamoDB-first): an idle cart expires by DynamoDB TTL after CART_IDLE_SECONDS; quantity
# per line and lines per cart are bounded (a cart item stays far below DynamoDB's 400 KB).
CART_IDLE_SECONDS = env.int("CART_IDLE_SECONDS", 14 * 24 * 3600, 60)
CART_MAX_QUANTITY = env.int("CART_MAX_QUANTITY", 99, 1)
CART_MAX_LINES = env.int("CART_MAX_LINES", 50, 1)
# The admin's abandoned-carts report lists carts unchanged for longer than this (the page's ?hours=
# overrides it).
ABANDONED_CART_HOURS = env.int("ABANDONED_CART_HOURS", 24, 1)
# Write-back (DynamoDB Streams -> Postgres): a consumer's shard lease lapses after
# WRITEBACK_LEASE_SECONDS without a heartbeat (renewed every third of it), so a killed consumer's
# shards move within seconds; records per GetRecords; pause when a pass found nothing; how often
# shards are listed.
WRITEBACK_LEASE_SECONDS = env.float("WRITEBACK_LEASE_SECONDS", 6.0, 0.5)
WRITEBACK_BATCH_SIZE = min(env.int("WRITEBACK_BATCH_SIZE", 500, 1), 1000)  # GetRecords returns at most 1,000
WRITEBACK_IDLE_SECONDS = env.float("WRITEBACK_IDLE_SECONDS", 0.1, 0.0)
# Each stream reader (the write-back consumer, cache_follow) reads a shard at most once every
# STREAM_READ_INTERVAL_SECONDS: AWS serves five GetRecords a second per shard and throttles beyond.
STREAM_READ_INTERVAL_SECONDS = env.float("STREAM_READ_INTERVAL_SECONDS", 0.25, 0.0)
WRITEBACK_DISCOVERY_SECONDS = env.float("WRITEBACK_DISCOVERY_SECONDS", 10.0, 0.1)
# cache_follow (each region's Redis kept current from its projection tables' streams): its shard
# leases live in that Redis and lapse after CACHE_FOLLOW_LEASE_SECONDS without renewal (every third
# of it), so a killed follower's shards move within seconds; batch size, idle pause and shard
# discovery are the write-back consumer's (WRITEBACK_BATCH_SIZE, _IDLE_SECONDS, _DISCOVERY_SECONDS).
CACHE_FOLLOW_LEASE_SECONDS = env.float("CACHE_FOLLOW_LEASE_SECONDS", 6.0, 0.5)

# Autosaved drafts of product edits expire by DynamoDB TTL after this long without a save.
DRAFT_IDLE_SECONDS = env.int("DRAFT_IDLE_SECONDS", 30 * 24 * 3600, 60)

# How long Redis answers "whose token is this" for the cart API (see hybridsite/authentication.py).
AUTH_TOKEN_CACHE_SECONDS = env.int("AUTH_TOKEN_CACHE_SECONDS", 300, 1)

# Admin login lockout (django-axes): this many failures for one username from one client lock that
# pair out for AXES_COOLOFF_MINUTES. The client is the one hybridsite.clients sees.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 5, 1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", 15, 1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "hybridsite.clients.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "locked_out.html"

# /api/health/: anonymous callers get the overall status, at most one real check per process per
# HEALTH_CACHE_SECONDS; staff and holders of HEALTH_TOKEN (Authorization: Bearer ...) get details.
HEALTH_CACHE_SECONDS = env.float("HEALTH_CACHE_SECONDS", 5.0, 0.0)
HEALTH_TOKEN = env.str("HEALTH_TOKEN")

# Checkout: orders are priced in one currency, from Postgres. An Idempotency-Key is remembered in
# DynamoDB for IDEMPOTENCY_KEY_TTL_SECONDS; a request holding a key that dies without finishing lets
# go of it after IDEMPOTENCY_LEASE_SECONDS, when a retry may take it over.
ORDER_CURRENCY = env.str("ORDER_CURRENCY", "EUR")
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", 24 * 3600, 60)
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", 30, 1)

# Search (GET /api/products/, docs/api/search.md): the SKUs matching a query are cached per normalized
# parameters for SEARCH_CACHE_SECONDS, then served stale for up to SEARCH_STALE_SECONDS more while one
# background task recomputes them; a query's membership is never older than the sum of the two. At
# most SEARCH_MAX_RESULTS SKUs per query; its Postgres query is cancelled after
# SEARCH_STATEMENT_TIMEOUT_MS. Per client and minute: THROTTLE_SEARCH_PER_MINUTE searches, of which
# THROTTLE_SEARCH_FILLS_PER_MINUTE may be computed afresh (each costs its share of the first).
SEARCH_CACHE_SECONDS = env.int("SEARCH_CACHE_SECONDS", 60, 1)
SEARCH_STALE_SECONDS = env.int("SEARCH_STALE_SECONDS", 240, 0)
SEARCH_MAX_RESULTS = env.int("SEARCH_MAX_RESULTS", 1000, 1)
SEARCH_STATEMENT_TIMEOUT_MS = env.int("SEARCH_STATEMENT_TIMEOUT_MS", 2000, 1)
THROTTLE_SEARCH_PER_MINUTE = env.int("THROTTLE_SEARCH_PER_MINUTE", 120, 1)
THROTTLE_SEARCH_FILLS_PER_MINUTE = env.int("THROTTLE_SEARCH_FILLS_PER_MINUTE", 20, 1)

# Staff exports (docs/operations/exports.md): a finished export is kept in Redis, in chunks of
# EXPORT_CHUNK_ROWS rows, for EXPORT_CACHE_SECONDS per normalized parameters; one larger than
# EXPORT_CACHE_MAX_BYTES is streamed and not kept.
EXPORT_CACHE_SECONDS = env.int("EXPORT_CACHE_SECONDS", 300, 0)
EXPORT_CACHE_MAX_BYTES = env.int("EXPORT_CACHE_MAX_BYTES", 64 * 1024 * 1024, 0)
EXPORT_CHUNK_ROWS = env.int("EXPORT_CHUNK_ROWS", 2000, 1)
