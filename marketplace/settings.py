"""Django settings. Values come from :mod:`marketplace.config` (environment, validated once)."""

from __future__ import annotations

import dj_database_url

from marketplace import config as _config

CONFIG = _config.load()
BASE_DIR = _config.BASE_DIR
PROFILE = CONFIG.profile
CONFIG.var_dir.mkdir(parents=True, exist_ok=True)

SECRET_KEY = CONFIG.secret_key
DEBUG = CONFIG.debug
ALLOWED_HOSTS = CONFIG.allowed_hosts
CSRF_TRUSTED_ORIGINS = CONFIG.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "marketplace.accounts",
    "marketplace.audit",
    "marketplace.members",
    "datasets",
    "licensing",
    "quality",
    "marketplace.listings",
    "marketplace.notifications",
    "workers",
    "marketplace",  # the project: management commands, and the reactions between the apps
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marketplace.urls"
WSGI_APPLICATION = "marketplace.wsgi.application"
ASGI_APPLICATION = "marketplace.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {"default": dj_database_url.parse(CONFIG.database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not memory, for the test database too: worker processes started by the
    # tests must see the same data as the test process.
    DATABASES["default"]["TEST"] = {"NAME": str(CONFIG.var_dir / "test-db.sqlite3")}
    # A transaction takes the write lock when it begins (IMMEDIATE): a deferred one that
    # reads, then writes while the worker wrote, fails at once with "database is locked"
    # instead of waiting its turn (the embedded demo seeds while the worker runs).
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CONFIG.var_dir / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve app static files without collectstatic in dev/test

# Request limits (OWASP API4: bounded resources): bodies are small JSON; file bytes go to storage.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "marketplace.accounts.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Closed by default: a route is public only where its view says so.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "marketplace.core.pagination.CappedPageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "marketplace.core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "marketplace.core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "marketplace.core.throttling.ClientAnonRateThrottle",
        "marketplace.core.throttling.ClientUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"anon": CONFIG.throttle_anon, "user": CONFIG.throttle_user, "auth": CONFIG.throttle_auth},
    "DEFAULT_RENDERER_CLASSES": ["marketplace.core.renderers.FastJSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
PAGE_SIZE_MAX = CONFIG.page_size_max
# Rate limits key on the client address; X-Forwarded-For counts only as far as these
# proxies wrote it (marketplace/core/throttling.py).
TRUSTED_PROXY_COUNT = CONFIG.trusted_proxy_count
TRUSTED_PROXY_RANGES = CONFIG.trusted_proxy_ranges
# Failed sign-ins (API and admin) per account and client address: the first few are free,
# then each waits twice as long as the one before, up to a cap; a success clears it.
# Keyed on the client too, so nobody elsewhere can lock the account's owner out.
ACCOUNTS_LOGIN_BACKOFF = {"free_failures": 5, "base_seconds": 1, "max_seconds": 900, "forget_after_seconds": 24 * 3600}

SPECTACULAR_SETTINGS = {
    "TITLE": "Segmentation dataset marketplace API",
    "DESCRIPTION": "Verified mask quality, provenance and licensing for instance-segmentation datasets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Caches: Redis (CACHE_URL; by default the database after the broker's) (throttling and idempotency keys shared by all API
# nodes), the database otherwise, so the embedded default needs no server.
if CONFIG.cache_url.startswith("redis"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CONFIG.cache_url}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Object storage (see marketplace.core.storage).
OBJECT_STORAGE = {
    "backend": "s3" if CONFIG.uses_s3 else "local",
    "bucket": CONFIG.bucket,
    "endpoint_url": CONFIG.s3_endpoint_url,
    "region": CONFIG.s3_region,
    "access_key_id": CONFIG.aws_access_key_id,
    "secret_access_key": CONFIG.aws_secret_access_key,
    "root": str(CONFIG.storage_root),
}
PRESIGNED_URL_TTL_SECONDS = CONFIG.presigned_url_ttl_seconds
QUALITY_DEVICE = CONFIG.quality_device
# Buyer evaluations per organization (its users share them, besides each user's own
# QUALITY_EVALUATION_RATE): started in the last hour, and queued or running at once.
QUALITY_EVALUATION_ORG_PER_HOUR = 100
QUALITY_EVALUATION_ORG_ACTIVE = 4
# Celery (soft, hard) time limits of one buyer evaluation, in seconds (PIPELINE_TIME_LIMITS
# "evaluation"): past the soft one it ends failed (evaluation_time_limit), past the hard
# one its worker process is replaced and it ends failed too.
QUALITY_EVALUATION_TIME_LIMITS = CONFIG.pipeline_time_limits["evaluation"]
# The pipeline (workers/): retries for transient errors, step deadlines, the audit gate.
PIPELINE_MAX_RETRIES = CONFIG.pipeline_max_retries
PIPELINE_RETRY_BACKOFF_MAX = CONFIG.pipeline_retry_backoff_max
PIPELINE_STEP_TIMEOUT = CONFIG.pipeline_step_timeout
PIPELINE_AUDIT_REQUIRED = CONFIG.pipeline_audit_required
PIPELINE_SHARD_IMAGES = CONFIG.pipeline_shard_images
# Celery soft and hard time limits, (soft, hard) seconds per step kind (config.STEP_TIME_LIMITS).
PIPELINE_TIME_LIMITS = CONFIG.pipeline_time_limits
TOKEN_TTL_HOURS = CONFIG.token_ttl_hours
# Organization invitations (marketplace.members) expire after this many hours.
MEMBERS_INVITATION_TTL_HOURS = 7 * 24

# Webhooks (marketplace/notifications): attempts per delivery, exponential back-off
# (base * 2^(attempt-1) seconds, capped), the request timeout, and the hosts exempt from
# the public-HTTPS rule (ssrf.py): none in production; the loopback receiver in tests.
WEBHOOKS_MAX_ATTEMPTS = 8
WEBHOOKS_RETRY_BASE_SECONDS = 1.0 if PROFILE == "test" else 30.0
WEBHOOKS_RETRY_MAX_SECONDS = 6 * 3600
WEBHOOKS_TIMEOUT_SECONDS = 10
WEBHOOKS_ALLOWED_PRIVATE_TARGETS: list[str] = [] if PROFILE == "production" else ["127.0.0.1", "localhost", "::1"]

# Consent revocations (licensing): days the seller has to publish a version without the
# withdrawn files before the affected version is suspended.
CONSENT_REVOCATION_DEADLINE_DAYS = 30

# Domain events (marketplace/core/events.py): in the test profile a failing reaction fails
# the test that caused it; elsewhere it is logged and the reconciliations repair its effect.
EVENTS_RAISE_HANDLER_ERRORS = PROFILE == "test"

# Celery (workers/celery.py reads the CELERY_ namespace).
CELERY_BROKER_URL = CONFIG.broker_url
# Beat (run it once per deployment): the sweeper re-sends pipeline work stuck past its
# deadline (a dead worker, a broker that lost its queues) and aborts abandoned uploads;
# the listings reconciliation repairs listings a lost reaction left wrong.
CELERY_BEAT_SCHEDULE = {
    "pipeline-sweep": {"task": "workers.tasks.sweep", "schedule": 60.0, "options": {"queue": "default", "expires": 55}},
    "listings-reconcile": {"task": "marketplace.listings.tasks.listings_reconcile", "schedule": 300.0, "options": {"queue": "default", "expires": 290}},
    "webhook-deliveries-sweep": {"task": "marketplace.notifications.tasks.deliveries_sweep", "schedule": 60.0, "options": {"queue": "default", "expires": 55}},
    "consent-deadlines": {"task": "licensing.tasks.consent_deadlines_task", "schedule": 3600.0, "options": {"queue": "default", "expires": 3500}},
}
CELERY_RESULT_BACKEND = CONFIG.result_backend
# Every task is time-limited: pipeline steps and buyer evaluations send their own limits
# with each message (PIPELINE_TIME_LIMITS); any other task gets the "other" backstop.
CELERY_TASK_SOFT_TIME_LIMIT, CELERY_TASK_TIME_LIMIT = CONFIG.pipeline_time_limits["other"]
if CONFIG.embedded_broker:
    _broker_dir = CONFIG.var_dir / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    if CELERY_RESULT_BACKEND.startswith("file://"):  # celery's file backend needs the folder to exist
        (CONFIG.var_dir / "celery-results").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),  # kombu's default is ./control
        "store_processed": False,
        # kombu reads one message per poll of the folder: at its default 1 s a queue of short
        # tasks (an upload's shards) drains at one a second.
        "polling_interval": 0.1,
    }
else:
    # Longer than the longest step's hard time limit, so a slow task is not redelivered while it runs.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": max(4 * 3600, int(max(hard for _soft, hard in PIPELINE_TIME_LIMITS.values())) + 600)}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO" if PROFILE != "test" else "WARNING"},
}

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

if PROFILE == "production":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = CONFIG.secure_ssl_redirect
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
