"""One command for a laptop: a real Celery worker (all queues, with beat for the sweeper)
and the Django server on 127.0.0.1:$PORT, in the foreground; Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the API (127.0.0.1:$PORT, default 8000) and one worker with beat on all queues; Ctrl-C stops both."

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
        stopping = {"now": False}

        def stop(signum=None, frame=None):
            stopping["now"] = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            procs.append(subprocess.Popen(worker_cmd, cwd=root, env=env, start_new_session=True))
            procs.append(subprocess.Popen(web_cmd, cwd=root, env=env, start_new_session=True))
            self.stdout.write(f"API on http://127.0.0.1:{options['port']}/ (docs: /api/v1/docs/); worker + beat running. Ctrl-C stops both.")
            if options["seed_demo"]:
                seed = subprocess.Popen([sys.executable, "manage.py", "seed_demo"], cwd=root, env=env, start_new_session=True)
                procs.append(seed)
            while not stopping["now"]:
                if any(p.poll() is not None for p in procs[:2]):
                    self.stderr.write("a process exited; stopping the rest")
                    break
                time.sleep(0.5)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)  # the worker's warm shutdown stops its pool and beat
            deadline = time.monotonic() + 20
            for proc in procs:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self.stdout.write("stopped")
