"""Load test: gunicorn on 127.0.0.1 with a seeded catalogue; concurrent buyers search,
open listings and download entitled files while sellers upload, for a bounded time and
request count. Reports throughput, latency percentiles, error rate and the RSS of
gunicorn's processes.

    python load/run.py [--seconds 30] [--buyers 6] [--sellers 2] [--max-requests 20000]

Uses PostgreSQL when DATABASE_URL is set (a throw-away database ``<name>_load`` is
created next to it), else SQLite; always local object storage (downloads are served by
the API's signed /files/ links, so they load gunicorn too). Redis for the cache/throttles
when CELERY_BROKER_URL says redis. Writes var/load-report.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_database(env: dict) -> str | None:
    """A fresh database for the run: ``<name>_load`` beside DATABASE_URL's (PostgreSQL)."""
    url = env.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return None
    parsed = urlparse(url)
    name = (parsed.path.lstrip("/") or "marketplace") + "_load"
    admin = urlunparse(parsed._replace(path="/postgres"))
    import psycopg2

    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return urlunparse(parsed._replace(path=f"/{name}"))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


class Stats:
    def __init__(self, max_requests: int) -> None:
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.examples: list[str] = []
        self.count = 0
        self.max_requests = max_requests

    def record(self, op: str, seconds: float, ok: bool, detail: str = "") -> bool:
        with self.lock:
            self.lat[op].append(seconds)
            self.count += 1
            if not ok:
                self.errors[op] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{op}: {detail[:200]}")
            return self.count < self.max_requests


def timed(stats: Stats, session: requests.Session, op: str, method: str, url: str, expect: tuple[int, ...], **kw):
    t0 = time.perf_counter()
    try:
        resp = session.request(method, url, timeout=30, **kw)
        ok = resp.status_code in expect
        more = stats.record(op, time.perf_counter() - t0, ok, f"{resp.status_code} {resp.text[:150]}")
        return resp, more
    except requests.RequestException as exc:
        more = stats.record(op, time.perf_counter() - t0, False, repr(exc))
        return None, more


def buyer_loop(base: str, seed: dict, stats: Stats, stop: threading.Event, rnd: random.Random) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Token {seed['buyer']}"
    queries = ["robot", "warehouse", "kitchen gripper", "drone", "masks", "sorting"]
    while not stop.is_set():
        params = {"q": rnd.choice(queries), "page_size": 20}
        if rnd.random() < 0.3:
            params["ordering"] = rnd.choice(["-published_at", "price", "-mask_iou", "quality_adjusted_cost"])
        _, more = timed(stats, s, "search", "GET", f"{base}/api/v1/listings/", (200,), params=params)
        if not more:
            break
        _, more = timed(stats, s, "listing", "GET", f"{base}/api/v1/listings/{rnd.choice(seed['slugs'])}/", (200,))
        if not more:
            break
        ent = rnd.choice(seed["entitlements"])
        resp, more = timed(stats, s, "manifest", "GET", f"{base}/api/v1/entitlements/{ent}/files/", (200,))
        if not more:
            break
        if resp is not None and resp.status_code == 200:
            files = resp.json().get("results", [])
            if files:
                url = rnd.choice(files)["url"]
                url = url if url.startswith("http") else base + url
                _, more = timed(stats, requests, "download", "GET", url, (200,))
                if not more:
                    break


def seller_loop(base: str, seller: dict, stats: Stats, stop: threading.Event, rnd: random.Random, size: int) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Token {seller['token']}"
    n = 0
    while not stop.is_set():
        n += 1
        data = os.urandom(size)
        body = {"role": "images", "name": f"upload-{threading.get_ident()}-{n}.bin", "size": size, "sha256": hashlib.sha256(data).hexdigest()}
        resp, more = timed(stats, s, "upload-start", "POST", f"{base}/api/v1/versions/{seller['version']}/uploads/", (201,), json=body)
        if not more or resp is None or resp.status_code != 201:
            if not more:
                break
            continue
        upload = resp.json()["id"]
        headers = {"Content-Range": f"bytes 0-{size - 1}/{size}", "Content-Type": "application/octet-stream"}
        _, more = timed(stats, s, "upload-part", "PUT", f"{base}/api/v1/uploads/{upload}/parts/1/", (200, 201), data=data, headers=headers)
        if not more:
            break
        # No worker runs here: complete is accepted (verifying) and the upload is left to the sweeper.
        _, more = timed(stats, s, "upload-complete", "POST", f"{base}/api/v1/uploads/{upload}/complete/", (200, 202))
        if not more:
            break


def gunicorn_rss(master: psutil.Process) -> int:
    try:
        procs = [master, *master.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())
    except psutil.Error:
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--buyers", type=int, default=6)
    ap.add_argument("--sellers", type=int, default=2)
    ap.add_argument("--max-requests", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    ap.add_argument("--datasets", type=int, default=30)
    ap.add_argument("--upload-kb", type=int, default=256)
    args = ap.parse_args()

    var = Path(tempfile.mkdtemp(prefix="market-load-"))
    env = dict(os.environ)
    env.update(
        MARKET_PROFILE="dev", DEBUG="false", MARKET_VAR_DIR=str(var), PYTHONPATH=str(ROOT),
        DJANGO_SETTINGS_MODULE="marketplace.settings",
        THROTTLE_ANON="1000000/min", THROTTLE_USER="1000000/min", THROTTLE_AUTH="1000000/min",
        LOAD_DATASETS=str(args.datasets), LOAD_SELLERS=str(args.sellers),
    )
    for name in ("AWS_STORAGE_BUCKET_NAME", "AWS_S3_ENDPOINT_URL"):
        env.pop(name, None)  # local storage: downloads go through gunicorn's /files/ links
    db = load_database(env)
    if db:
        env["DATABASE_URL"] = db
    print(f"load: database={'PostgreSQL ' + urlparse(db).path if db else 'SQLite'} var={var}", flush=True)
    subprocess.run([PY, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([PY, "load/seed.py"], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    seed = json.loads(out.split("SEED", 1)[1])

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(var / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [PY, "-m", "gunicorn", "marketplace.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(args.workers),
         "--threads", str(args.threads), "-k", "gthread", "--timeout", "60", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print((var / "gunicorn.log").read_text()[-3000:], file=sys.stderr)
                return 1
            time.sleep(0.3)
        master = psutil.Process(server.pid)
        rss_idle = gunicorn_rss(master)
        stats = Stats(args.max_requests)
        stop = threading.Event()
        rss_samples: list[int] = []
        threads = [threading.Thread(target=buyer_loop, args=(base, seed, stats, stop, random.Random(i)), daemon=True) for i in range(args.buyers)]
        threads += [threading.Thread(target=seller_loop, args=(base, seller, stats, stop, random.Random(100 + i), args.upload_kb * 1024), daemon=True) for i, seller in enumerate(seed["sellers"])]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        while time.perf_counter() - t0 < args.seconds and any(t.is_alive() for t in threads):
            rss_samples.append(gunicorn_rss(master))
            time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=35)
        elapsed = time.perf_counter() - t0
        rss_samples.append(gunicorn_rss(master))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    all_lat = [x for v in stats.lat.values() for x in v]
    errors = sum(stats.errors.values())
    report = {
        "seconds": round(elapsed, 1), "buyers": args.buyers, "sellers": args.sellers,
        "gunicorn": f"{args.workers} workers x {args.threads} threads", "database": "postgresql" if db else "sqlite",
        "requests": len(all_lat), "throughput_rps": round(len(all_lat) / elapsed, 1),
        "p50_ms": round(percentile(all_lat, 50) * 1000, 1), "p95_ms": round(percentile(all_lat, 95) * 1000, 1),
        "p99_ms": round(percentile(all_lat, 99) * 1000, 1),
        "errors": errors, "error_rate": round(errors / max(1, len(all_lat)), 4),
        "rss_idle_mb": round(rss_idle / 2**20, 1), "rss_peak_mb": round(max(rss_samples or [0]) / 2**20, 1),
        "operations": {
            op: {"n": len(v), "p50_ms": round(percentile(v, 50) * 1000, 1), "p95_ms": round(percentile(v, 95) * 1000, 1), "mean_ms": round(statistics.fmean(v) * 1000, 1), "errors": stats.errors.get(op, 0)}
            for op, v in sorted(stats.lat.items())
        },
        "error_examples": stats.examples,
    }
    print(f"\nload: {report['requests']} requests in {report['seconds']} s = {report['throughput_rps']} req/s; "
          f"p50 {report['p50_ms']} ms, p95 {report['p95_ms']} ms, p99 {report['p99_ms']} ms; "
          f"errors {errors} ({report['error_rate']:.2%}); gunicorn RSS idle {report['rss_idle_mb']} MB, peak {report['rss_peak_mb']} MB")
    print(f"{'operation':<16}{'n':>7}{'p50 ms':>9}{'p95 ms':>9}{'mean ms':>9}{'errors':>8}")
    for op, row in report["operations"].items():
        print(f"{op:<16}{row['n']:>7}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['mean_ms']:>9}{row['errors']:>8}")
    for line in stats.examples:
        print("  error:", line)
    out_path = ROOT / "var" / "load-report.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2))
    shutil.rmtree(var, ignore_errors=True)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
