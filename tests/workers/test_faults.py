"""Faults lose nothing (security.md): over several submitted versions, a worker is killed
with SIGKILL in the middle of a quality step, Redis restarts once (losing every queued
message: it runs without persistence) and PostgreSQL stops for a few seconds. Afterwards
every version is final, each has exactly one report per kind, no job is stuck, and the
store and the rows agree.

The sweeper (beat's task in production) is called here in the test process, on the
same short deadlines the workers were given.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from datasets.states import VersionState
from marketplace.demo import DemoSpec, dataset_submit_generated, version_state

pytestmark = [pytest.mark.worker, pytest.mark.slow]

STEP_TIMEOUT = 12
WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_STEP_TIMEOUT": str(STEP_TIMEOUT), "PIPELINE_MAX_RETRIES": "3", "PIPELINE_RETRY_BACKOFF_MAX": "4", "PIPELINE_AUDIT_REQUIRED": "false"}
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


def _redis_restart() -> None:
    subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], check=False, capture_output=True, timeout=20)
    subprocess.run(REDIS_START, check=True, capture_output=True, timeout=20)
    for _ in range(50):
        if subprocess.run(["redis-cli", "-p", "6379", "ping"], capture_output=True, text=True).stdout.strip() == "PONG":
            return
        time.sleep(0.1)
    raise RuntimeError("redis did not come back")


def _postgres(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True, capture_output=True, timeout=60)


def _quietly(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the outage is the point; the next round retries
        connection.close()
        return None


def _store_and_rows_agree(version) -> None:
    from datasets.models import DatasetFile
    from marketplace.core.storage import get_storage
    from quality.models import QualityReport

    storage = get_storage()
    rows = set(DatasetFile.objects.filter(version=version).values_list("storage_key", flat=True))
    for report in QualityReport.objects.filter(version=version):
        artifacts = report.artifacts or {}
        rows |= {k for k in [artifacts.get("report")] if k}
        rows |= set((artifacts.get("plots") or {}).values())
    stored = set(storage.list_keys(f"versions/{version.pk}/"))
    assert stored - rows == set(), f"objects without a row: {sorted(stored - rows)[:5]}"
    assert rows - stored == set(), f"rows without an object: {sorted(rows - stored)[:5]}"


def test_kill_a_worker_restart_redis_and_blink_postgres_over_several_versions(worker_factory, seller, settings):
    from quality.models import QualityReport
    from quality.selectors import applicable_report_kinds
    from workers.models import ACTIVE_STATES, Job, JobState
    from workers.sweeper import pipeline_sweep

    settings.PIPELINE_STEP_TIMEOUT = STEP_TIMEOUT
    settings.PIPELINE_AUDIT_REQUIRED = False
    worker_factory(queues="default,ingest", name="cpu1", extra_env=WORKER_ENV)
    gpu = worker_factory(queues="quality", name="gpu1", extra_env=WORKER_ENV)

    versions = [
        dataset_submit_generated(seller_user=seller.user, org=seller.org, spec=DemoSpec(f"fault-{i}", f"Fault {i}", "generated", images=40, seed=20 + i, noise=0.15, price="1.00"))
        for i in range(3)
    ]

    # 1. SIGKILL the quality worker while a quality step runs.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not Job.objects.filter(step__startswith="quality_", state=JobState.RUNNING).exists():
        time.sleep(0.05)
    killed_mid_step = Job.objects.filter(step__startswith="quality_", state=JobState.RUNNING).exists()
    gpu.kill(9)
    assert killed_mid_step, "no quality step was seen running"
    worker_factory(queues="quality", name="gpu2", extra_env=WORKER_ENV)

    # 2. Redis restarts once (1-2 s outage; every queued message is lost).
    _redis_restart()
    # 3. PostgreSQL stops for ~3 s.
    connection.close()
    _postgres("stop")
    time.sleep(3)
    _postgres("start")
    connection.close()

    final = (VersionState.IN_REVIEW, VersionState.FAILED, VersionState.FAILED_VALIDATION)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = _quietly(lambda: [version_state(v.pk) for v in versions])
        if states and all(s in final for s in states):
            break
        _quietly(pipeline_sweep)
        time.sleep(2)

    for version in versions:
        version.refresh_from_db()
        jobs = list(Job.objects.filter(version=version).values_list("step", "state", "attempts", "error"))
        assert version.state == VersionState.IN_REVIEW, (version.state, jobs)
        assert not Job.objects.filter(version=version, state__in=ACTIVE_STATES).exists()
        for kind in applicable_report_kinds(version=version):
            if kind == "audit":  # no auditor in this test: the audit is optional here
                assert not QualityReport.objects.filter(version=version, kind=kind).exists()
                continue
            assert QualityReport.objects.filter(version=version, kind=kind).count() == 1, (kind, jobs)
        _store_and_rows_agree(version)
