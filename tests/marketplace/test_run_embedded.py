"""``make run`` (manage.py run_embedded) stops every process it started, on SIGTERM as on
Ctrl-C: the API server, the Celery worker with its pool and beat, and the demo seeding.
The command runs with the embedded defaults in a folder of its own (SQLite, the
filesystem broker, local storage), as on a laptop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:  # noqa: S310 - the local test server
            return resp.status == 200
    except OSError:
        return False


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL], ids=["sigterm", "ctrl-c", "hangup", "killed-outright"]
)
def test_run_embedded_stops_every_process_it_started(tmp_path, stop_signal):
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "MARKET_PROFILE": "dev",
        "MARKET_VAR_DIR": str(tmp_path / "var"),
        "QUALITY_DEVICE": "cpu",
        "PYTHONUNBUFFERED": "1",
    }
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed below
    runner = subprocess.Popen([sys.executable, "manage.py", "run_embedded", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        # Up means: the API answers and the worker has forked its pool and beat.
        while time.monotonic() < deadline:
            started = _tree(runner.pid)
            worker_children = [p for p in started if "celery" in " ".join(p.cmdline()) and p.ppid() != runner.pid]
            if _answers(port) and len(worker_children) >= 2:
                break
            assert runner.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            pytest.fail("run_embedded did not come up: " + (tmp_path / "run.log").read_text()[-3000:])
        time.sleep(1)
        started = _tree(runner.pid)
        assert len(started) >= 4, [p.cmdline() for p in started]  # worker, its pool, beat, the server

        runner.send_signal(stop_signal)
        # Killed outright, the command cleans nothing up: its children hear of its death
        # from the kernel (PR_SET_PDEATHSIG) and stop on their own.
        assert runner.wait(timeout=60) == (-signal.SIGKILL if stop_signal == signal.SIGKILL else 0)
        deadline = time.monotonic() + 30
        while _alive(started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _alive(started) == [], (tmp_path / "run.log").read_text()[-3000:]
        assert not _answers(port)
    finally:
        if runner.poll() is None:
            runner.kill()
        for p in _tree(runner.pid) + started:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        log.close()
