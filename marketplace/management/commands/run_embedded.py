"""One command for a laptop: a real Celery worker (all queues, with beat for the sweeper)
and the Django server on 127.0.0.1:$PORT, in the foreground. Ctrl-C, SIGTERM or a hang-up
stops every process it started.

Each child runs in a session (process group) of its own, so that a Ctrl-C reaches the
worker once, through this command, and the worker's warm shutdown is not cut short; the
price is that nothing stops those groups but this command. So it signals whole groups
(the worker's pool and beat with it), waits until each group is empty, and kills what is
left after a grace period; and on Linux each child is told to receive SIGTERM should this
command die without cleaning up (``PR_SET_PDEATHSIG``: a SIGKILL, a crash)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# The worker's warm shutdown finishes the task in hand; past this, the groups are killed.
GRACE_SECONDS = 20
PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    """Run in each child between fork and exec: SIGTERM to it when its parent dies."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def stop_groups(procs: list[subprocess.Popen], *, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every child's process group; reap; SIGKILL the groups still there after ``grace``."""
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        for proc in procs:
            proc.poll()  # reap a leader that exited, so that it stops counting as a member
        if not any(_group_alive(proc.pid) for proc in procs):
            return
        time.sleep(0.2)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGKILL)
    for proc in procs:
        proc.wait()


class Command(BaseCommand):
    help = "Run the API (127.0.0.1:$PORT, default 8000) and one worker with beat on all queues; Ctrl-C or SIGTERM stops both."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
        parser.add_argument("--seed-demo", action="store_true", help="seed the demo through the pipeline once the worker is up")

    def handle(self, *args, **options):
        env = dict(os.environ)
        env.setdefault("QUALITY_DEVICE", "cpu")  # the embedded worker computes on the CPU unless told
        root = settings.BASE_DIR
        schedule = str(settings.CONFIG.var_dir / "celerybeat-schedule")
        worker_cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker", "-B", "-s", schedule,
            "-Q", "default,ingest,quality", "-c", "1" if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") else "2", "-n", "embedded@%h", "-l", "INFO",
        ]
        web_cmd = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{options['port']}", "--noreload"]
        procs: list[subprocess.Popen] = []
        stopping = {"signal": None}

        def stop(signum=None, frame=None):
            stopping["signal"] = signum

        for signum in STOP_SIGNALS:
            signal.signal(signum, stop)

        def start(cmd: list[str]) -> subprocess.Popen:
            proc = subprocess.Popen(cmd, cwd=root, env=env, start_new_session=True, preexec_fn=_child_setup)  # noqa: PLW1509 - no threads here
            procs.append(proc)
            return proc

        try:
            start(worker_cmd)
            start(web_cmd)
            self.stdout.write(f"API on http://127.0.0.1:{options['port']}/ (docs: /api/v1/docs/); worker + beat running. Ctrl-C stops both.")
            if options["seed_demo"]:
                start([sys.executable, "manage.py", "seed_demo"])
            while stopping["signal"] is None:
                if any(p.poll() is not None for p in procs[:2]):
                    self.stderr.write("a process exited; stopping the rest")
                    break
                time.sleep(0.5)
        finally:
            # Signals that arrive from here on must not cut the clean-up short.
            for signum in STOP_SIGNALS:
                signal.signal(signum, signal.SIG_IGN)
            stop_groups(procs)
        self.stdout.write("stopped")
