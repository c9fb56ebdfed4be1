"""Listing search at 100k and 1M listings against /healthz on the same server.

Opt-in (``make bench-search``, ``python bench/run.py --search`` / ``make bench-full``; without
``--search`` it says so and exits 0). For each size N it uses its own PostgreSQL database,
``search_bench_100k`` / ``search_bench_1m`` (``SEARCH_BENCH_DB_PREFIX`` changes the prefix),
seeded once with a realistic catalogue (bench/search_catalogue.py, PostgreSQL COPY, about a
minute per 100k listings) and reused by later runs (``--rebuild`` to redo; a database seeded
by another seed format or size is rebuilt). It migrates the database, starts gunicorn on
127.0.0.1 (2 workers x 4 threads, as ``make load``), sends warm-up requests (reported apart:
the first request may build an in-process model; then searches on fresh connections until
every worker has built its own), then four timed runs on the same server:
search and ``/healthz`` with 1 client, then with 8 clients. Every client is a thread with
its own persistent HTTP/1.1 connection (keep-alive); the client's CPU time is measured
and printed beside the gunicorn workers' so a client-bound run shows.

The search requests cycle through a fixed mix of queries (filters, facets, every ordering,
pages, full text); each request also carries a distinct ``price_max`` above every price (it
removes no listing) so the facet cache never answers: these are cold-facet figures.

Prints p50/p95/p99 and requests/s per run, the ratios (search / healthz throughput, 1M p95 /
100k p95), the gunicorn workers' RSS, and the targets of issue 18 as met or MISSED (exit 1
when one is missed or a request failed). Writes ``var/bench/search.json``.

    python bench/search_bench.py --search [--listings 100000 1000000] [--clients 8] [--seconds 20]
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
# gunicorn runs in this folder, not in the checkout, so the checkout's folders never shadow
# the installed package (make bench installs it).
VAR = ROOT / "var" / "bench-search"

# Issue 18's targets.
TARGET_P95_MS = 50.0  # single client, at 100k
TARGET_HEALTHZ_SHARE = 0.20  # 8 clients, search req/s over healthz req/s, at 100k
TARGET_GROWTH = 2.0  # single-client p95 at 1M over 100k

# What a buyer clicks through: filters alone and combined, facets (every search returns
# them), each ordering, later pages, full text alone and with filters; vocabulary values by
# slug, name or alias as buyers type them.
QUERIES: list[dict[str, str | list[str]]] = [
    {},
    {"embodiment": "franka-panda"},
    {"embodiment": ["UR5e", "franka-panda"], "task": "pick-and-place", "ordering": "-mask_iou"},
    {"task": ["grasping", "bin-picking"], "commercial_use": "true", "ordering": "quality_adjusted_cost"},
    {"tier": ["fine", "premium"], "annotation_kind": "instances", "price_max": "5000", "ordering": "price"},
    {"q": "cluttered kitchen"},
    {"q": "transparent bottle", "scene": "kitchen", "ordering": "relevance"},
    {"scene": "warehouse", "no_share_alike": "true", "frames_min": "10000", "ordering": "-published_at"},
    {"verified_only": "true", "min_ap": "0.5", "category": ["mug", "bottle"], "ordering": "quality_adjusted_cost"},
    {"embodiment": ["humanoid", "aloha"], "task": "folding", "derivatives": "true"},
    {"ordering": "-published_at", "page": "2"},
    {"sensor": ["rgbd", "depth"], "min_occlusion": "0.3", "min_embodiments": "2", "ordering": "diversity"},
    {"annotation_kind": "video", "min_temporal_iou": "0.7", "ordering": "-mask_iou"},
    {"min_mask_iou": "0.85", "commercial_use": "true", "embodiment": "widowx", "page": "3"},
    {"q": "deformable garments", "task": "folding", "commercial_use": "true"},
    {"annotation_kind": "panoptic", "scene": ["household", "office"], "ordering": "price"},
    {"category": "tote", "task": "bin-picking", "frames_min": "50000", "ordering": "diversity"},
    {"min_agreement": "0.8", "tier": "premium", "ordering": "-published_at", "page": "5"},
    {"q": "warehouse tote picking", "ordering": "quality_adjusted_cost"},
    {"sensor": "thermal", "commercial_use": "false"},
]


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def bench_db(n: int) -> tuple[str, str]:
    """(name, URL) of the benchmark database for ``n`` listings."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketplace")
    if not base.startswith(("postgres://", "postgresql://")):
        raise SystemExit("search bench needs PostgreSQL (DATABASE_URL)")
    name = f"{os.environ.get('SEARCH_BENCH_DB_PREFIX', 'search_bench')}_{size_label(n)}"
    return name, base.rsplit("/", 1)[0] + "/" + name


def server_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="marketplace.settings",
        MARKET_PROFILE="dev",
        DEBUG="false",
        THROTTLE_ANON="100000000/min",
        THROTTLE_USER="100000000/min",
        MARKET_VAR_DIR=str(VAR),
    )
    return env


# ---------------------------------------------------------------- the catalogue


def _admin_connection():
    import psycopg2

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketplace")
    conn = psycopg2.connect(base.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    return conn


def _seeded_as(url: str) -> dict | None:
    """The seeding record of the database (None: absent, or not seeded to the end)."""
    import psycopg2

    try:
        conn = psycopg2.connect(url)
    except psycopg2.OperationalError:
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('search_bench_seeded') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT record FROM search_bench_seeded")
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


def ensure_catalogue(n: int, *, rebuild: bool) -> dict:
    """The database of ``n`` listings, migrated and seeded (reused when it already is)."""
    from search_catalogue import SEED_FORMAT

    name, url = bench_db(n)
    record = None if rebuild else _seeded_as(url)
    if record is None or record.get("format") != SEED_FORMAT or record.get("listings") != n:
        admin = _admin_connection()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
        admin.close()
        print(f"catalogue: seeding {n} listings into {name}", flush=True)
    else:
        print(f"catalogue: reusing {name} ({n} listings seeded {record.get('seeded_at')} in {record.get('seconds')} s)", flush=True)
    # Migrations (a reused database follows the code), the seeding when needed, and the
    # facet cache's generation bumped: facets cached for another catalogue are never read.
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--prepare", str(n)], env=server_env(url), check=True, cwd=VAR)
    return _seeded_as(url) or {}


def prepare(n: int) -> int:
    """In a child process whose settings point at the benchmark database."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from marketplace.listings.models import Listing
    from marketplace.listings.search import catalogue_generation_bump

    sys.path.insert(0, str(HERE))
    from search_catalogue import SEED_FORMAT, seed_catalogue

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"catalogue: migrated in {time.perf_counter() - t0:.0f} s", flush=True)
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('search_bench_seeded') IS NOT NULL")
        seeded = cur.fetchone()[0]
    if not seeded:
        if Listing.objects.exists():
            raise SystemExit("catalogue: the database holds listings but no seeding record; rerun with --rebuild")
        result = seed_catalogue(n, log=lambda line: print(line, flush=True))
        record = {"format": SEED_FORMAT, "listings": n, "seeded_at": timezone.now().isoformat(timespec="seconds"), **result}
        with connection.cursor() as cur:
            cur.execute("CREATE TABLE search_bench_seeded (record jsonb NOT NULL)")
            cur.execute("INSERT INTO search_bench_seeded VALUES (%s)", [json.dumps(record)])
    catalogue_generation_bump()
    return 0


# ---------------------------------------------------------------- the load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_pids(master: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return []


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> list[float]:
    out = []
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(round(int(line.split()[1]) / 1024, 1))
        except OSError:
            continue
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Client:
    """One simulated user: a persistent connection, requests one after another."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def get(self, path: str) -> tuple[int, bytes]:
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                self.reconnects += 1
            try:
                self.conn.request("GET", path, headers={"Accept": "application/json"})
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.will_close:
                    self.conn.close()
                    self.conn = None
                return resp.status, body
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def backend_pids(database: str) -> list[int]:
    """The PostgreSQL backends serving the benchmark database (persistent: CONN_MAX_AGE)."""
    conn = _admin_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", [database])
            return [pid for (pid,) in cur.fetchall()]
    finally:
        conn.close()


def run_load(
    port: int, paths: list[str], *, clients: int, seconds: float, min_requests: int, max_seconds: float, master: int, database: str
) -> dict:
    """``clients`` threads send ``paths`` in turn (a shared cursor) for at least ``seconds``
    and ``min_requests`` requests (at most ``max_seconds``)."""
    cursor = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    reconnects = [0] * clients
    start = time.perf_counter()
    soft, hard = start + seconds, start + max_seconds
    done = itertools.count()

    def worker(slot: int) -> None:
        client = Client(port)
        try:
            while True:
                now = time.perf_counter()
                if now >= hard or (now >= soft and next(done) >= min_requests):
                    return
                path = paths[next(cursor) % len(paths)]
                t = time.perf_counter()
                try:
                    status, _body = client.get(path)
                except (http.client.HTTPException, OSError):
                    status = 0
                latencies[slot].append(time.perf_counter() - t)
                errors[slot] += status != 200
        finally:
            reconnects[slot] = client.reconnects
            client.close()

    workers, backends = worker_pids(master), backend_pids(database)
    cpu0, server0, db0, (busy0, total0) = resource.getrusage(resource.RUSAGE_SELF), cpu_seconds(workers), cpu_seconds(backends), machine_busy()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.perf_counter() - start
    backends_after = backend_pids(database)
    # Backends opened during the run count from zero (their whole CPU time is the run's).
    db1 = cpu_seconds(backends_after)
    db0 = db0 - cpu_seconds([pid for pid in backends if pid not in backends_after])
    cpu1, server1, (busy1, total1) = resource.getrusage(resource.RUSAGE_SELF), cpu_seconds(workers), machine_busy()
    all_latencies = sorted(x for lat in latencies for x in lat)
    q = statistics.quantiles(all_latencies, n=100, method="inclusive")
    client_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    cores = os.cpu_count() or 1
    return {
        "clients": clients,
        "requests": len(all_latencies),
        "errors": sum(errors),
        "connections": sum(reconnects),
        "seconds": round(wall, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "max_ms": round(all_latencies[-1] * 1000, 1),
        "req_per_s": round(len(all_latencies) / wall, 1),
        # Shares of one core over the run: the client (this process), the gunicorn workers,
        # and the whole machine's busy share of all its cores (other users' work included).
        "client_cpu": round(client_cpu / wall, 2),
        "client_cpu_us_per_request": round(client_cpu / max(len(all_latencies), 1) * 1e6),
        "server_cpu": round((server1 - server0) / wall, 2),
        "postgres_cpu": round(max(db1 - db0, 0.0) / wall, 2),
        "machine_busy": round((busy1 - busy0) / max(total1 - total0, 1e-9), 2),
        "cores": cores,
        "load": load_average(),
    }


def search_paths() -> list[str]:
    # A distinct price_max above every price on each request: it removes no listing, and
    # the facet cache (keyed by the filters) never answers.
    paths = []
    for i in range(len(QUERIES) * 50):
        query = dict(QUERIES[i % len(QUERIES)])
        if "price_max" not in query:
            query["price_max"] = str(10_000_000 + i)
        paths.append("/api/v1/listings/?" + urllib.parse.urlencode(query, doseq=True))
    return paths


def warm_every_worker(port: int, paths: list[str], workers: list[int], rss_idle: list[float], *, clients: int, timeout: float = 900.0) -> int:
    """Send searches until every worker has built its index (its RSS grew by at least half of
    what the first search's worker grew): rounds of ``clients`` fresh connections at once,
    one search each. The kernel hands a connection to whichever worker accepts first, so a
    few keep-alive connections can all land on one worker, and the other would build its
    index inside a timed run. Returns the searches sent."""
    grown = max((now - idle for now, idle in zip(rss_mb(workers), rss_idle, strict=False)), default=0.0)
    deadline, sent = time.perf_counter() + timeout, 0

    def one(path: str) -> None:
        client = Client(port)
        try:
            client.get(path)
        finally:
            client.close()

    while True:
        rss = rss_mb(workers)
        if all(now - idle >= grown / 2 for now, idle in zip(rss, rss_idle, strict=False)):
            return sent
        if time.perf_counter() > deadline:
            raise SystemExit(f"a gunicorn worker did not build its index within {timeout:.0f} s (RSS {rss} MB, idle {rss_idle} MB)")
        pool = [threading.Thread(target=one, args=(paths[(sent + i) % len(paths)],)) for i in range(clients)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        sent += clients


def wait_ready(port: int, server: subprocess.Popen) -> None:
    for _ in range(600):
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before answering")
        try:
            client = Client(port)
            status, _ = client.get("/healthz")
            client.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def bench_size(n: int, args) -> dict:
    record = ensure_catalogue(n, rebuild=args.rebuild)
    name, url = bench_db(n)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "marketplace.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", str(args.workers), "--threads", str(args.threads), "--timeout", "300", "--log-level", "warning"],
        cwd=VAR,
        env=server_env(url),
    )
    try:
        wait_ready(port, server)
        paths = search_paths()
        workers = worker_pids(server.pid)
        rss_idle = rss_mb(workers)
        # Warm-up: the first search alone (it may build an in-process model), searches until
        # every worker has built its own, then every query shape from as many connections as
        # the timed runs use, so each worker has answered before the clock starts.
        client = Client(port)
        t = time.perf_counter()
        status, body = client.get(paths[0])
        first_ms = (time.perf_counter() - t) * 1000
        client.close()
        if status != 200:
            raise SystemExit(f"search answered {status}: {body[:500]!r}")
        warmed = warm_every_worker(port, paths, workers, rss_idle, clients=args.clients)
        client = Client(port)
        for path in paths[: len(QUERIES)]:
            status, body = client.get(path)
            page = json.loads(body) if status == 200 else {}
            if "facets" not in page or "results" not in page:
                raise SystemExit(f"search answered {status} to {path}: {body[:500]!r}")
        client.close()
        warm = run_load(
            port, paths[len(QUERIES) :], clients=args.clients, seconds=0, min_requests=args.warmup, max_seconds=600, master=server.pid, database=name
        )
        runs = {}
        for clients in (1, args.clients):
            for what, run_paths in (("search", paths), ("healthz", ["/healthz"])):
                runs[f"{what}_{clients}"] = run_load(
                    port,
                    run_paths,
                    clients=clients,
                    seconds=args.seconds,
                    min_requests=args.min_requests,
                    max_seconds=args.max_seconds,
                    master=server.pid,
                    database=name,
                )
                r = runs[f"{what}_{clients}"]
                print(
                    f"  {n:>9,} listings  {what:7s} {clients} client{'s' if clients > 1 else ' '}  p50 {r['p50_ms']:8.1f}  p95 {r['p95_ms']:8.1f}  "
                    f"p99 {r['p99_ms']:8.1f} ms  {r['req_per_s']:7.1f} req/s  ({r['requests']} requests, {r['errors']} errors; "
                    f"CPU in cores: client {r['client_cpu']:.2f} ({r['client_cpu_us_per_request']} us/request), gunicorn {r['server_cpu']:.2f}, "
                    f"postgres {r['postgres_cpu']:.2f}; machine {r['machine_busy']:.0%} busy, load {r['load']})",
                    flush=True,
                )
        rss_after = rss_mb(worker_pids(server.pid))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {
        "listings": n,
        "database": name,
        "seeding": record,
        "gunicorn": f"{args.workers} workers x {args.threads} threads",
        "first_request_ms": round(first_ms, 1),
        "searches_until_every_worker_built": warmed,
        "warmup": {k: warm[k] for k in ("requests", "seconds", "p50_ms", "max_ms")},
        "runs": runs,
        "worker_rss_mb": {"idle": rss_idle, "after": rss_after},
    }


def report(results: list[dict], clients: int) -> tuple[list[str], bool]:
    """The summary lines and whether every target was met."""
    lines = []
    for r in results:
        runs = r["runs"]
        one, many = runs["search_1"], runs[f"search_{clients}"]
        share = many["req_per_s"] / runs[f"healthz_{clients}"]["req_per_s"]
        lines.append(
            f"{r['listings']:>9,} listings: search p95 {one['p95_ms']:.1f} ms (1 client), {many['p95_ms']:.1f} ms ({clients}); "
            f"search/healthz throughput {one['req_per_s'] / runs['healthz_1']['req_per_s']:.2%} (1 client), {share:.2%} ({clients}); "
            f"first request {r['first_request_ms']:.0f} ms, every worker's index built after {r['searches_until_every_worker_built']} more, "
            f"warm-up {r['warmup']['requests']} requests in {r['warmup']['seconds']} s; "
            f"gunicorn worker RSS {r['worker_rss_mb']['after']} MB (idle {r['worker_rss_mb']['idle']})"
        )
    by_size = {r["listings"]: r for r in results}
    base = by_size.get(100_000) or results[0]
    large = by_size.get(1_000_000) or (results[-1] if len(results) > 1 else None)
    ok = True

    def verdict(name: str, met: bool | None, detail: str) -> None:
        nonlocal ok
        state = "not measured" if met is None else ("met" if met else "MISSED")
        ok &= met is not False
        lines.append(f"target {name}: {state} ({detail})")

    p95 = base["runs"]["search_1"]["p95_ms"]
    verdict(f"single-client search p95 <= {TARGET_P95_MS:.0f} ms at {base['listings']:,}", p95 <= TARGET_P95_MS, f"{p95:.1f} ms")
    share = base["runs"][f"search_{clients}"]["req_per_s"] / base["runs"][f"healthz_{clients}"]["req_per_s"]
    verdict(f"{clients}-client search throughput >= {TARGET_HEALTHZ_SHARE:.0%} of /healthz at {base['listings']:,}", share >= TARGET_HEALTHZ_SHARE, f"{share:.1%}")
    if large is None or large is base:
        verdict(f"p95 at 1M <= {TARGET_GROWTH:.0f}x the 100k p95", None, "needs two sizes")
    else:
        growth = large["runs"]["search_1"]["p95_ms"] / p95
        many_growth = large["runs"][f"search_{clients}"]["p95_ms"] / base["runs"][f"search_{clients}"]["p95_ms"]
        verdict(
            f"single-client p95 at {large['listings']:,} <= {TARGET_GROWTH:.0f}x the {base['listings']:,} p95",
            growth <= TARGET_GROWTH,
            f"{growth:.2f}x; {many_growth:.2f}x under {clients} clients",
        )
    failed = sum(run["errors"] for r in results for run in r["runs"].values())
    if failed:
        ok = False
        lines.append(f"{failed} requests failed")
    return lines, ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", action="store_true", help="run this benchmark (opt-in)")
    ap.add_argument("--listings", type=int, nargs="+", default=[100_000, 1_000_000], help="catalogue sizes (default: 100000 1000000)")
    ap.add_argument("--clients", type=int, default=8, help="clients of the concurrent runs (the other runs have one)")
    ap.add_argument("--seconds", type=float, default=20.0, help="least duration of each timed run")
    ap.add_argument("--min-requests", type=int, default=200, help="least requests of each timed run (p99 needs 100)")
    ap.add_argument("--max-seconds", type=float, default=180.0, help="most duration of each timed run")
    ap.add_argument("--warmup", type=int, default=80, help="warm-up requests before the timed runs")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    ap.add_argument("--rebuild", action="store_true", help="reseed the catalogues even when they are already seeded")
    ap.add_argument("--seed-only", action="store_true", help="seed (or check) the catalogues and stop")
    ap.add_argument("--prepare", type=int, help=argparse.SUPPRESS)
    args, _rest = ap.parse_known_args()
    if args.prepare:
        return prepare(args.prepare)
    if not args.search:
        print("search bench: skipped (opt-in: pass --search, e.g. make bench-search)")
        return 0
    sys.path.insert(0, str(HERE))
    VAR.mkdir(parents=True, exist_ok=True)
    print(
        f"search bench: {', '.join(f'{n:,}' for n in args.listings)} listings; gunicorn {args.workers} workers x {args.threads} threads; "
        f"1 and {args.clients} keep-alive clients, >= {args.seconds:.0f} s and >= {args.min_requests} requests per run; "
        f"{os.cpu_count()} cores, load {load_average()}",
        flush=True,
    )
    if args.seed_only:
        for n in sorted(args.listings):
            ensure_catalogue(n, rebuild=args.rebuild)
        return 0
    results = [bench_size(n, args) for n in sorted(args.listings)]
    lines, ok = report(results, args.clients)
    for line in lines:
        print(line)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps({"results": results, "summary": lines, "targets_met": ok}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
