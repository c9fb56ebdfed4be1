"""Bounded work, with real worker processes: a step past its soft time limit ends as a job
error with a code; past its hard limit its worker process is killed, the job ends
``failed`` with a code and the worker takes the next task; a step whose worker process is
SIGKILLed on every try ends ``failed`` after the allowed attempts instead of pinning
workers forever.

A stuck step is made real, not simulated: another database connection holds an exclusive
lock on the ingest records' table, so the ingest step waits on it as a step stuck on a
lock or on I/O waits (in C, where no Python code of ours runs).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import psutil
import psycopg2
import pytest
from django.db import connection

from datasets.states import VersionState
from marketplace.demo import wait_for
from tests import factories
from tests.listings.pipeline import WORKER_ENV, json_bytes, png, square, submit, wait_settled, zipped

pytestmark = pytest.mark.worker


def _files() -> dict[tuple[str, str], bytes]:
    coco = {
        "images": [{"id": 1, "file_name": "images/0001.png", "width": 48, "height": 48}],
        "annotations": [square(1, 1, 1, 4.0)],
        "categories": [{"id": 1, "name": "bolt"}],
    }
    return {("images", "images.zip"): zipped({"images/0001.png": png(1)}), ("annotations", "annotations.json"): json_bytes(coco)}


@contextmanager
def ingest_blocked():
    """Another connection holds ACCESS EXCLUSIVE on the ingest records' table until the block ends."""
    s = connection.settings_dict
    conn = psycopg2.connect(dbname=s["NAME"], user=s.get("USER") or "postgres", password=s.get("PASSWORD") or None, host=s.get("HOST") or "127.0.0.1", port=s.get("PORT") or 5432)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE datasets_versioningest IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


def _ingest_job(version, **filters):
    from workers.models import Job

    return Job.objects.filter(version=version, step="ingest", **filters).first()


def _pool_processes(worker) -> list[int]:
    return [p.pid for p in psutil.Process(worker.proc.pid).children()]


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _no_traceback(job) -> None:
    for text in (job.message, job.error, str(job.result)):
        assert "Traceback" not in text and 'File "' not in text, text


def test_a_step_past_its_soft_time_limit_ends_as_a_job_error_with_its_code(worker_factory, seller):
    from workers.models import JobState

    worker = worker_factory(extra_env=WORKER_ENV | {"PIPELINE_TIME_LIMITS": "ingest=1:120"})
    with ingest_blocked():
        version = submit(seller, slug="soft-limit", files=_files())
        wait_for(lambda: _ingest_job(version, state=JobState.RUNNING), timeout=60, what="the ingest step to start", interval=0.1)
        wait_for(lambda: b"Soft time limit" in worker.log_path.read_bytes(), timeout=30, what="the soft time limit to pass", interval=0.2)
    # The lock is gone: the step's query returns, and the step stops there.
    job = wait_for(lambda: _ingest_job(version, state=JobState.FAILED), timeout=60, what="the job to end")
    assert job.result["code"] == "step_time_limit"
    assert job.result["location"] == "jobs.ingest"
    assert job.message.startswith("step_time_limit: ") and "1 s" in job.message
    assert job.attempts == 1  # not retried: the same input would take as long again
    _no_traceback(job)
    assert wait_settled(version, timeout=60) == VersionState.FAILED


def test_a_step_past_its_hard_time_limit_ends_failed_and_frees_the_worker(worker_factory, seller):
    from workers.models import JobState
    from workers.tasks import ping

    worker = worker_factory(extra_env=WORKER_ENV | {"PIPELINE_TIME_LIMITS": "ingest=2:4"})
    with ingest_blocked():
        version = submit(seller, slug="hard-limit", files=_files())
        wait_for(lambda: _ingest_job(version, state=JobState.RUNNING), timeout=60, what="the ingest step to start", interval=0.1)
        stuck = _pool_processes(worker)
        assert len(stuck) == 1
        started = time.monotonic()
        job = wait_for(lambda: _ingest_job(version, state=JobState.FAILED), timeout=60, what="the hard time limit", interval=0.2)
        # Ended while the lock is still held: the step never finished on its own.
        assert 3 <= time.monotonic() - started < 30
    assert job.result["code"] == "step_hard_time_limit"
    assert job.message.startswith("step_hard_time_limit: ") and "4 s" in job.message
    _no_traceback(job)
    # the job is recorded first, then the pool kills the process that ran it
    wait_for(lambda: _gone(stuck[0]), timeout=20, what="the stuck process to be killed", interval=0.2)
    # One pool process, and it takes the next task: a new one replaced the killed one.
    pong = ping.delay("after").get(timeout=60)
    assert pong["value"] == "after" and pong["pid"] != stuck[0]
    assert wait_settled(version, timeout=60) == VersionState.FAILED
    assert worker.proc.poll() is None  # the worker itself lives on


def test_a_message_whose_worker_is_killed_on_every_try_ends_failed_after_n_attempts(worker_factory, seller):
    from workers.models import JobState

    attempts = int(WORKER_ENV["PIPELINE_MAX_RETRIES"]) + 1
    worker = worker_factory(extra_env=WORKER_ENV)
    killed = []
    with ingest_blocked():
        version = submit(seller, slug="poison", files=_files())
        for attempt in range(1, attempts + 1):
            wait_for(lambda a=attempt: _ingest_job(version, state=JobState.RUNNING, attempts=a), timeout=60, what=f"attempt {attempt}", interval=0.1)
            pids = _pool_processes(worker)
            assert len(pids) == 1
            os.kill(pids[0], signal.SIGKILL)  # as the kernel's OOM killer would
            killed.append(pids[0])
        job = wait_for(lambda: _ingest_job(version, state=JobState.FAILED), timeout=60, what="the job to be given up", interval=0.2)
    assert job.attempts == attempts
    assert job.result["code"] == "worker_lost"
    assert f"each of its {attempts} attempts" in job.message
    _no_traceback(job)
    assert wait_settled(version, timeout=60) == VersionState.FAILED
    # The message is gone: nothing runs the step again.
    time.sleep(2)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.attempts == attempts
    assert len(set(killed)) == attempts and worker.proc.poll() is None


@contextmanager
def table_locked(table: str):
    """Another connection holds ACCESS EXCLUSIVE on ``table`` until the block ends."""
    s = connection.settings_dict
    conn = psycopg2.connect(dbname=s["NAME"], user=s.get("USER") or "postgres", password=s.get("PASSWORD") or None, host=s.get("HOST") or "127.0.0.1", port=s.get("PORT") or 5432)
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        conn.rollback()
        conn.close()


def _published(seller):
    from quality import services
    from tests.quality.app.data import seed_version, set_state
    from tests.quality.app.evaldata import results_for

    version = factories.make_version(seller=seller)
    data = seed_version(version)
    set_state(version, "published")
    split = services.evaluation_split_get(version=version)
    return version, results_for(data["annotations"], split.image_ids)


@pytest.mark.parametrize(("limits", "seen"), [("evaluation=1:120", b"Soft time limit"), ("evaluation=2:4", b"Hard time limit")])
def test_a_buyer_evaluation_past_its_time_limit_ends_failed_with_its_code(worker_factory, seller, buyer, settings, limits, seen):
    from quality import services
    from quality.models import BuyerEvaluation, EvaluationState
    from workers.tasks import ping

    worker = worker_factory(extra_env=WORKER_ENV | {"PIPELINE_TIME_LIMITS": limits})
    # the API node sends the limits with the task, as every node has the same settings
    settings.QUALITY_EVALUATION_TIME_LIMITS = tuple(float(x) for x in limits.split("=")[1].split(":"))
    version, results = _published(seller)
    # The evaluation reads the version's files first thing: it waits on the lock.
    with table_locked("datasets_datasetfile"):
        evaluation = services.evaluation_create(user=buyer.user, slug=version.dataset.slug, results=results)
        wait_for(lambda: seen in worker.log_path.read_bytes(), timeout=60, what="the time limit", interval=0.2)
        assert BuyerEvaluation.objects.get(pk=evaluation.pk).state in (EvaluationState.RUNNING, EvaluationState.FAILED)
    done = wait_for(lambda: BuyerEvaluation.objects.filter(pk=evaluation.pk, state=EvaluationState.FAILED).first(), timeout=60, what="the evaluation to end")
    assert done.error["code"] == "evaluation_time_limit" and "time limit" in done.error["message"]
    assert done.report == {}
    assert ping.delay("next").get(timeout=60)["value"] == "next"  # the worker takes the next task
    assert worker.proc.poll() is None


def test_an_evaluation_whose_worker_is_killed_on_every_try_ends_failed_after_n_attempts(worker_factory, seller, buyer):
    from quality import services
    from quality.models import BuyerEvaluation, EvaluationState

    attempts = int(WORKER_ENV["PIPELINE_MAX_RETRIES"]) + 1
    worker = worker_factory(extra_env=WORKER_ENV)
    version, results = _published(seller)
    with table_locked("datasets_datasetfile"):
        evaluation = services.evaluation_create(user=buyer.user, slug=version.dataset.slug, results=results)
        for attempt in range(1, attempts + 1):
            wait_for(
                lambda a=attempt: BuyerEvaluation.objects.filter(pk=evaluation.pk, state=EvaluationState.RUNNING, attempts=a).exists(),
                timeout=60, what=f"attempt {attempt}", interval=0.1,
            )
            pids = _pool_processes(worker)
            assert len(pids) == 1
            os.kill(pids[0], signal.SIGKILL)
        done = wait_for(lambda: BuyerEvaluation.objects.filter(pk=evaluation.pk, state=EvaluationState.FAILED).first(), timeout=60, what="the evaluation to be given up", interval=0.2)
    assert done.attempts == attempts
    assert done.error["code"] == "evaluation_worker_lost" and f"each of its {attempts} attempts" in done.error["message"]
    time.sleep(2)
    done.refresh_from_db()
    assert done.state == EvaluationState.FAILED and done.attempts == attempts and worker.proc.poll() is None
