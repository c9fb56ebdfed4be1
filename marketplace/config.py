"""The service's configuration, read from the environment once and validated.

Every variable the service understands is declared here (and documented in the README's
configuration table). A bad value stops start-up with a message naming the variable;
nothing else in the code reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
PROFILES = ("dev", "test", "production")
QUALITY_DEVICES = ("auto", "cpu", "cuda")
# Celery time limits per step kind, (soft, hard) seconds. Past the soft limit a step stops
# with a job error; past the hard one its worker process is killed and replaced. A step
# kind is a pipeline step (``ingest``, ``audit_sample``, ``checks``) or ``quality`` for
# every quality report; ``PIPELINE_TIME_LIMITS`` may also name one report step
# (``quality_audit=5400:5700``).
STEP_TIME_LIMITS: dict[str, tuple[float, float]] = {
    "ingest": (3 * 3600, 3 * 3600 + 600),
    "audit_sample": (600, 900),
    "quality": (2 * 3600, 2 * 3600 + 600),
    "checks": (3600, 3600 + 600),
    "evaluation": (1800, 1900),  # one buyer evaluation, or one shard of a sharded one
    "other": (3 * 3600, 3 * 3600 + 600),  # every other Celery task: a backstop, none runs unbounded
}
STEP_TIME_LIMIT_NAMES = ("ingest", "audit_sample", "checks", "evaluation", "other", "quality", "quality_intrinsic", "quality_audit", "quality_agreement", "quality_temporal", "quality_panoptic")


def default_var_dir() -> Path:
    """``var/`` of the checkout when the code runs from one (``manage.py`` beside the apps,
    as with ``pip install -e .``); ``./var`` in the working directory when it runs from an
    installed package, never a folder inside site-packages."""
    return BASE_DIR / "var" if (BASE_DIR / "manage.py").is_file() else Path.cwd() / "var"


class ConfigError(RuntimeError):
    """A configuration value is missing or malformed; the message names the variable."""


SECRET_KEY_FILE = "secret_key"


def local_secret_key(var_dir: Path) -> str:
    """The signing key of a dev or test instance: random, generated once into
    ``var_dir/secret_key`` (mode 0600) and read from there afterwards, so no two checkouts
    share a key and nobody can forge a ``/files/<token>`` link from the source alone."""
    path = var_dir / SECRET_KEY_FILE
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if len(value) >= 50:
        return value
    var_dir.mkdir(parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(64)
    # O_EXCL: when two processes start at once, one writes and both use what it wrote.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text().strip()
        if len(value) < 50:
            raise ConfigError(f"{path} holds no usable secret key: delete it to generate a new one") from None
        return value
    with os.fdopen(fd, "w") as out:
        out.write(candidate + "\n")
    return candidate


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(env: dict[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _list(env: dict[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _time_limits(env: dict[str, str], name: str) -> dict[str, tuple[float, float]]:
    """``kind=soft:hard,...`` over the defaults (seconds; soft below hard)."""
    limits = dict(STEP_TIME_LIMITS)
    for item in _list(env, name, []):
        kind, _, value = item.partition("=")
        kind = kind.strip()
        if kind not in STEP_TIME_LIMIT_NAMES:
            raise ConfigError(f"{name}: unknown step kind {kind!r} (one of {', '.join(STEP_TIME_LIMIT_NAMES)})")
        try:
            soft, hard = (float(v) for v in value.split(":"))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not kind=soft:hard (seconds)") from None
        if not 0 < soft < hard:
            raise ConfigError(f"{name}: {item!r}: the soft limit must be positive and below the hard one")
        limits[kind] = (soft, hard)
    return limits


def _url(env: dict[str, str], name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = env.get(name) or default
    scheme = urlparse(raw).scheme
    if scheme not in schemes:
        raise ConfigError(f"{name}={raw!r}: scheme must be one of {', '.join(schemes)}")
    return raw


@dataclass(frozen=True, kw_only=True)
class Config:
    profile: str
    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    database_url: str
    broker_url: str
    result_backend: str
    cache_url: str
    var_dir: Path
    storage_root: Path
    bucket: str | None
    s3_endpoint_url: str | None
    s3_region: str
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    quality_device: str
    token_ttl_hours: int
    presigned_url_ttl_seconds: int
    page_size_max: int
    throttle_anon: str
    throttle_user: str
    throttle_auth: str
    secure_ssl_redirect: bool
    # Which X-Forwarded-For hops to believe (marketplace/core/throttling.py): none by default.
    trusted_proxy_count: int = 0
    trusted_proxy_ranges: list[str] = field(default_factory=list)
    # Pipeline (workers/): transient-error retries, step deadlines, the audit gate.
    pipeline_max_retries: int = 3
    pipeline_retry_backoff_max: int = 300
    pipeline_step_timeout: int = 3600
    pipeline_audit_required: bool = True
    pipeline_shard_images: int = 2000
    # (soft, hard) seconds per step kind; see STEP_TIME_LIMITS
    pipeline_time_limits: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(STEP_TIME_LIMITS))
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def uses_s3(self) -> bool:
        return bool(self.bucket)

    @property
    def embedded_broker(self) -> bool:
        return self.broker_url.startswith("filesystem://")


def load(env: dict[str, str] | None = None) -> Config:
    """Read and validate the configuration from ``env`` (default: ``os.environ``)."""
    env = dict(os.environ if env is None else env)
    profile = env.get("MARKET_PROFILE", "dev")
    if profile not in PROFILES:
        raise ConfigError(f"MARKET_PROFILE={profile!r} must be one of {', '.join(PROFILES)}")
    production = profile == "production"

    secret_key = env.get("SECRET_KEY", "")
    if production and len(secret_key) < 50:
        raise ConfigError("SECRET_KEY is required in production and must be at least 50 characters")
    debug = _bool(env, "DEBUG", profile == "dev")
    if production and debug:
        # Debug pages show settings, SQL and tracebacks to whoever triggers an error.
        raise ConfigError("DEBUG=true is refused in production (it shows internals to every visitor)")

    var_dir = Path(env.get("MARKET_VAR_DIR") or default_var_dir()).resolve()
    if not secret_key:
        secret_key = local_secret_key(var_dir)
    database_url = _url(
        env,
        "DATABASE_URL",
        f"sqlite:///{var_dir / 'db.sqlite3'}",
        ("sqlite", "postgres", "postgresql", "pgsql"),
    )
    if production and database_url.startswith("sqlite"):
        raise ConfigError("DATABASE_URL must point to PostgreSQL in production")

    broker_url = _url(env, "CELERY_BROKER_URL", "filesystem://", ("filesystem", "redis", "rediss", "amqp"))
    default_backend = broker_url if broker_url.startswith("redis") else f"file://{var_dir / 'celery-results'}"
    result_backend = _url(env, "CELERY_RESULT_BACKEND", default_backend, ("file", "redis", "rediss", "rpc"))

    if broker_url.startswith("redis"):
        # The cache lives in the next Redis database: clearing it never touches queued tasks.
        parsed = urlparse(broker_url)
        db = int((parsed.path or "/0").lstrip("/") or 0)
        default_cache = parsed._replace(path=f"/{(db + 1) % 16}").geturl()
    else:
        default_cache = "locmem://"
    cache_url = _url(env, "CACHE_URL", default_cache, ("locmem", "redis", "rediss"))

    bucket = env.get("AWS_STORAGE_BUCKET_NAME") or None
    endpoint = env.get("AWS_S3_ENDPOINT_URL") or None
    if endpoint and urlparse(endpoint).scheme not in ("http", "https"):
        raise ConfigError(f"AWS_S3_ENDPOINT_URL={endpoint!r} must be an http(s) URL")
    if production and not bucket:
        raise ConfigError("AWS_STORAGE_BUCKET_NAME is required in production (object storage)")

    quality_device = env.get("QUALITY_DEVICE", "auto")
    if quality_device not in QUALITY_DEVICES:
        raise ConfigError(f"QUALITY_DEVICE={quality_device!r} must be one of {', '.join(QUALITY_DEVICES)}")

    trusted_proxy_ranges = _list(env, "TRUSTED_PROXY_RANGES", [])
    for item in trusted_proxy_ranges:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"TRUSTED_PROXY_RANGES: {item!r} is not an address or a CIDR range") from None

    allowed_default = [] if production else ["127.0.0.1", "localhost", "testserver", "[::1]"]
    allowed_hosts = _list(env, "ALLOWED_HOSTS", allowed_default)
    if production and not allowed_hosts:
        raise ConfigError("ALLOWED_HOSTS is required in production (comma-separated host names)")

    return Config(
        profile=profile,
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=allowed_hosts,
        csrf_trusted_origins=_list(env, "CSRF_TRUSTED_ORIGINS", []),
        database_url=database_url,
        broker_url=broker_url,
        result_backend=result_backend,
        cache_url=cache_url,
        var_dir=var_dir,
        storage_root=Path(env.get("MARKET_STORAGE_ROOT") or var_dir / "storage").resolve(),
        bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_region=env.get("AWS_S3_REGION_NAME", "us-east-1"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID") or None,
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY") or None,
        quality_device=quality_device,
        token_ttl_hours=_int(env, "TOKEN_TTL_HOURS", 24 * 7, minimum=1),
        presigned_url_ttl_seconds=_int(env, "PRESIGNED_URL_TTL_SECONDS", 300, minimum=10),
        page_size_max=_int(env, "PAGE_SIZE_MAX", 100, minimum=1),
        throttle_anon=env.get("THROTTLE_ANON", "120/min"),
        throttle_user=env.get("THROTTLE_USER", "2000/min"),
        throttle_auth=env.get("THROTTLE_AUTH", "30/min"),
        secure_ssl_redirect=_bool(env, "SECURE_SSL_REDIRECT", production),
        trusted_proxy_count=_int(env, "TRUSTED_PROXY_COUNT", 0),
        trusted_proxy_ranges=trusted_proxy_ranges,
        pipeline_max_retries=_int(env, "PIPELINE_MAX_RETRIES", 3),
        pipeline_retry_backoff_max=_int(env, "PIPELINE_RETRY_BACKOFF_MAX", 300, minimum=1),
        pipeline_step_timeout=_int(env, "PIPELINE_STEP_TIMEOUT", 3600, minimum=5),
        pipeline_audit_required=_bool(env, "PIPELINE_AUDIT_REQUIRED", True),
        pipeline_shard_images=_int(env, "PIPELINE_SHARD_IMAGES", 2000, minimum=1),
        pipeline_time_limits=_time_limits(env, "PIPELINE_TIME_LIMITS"),
    )
