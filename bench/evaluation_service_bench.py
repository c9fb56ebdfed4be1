"""Buyer evaluation end to end: a buyer's ``POST /api/v1/listings/{slug}/evaluations/`` of
the model workload, to the finished report, on ``make run``'s embedded default (SQLite,
the filesystem broker, local storage, one real worker process), beside the engine's own
warm time on the same data.

    python bench/evaluation_service_bench.py              # 100 images, 10,000 predictions
    python bench/evaluation_service_bench.py --full       # 1,000 images, 100,000 predictions
    python bench/evaluation_service_bench.py --images N --runs 3

The model workload is the COCO benchmark's (``bench/synth.py``: about 7.3 reference masks
and 100 predictions an image, ten categories). The version holds it as its declared
``test`` split (``annotations/test.json``), so the public evaluation split is every image
and every prediction is scored; its mask cache is stored as ingest stores it. Then
``manage.py run_embedded`` (API + worker) serves a scratch ``MARKET_VAR_DIR``, and each run
POSTs the predictions as the buyer (one HTTP request, the body JSON) and reads
``/api/v1/evaluations/{id}/`` until it is ``done``.

Per run: ``post`` (the request until its 202: parsing, validating every mask through the
gate against the split, storing the results), ``queue`` (the job's row created until the worker
started: the commit and the broker's delivery; it overlaps the 202's way back), ``worker`` (the worker's own ``seconds``: fetching the mask cache
and the results from storage, scoring, the report), ``end_to_end`` (POST sent until the
client read ``done``; the client reads every 20 ms, so it adds at most that). Beside them,
``engine_warm``: ``evaluate(ReferenceCache.load(cache), results file)`` timed in one
process, the same call the worker makes. The service overhead is ``end_to_end -
engine_warm`` and the ratio ``end_to_end / engine_warm``. Prints one JSON object; exits 1
when an evaluation fails or its AP differs from the engine's own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRUB = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL", "MARKET_STORAGE_ROOT", "DJANGO_SETTINGS_MODULE")
POLL_S = 0.02

# The listing: the workload's reference as the version's declared test split, its mask
# cache stored as ingest stores it (role cache, source = the annotation file), published.
SETUP = """
import hashlib, json, os
from pathlib import Path
from datasets.models import DatasetFile, DatasetVersion
from marketplace.core.storage import get_storage
from quality.engine.cache import build_reference_cache
from tests import factories

gt, cache_path = Path(os.environ["BENCH_GT"]), Path(os.environ["BENCH_CACHE"])
seller = factories.make_seller(username="bench-seller")
buyer = factories.make_buyer(username="bench-buyer")
version = factories.make_version(seller=seller, dataset=factories.make_dataset(seller=seller, slug="bench-model"))
storage = get_storage()

def stored(path, local, role, content_type, source=None):
    raw = local.read_bytes()
    key = f"bench/versions/{version.pk}/{path}"
    storage.put_file(key, local, content_type=content_type)
    return DatasetFile.objects.create(
        version=version, role=role, path=path, size=len(raw), sha256=hashlib.sha256(raw).hexdigest(),
        content_type=content_type, storage_key=key, origin="ingest" if source else "upload", source=source,
    )

annotations = stored("annotations/test.json", gt, "annotations", "application/json")
build_reference_cache(str(gt)).save(cache_path)
stored("_ingest/cache/reference.npz", cache_path, "cache", "application/octet-stream", source=annotations)
DatasetVersion.objects.filter(pk=version.pk).update(state="published")
print(json.dumps({"token": buyer.token, "slug": "bench-model"}))
"""

JOB = """
import json, os
from quality.models import BuyerEvaluation
e = BuyerEvaluation.objects.get(pk=int(os.environ["BENCH_EVALUATION"]))
print(json.dumps({"created": e.created_at.timestamp(), "started": e.started_at.timestamp() if e.started_at else None,
                  "finished": e.finished_at.timestamp() if e.finished_at else None, "seconds": e.seconds}))
"""

ENGINE = """
import json, sys, time
import orjson
from quality.engine.cache import ReferenceCache
from quality.engine.cocoeval import EvalParams, evaluate
reference = ReferenceCache.load(sys.argv[1])
params = EvalParams(img_ids=[int(i) for i in reference.img_ids], cat_ids=[int(c) for c in reference.cat_ids])
evaluate(reference, sys.argv[2], params=params, device="cpu")  # first call: imports, kernels
best = None
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    reference = ReferenceCache.load(sys.argv[1])
    result = evaluate(reference, sys.argv[2], params=params, device="cpu")
    s = time.perf_counter() - t
    best = s if best is None else min(best, s)
print(json.dumps({"seconds": best, "ap": float(result.stats[0])}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"run_embedded exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{url} did not answer")


def request(method: str, url: str, token: str, body: bytes | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=600) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def manage_json(env: dict, code: str, **extra: str) -> dict:
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, env={**env, **extra}, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"manage.py shell failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_run(api: str, token: str, slug: str, body: bytes, env: dict) -> dict:
    t0 = time.time()
    status, created = request("POST", f"{api}/api/v1/listings/{slug}/evaluations/", token, body)
    t_posted = time.time()
    if status != 202:
        raise SystemExit(f"POST answered {status}: {json.dumps(created)[:2000]}")
    while True:
        _, job = request("GET", created["url"], token)
        if job["status"] in ("done", "failed"):
            break
        time.sleep(POLL_S)
    t_done = time.time()
    if job["status"] != "done":
        raise SystemExit(f"evaluation failed: {json.dumps(job)[:2000]}")
    times = manage_json(env, JOB, BENCH_EVALUATION=str(created["id"]))
    return {
        "end_to_end": t_done - t0,
        "post": t_posted - t0,
        "queue": times["started"] - times["created"],
        "worker": times["seconds"],
        "worker_to_client": t_done - times["finished"],
        "ap": job["report"]["stats"]["AP"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=100, help="model workload images (100 predictions each)")
    ap.add_argument("--full", action="store_true", help="the issue's size: 1,000 images, 100,000 predictions")
    ap.add_argument("--runs", type=int, default=2, help="evaluations posted one after another (the best is reported)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    args, _rest = ap.parse_known_args()  # `make bench` passes every bench the same extra arguments
    images = 1000 if args.full else args.images
    sys.path.insert(0, str(ROOT / "bench"))
    import orjson
    import synth

    scratch = Path(tempfile.mkdtemp(prefix="evaluation-service-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUB and not k.startswith("AWS_")}
    env.update(MARKET_VAR_DIR=str(scratch / "var"), MARKET_PROFILE="dev", DEBUG="false", PORT=str(port), PYTHONUNBUFFERED="1")
    env.update(THROTTLE_USER="100000/min", THROTTLE_AUTH="100000/min", THROTTLE_ANON="100000/min")
    server = None
    try:
        gt_doc, results = synth.model(images, seed=0)
        gt, dt, cache = scratch / "gt.json", scratch / "dt.json", scratch / "reference.npz"
        gt.write_bytes(orjson.dumps(gt_doc))
        body = orjson.dumps(results)
        dt.write_bytes(body)
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
        listing = manage_json(env, SETUP, BENCH_GT=str(gt), BENCH_CACHE=str(cache))
        engine = json.loads(
            subprocess.run([sys.executable, "-c", ENGINE, str(cache), str(dt), str(args.runs)], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )
        server = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded", "--port", str(port)], cwd=ROOT, env=env, start_new_session=True,
            stdout=(scratch / "server.log").open("w"), stderr=subprocess.STDOUT,  # noqa: SIM115 - the server's log, for the life of the run
        )
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/healthz", server)
        runs = [one_run(api, listing["token"], listing["slug"], body, env) for _ in range(args.runs)]
        best = min(runs, key=lambda r: r["end_to_end"])
        overhead = best["end_to_end"] - engine["seconds"]
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load average {os.getloadavg()[0]:.1f}",
            "backend": "embedded default: SQLite, filesystem broker, local storage, one worker process",
            "images": images,
            "predictions": len(results),
            "body_mb": round(len(body) / 1e6, 1),
            "engine_warm_s": round(engine["seconds"], 3),
            "runs": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
            "best": {k: round(v, 3) for k, v in best.items()},
            "service_overhead_s": round(overhead, 3),
            "end_to_end_over_engine": round(best["end_to_end"] / engine["seconds"], 1),
        }
        result["ok"] = all(abs(r["ap"] - engine["ap"]) < 1e-12 for r in runs)
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
