"""Fixtures shared by the whole suite: actors in every role, the object store, real
Celery worker processes, and the compiled kernels for the tests of them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from tests import factories

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def object_storage_ready(django_db_blocker):
    """The S3 test bucket exists before any test runs (local storage needs nothing)."""
    from marketplace.core.storage import S3Storage, get_storage

    storage = get_storage()
    if isinstance(storage, S3Storage):
        storage.ensure_bucket()
    return storage


@pytest.fixture
def compiled_kernels():
    """The quality engine's compiled kernels, for a test that exercises them: skipped where
    QUALITY_NATIVE=0 turns them off on purpose; anywhere else a missing or stale library
    fails the test with the loader's reason, so a broken build is never a run of skips."""
    if os.environ.get("QUALITY_NATIVE") == "0":
        pytest.skip("QUALITY_NATIVE=0 turns the compiled kernels off on purpose")
    from quality.engine import native

    kernels = native.kernels()
    assert kernels is not None, native.status()
    return kernels


@pytest.fixture(autouse=True)
def _clear_cache():
    from django.core.cache import cache

    cache.clear()
    yield


# The vocabularies a data migration seeds (robot platforms, tasks, scenes with their
# aliases). A transactional test ends with a flush that empties every table, and the
# license catalogue reloads itself when found empty, but these terms would stay gone for
# every later test; they are put back after such a test, as the migration wrote them.
VOCABULARY_MIGRATION = "datasets.migrations.0006_vocabulary_catalogue_annotation_kind_sensors"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    yield  # every fixture of the test is torn down here, the flush included
    if nextitem is None:
        return  # the session's last test: the test database is gone with its fixtures
    mark = item.get_closest_marker("django_db")
    flushed = {"transactional_db", "live_server", "django_db_reset_sequences"} & set(getattr(item, "fixturenames", ()))
    if not flushed and not (mark and (mark.kwargs.get("transaction") or mark.kwargs.get("reset_sequences"))):
        return
    import importlib

    from django.apps import apps
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        importlib.import_module(VOCABULARY_MIGRATION).seed(apps, None)


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def seller(db) -> factories.Actor:
    return factories.make_seller(username="seller-a")


@pytest.fixture
def seller_b(db) -> factories.Actor:
    return factories.make_seller(username="seller-b")


@pytest.fixture
def buyer(db) -> factories.Actor:
    return factories.make_buyer(username="buyer-a")


@pytest.fixture
def auditor(db) -> factories.Actor:
    return factories.make_auditor(username="auditor-a")


@pytest.fixture
def moderator(db) -> factories.Actor:
    return factories.make_moderator(username="moderator-a")


def worker_environment() -> dict[str, str]:
    """The environment for a worker process: the same settings as the tests, pointed
    at the test database (which pytest-django created under another name)."""
    from django.db import connection

    env = dict(os.environ)
    settings_dict = connection.settings_dict
    if connection.vendor == "postgresql":
        user = quote(settings_dict.get("USER") or "postgres")
        password = f":{quote(settings_dict['PASSWORD'])}" if settings_dict.get("PASSWORD") else ""
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """A real ``celery worker`` process consuming the given queues."""

    def __init__(self, *, queues: str = "default,ingest,quality", concurrency: int = 1, name: str = "w1", extra_env: dict | None = None) -> None:
        self.queues, self.concurrency, self.name = queues, concurrency, name
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None
        self.log_path = ROOT / "var" / f"worker-{name}-{os.getpid()}.log"

    def start(self) -> WorkerProcess:
        env = worker_environment() | self.extra_env
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker",
            "-Q", self.queues, "-c", str(self.concurrency), "-n", f"{self.name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "-l", "INFO",
        ]
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early; log: {self.log_path.read_text()[-3000:]}")
            if b"ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        raise RuntimeError(f"worker did not become ready; log: {self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = 9) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


def purge_queues() -> None:
    from workers.celery import QUEUES, app

    with app.connection_for_write() as conn:
        for queue in QUEUES:
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue that does not exist yet is empty
                pass


@pytest.fixture
def celery_worker(transactional_db):
    """One real worker process on all queues, against the test database.

    Tests that use it must commit their data (``transactional_db``), as a worker in
    another process sees only committed rows.
    """
    purge_queues()
    worker = WorkerProcess().start()
    yield worker
    worker.stop()


@pytest.fixture
def worker_factory(transactional_db):
    """Start several workers (e.g. a sharded evaluation, or a kill test)."""
    purge_queues()
    started: list[WorkerProcess] = []

    def start(**kwargs) -> WorkerProcess:
        kwargs.setdefault("name", f"w{len(started) + 1}")
        worker = WorkerProcess(**kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
