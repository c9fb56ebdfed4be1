"""Chooses the backends the test suite runs against, before Django reads its settings.

* PostgreSQL and Redis: the ones in ``DATABASE_URL`` / ``CELERY_BROKER_URL`` if set, else
  the local servers on 127.0.0.1:5432 / :6379 when they answer. With ``CI=true`` an
  unreachable server fails the run at once: it never falls back to SQLite.
* Object storage: an S3-compatible HTTP endpoint (moto's server) started here, in its own
  process, for the whole run; the code under test talks to it with boto3 as to AWS.
  ``MARKET_TEST_STORAGE=local`` uses local files instead.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
CI = os.environ.get("CI", "").lower() == "true"
TEST_BUCKET = "marketplace-test"


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require(url: str, default_port: int, what: str) -> None:
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or default_port
    if not reachable(host, port):
        raise pytest.UsageError(f"{what} at {host}:{port} is not reachable (CI=true never falls back)")


def _choose_database() -> None:
    url = os.environ.get("DATABASE_URL")
    if url:
        if url.startswith("postgres"):
            _require(url, 5432, "PostgreSQL")
        return
    if reachable("127.0.0.1", 5432):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/marketplace"
    elif CI:
        raise pytest.UsageError("PostgreSQL at 127.0.0.1:5432 is not reachable and CI=true")


def _choose_broker() -> None:
    url = os.environ.get("CELERY_BROKER_URL")
    if url:
        if url.startswith("redis"):
            _require(url, 6379, "Redis")
        return
    if reachable("127.0.0.1", 6379):
        os.environ["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/0"
    elif CI:
        raise pytest.UsageError("Redis at 127.0.0.1:6379 is not reachable and CI=true")


def _start_s3() -> None:
    if os.environ.get("MARKET_TEST_STORAGE") == "local" or os.environ.get("AWS_S3_ENDPOINT_URL"):
        return
    port = free_port()
    log = open(ROOT / "var" / f"moto-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    atexit.register(proc.terminate)
    deadline = time.monotonic() + 30
    while not reachable("127.0.0.1", port, 0.2):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise pytest.UsageError(f"the S3 test endpoint did not start (see var/moto-{port}.log)")
        time.sleep(0.1)
    os.environ.update(
        AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_STORAGE_BUCKET_NAME=TEST_BUCKET,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_S3_REGION_NAME="us-east-1",
    )


(ROOT / "var").mkdir(exist_ok=True)
os.environ.setdefault("MARKET_PROFILE", "test")
os.environ.setdefault("MARKET_VAR_DIR", str(ROOT / "var" / "test"))
# Generous limits for the suite; the throttling tests set their own.
os.environ.setdefault("THROTTLE_ANON", "100000/min")
os.environ.setdefault("THROTTLE_USER", "100000/min")
os.environ.setdefault("THROTTLE_AUTH", "100000/min")
os.environ.setdefault("QUALITY_DEVICE", "cpu")
_choose_database()
_choose_broker()
_start_s3()


def pytest_report_header(config) -> list[str]:
    db = urlparse(os.environ.get("DATABASE_URL", "sqlite://")).scheme or "sqlite"
    broker = os.environ.get("CELERY_BROKER_URL", "filesystem://")
    storage = os.environ.get("AWS_S3_ENDPOINT_URL") or "local files"
    return [f"backends: database={db} broker={urlparse(broker).scheme} ({broker}) storage={'S3 at ' + storage if storage.startswith('http') else storage} CI={CI}"]
