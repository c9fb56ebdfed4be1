"""Ingest benchmark: what the worker's ingest does with one annotation file, step by step,
against loading the same file in Python, on a train-scale COCO file and a YouTube-VIS file
of comparable size.

    python bench/ingest_bench.py [--train-scale] [--coco PATH] [--ytvis PATH] [--keep DIR]
    make bench-ingest          # the same at train scale

Without ``--train-scale`` (``--full``) it is a smoke run on small files (``make bench``);
``--images N`` / ``--videos N`` set the sizes. The files are generated seeded when not
given: COCO by :func:`generate` (118,287 images, 863,365 polygon masks of 8-24 vertices,
306 MB), YouTube-VIS by ``validate_bench.generate_ytvis`` (6,000 videos of 36 frames, 6
tracks each, polygons and compressed RLE, about 320 MB).

The worker's steps run in one process, as the worker runs them (``datasets.ingest``), each
timed, with the process's peak RSS during the step (VmHWM, reset before each step):

* COCO: ``validate`` (``validate_annotation_file``, its statistics included), ``cache``
  (the mask cache: parsed, rasterized, saved), ``scene`` (scene complexity from the cache,
  declarations from the images section), ``audit_sample`` (the sample's strata from the
  saved cache), ``store`` (the cache file's sha256, as its manifest row needs);
* YouTube-VIS: ``validate``, ``scene`` (streamed: a YouTube-VIS file has no mask cache),
  ``audit_sample`` (each video's frames holding a mask, for the clips).

Beside it, in its own process: ``pycocotools.COCO(PATH)`` for COCO, and for YouTube-VIS
(which COCO() does not read) ``json.load`` of the file, the least any Python loader does
(youtubevos' YTVOS is json.load plus an index). Prints each step's seconds and peak RSS,
the ratio (loader seconds / ingest seconds: above 1 is faster than the loader) and issue
18's targets as met or MISSED (ingest faster than the loader, peak RSS under 1 GiB), then
one JSON object; exits 1 when a target is missed at train scale.

    python bench/ingest_bench.py --upload-gb 5 [--part-mb 16]

Upload benchmark instead (opt-in; needs PostgreSQL and Redis from ``DATABASE_URL`` /
``CELERY_BROKER_URL``): a file of that size (sparse, a random block per part, deleted
after) goes through presigned multipart to an S3-compatible endpoint (moto's server on
loopback). The API server (gunicorn), a worker (queue ``ingest``) and moto run as
processes; ``python -m datasets.client upload`` is SIGKILLed at half the bytes and re-run
(it resumes with the parts that arrived). The RSS of the API and worker process trees is
sampled every 0.25 s. Exits 1 unless the upload completed with the server's re-hashed
sha256 equal to the file's and the API's peak RSS stayed under 100 MB above its idle
figure (it never holds a part).

The project's code is the installed package (``make bench`` installs it): every process
runs with its working directory under ``var/bench`` of the checkout, so the checkout's
folders never shadow it; only the test factories come from the checkout's ``tests/``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / "var" / "bench"  # the working directory of every process this bench starts


def generate(path: Path, images: int, per_image: float, seed: int = 0) -> int:
    rng = random.Random(seed)
    n_ann = 0
    with open(path, "w") as out:
        out.write(
            '{"info": {"description": "synthetic"}, "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],\n"images": ['
        )
        for i in range(1, images + 1):
            w, h = rng.choice([(640, 480), (480, 640), (640, 427), (500, 375)])
            out.write(("," if i > 1 else "") + json.dumps({"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h, "license": 1}))
        out.write(
            '],\n"categories": ['
            + ",".join(json.dumps({"id": c, "name": f"class{c}", "supercategory": "thing"}) for c in range(1, 81))
            + '],\n"annotations": ['
        )
        rng2 = random.Random(seed + 1)
        for i in range(1, images + 1):
            w, h = 640, 480
            k = int(per_image) + (1 if rng2.random() < per_image - int(per_image) else 0)
            for _ in range(k):
                n_ann += 1
                cx, cy, r = rng2.uniform(40, 400), rng2.uniform(40, 330), rng2.uniform(5, 40)
                nv = rng2.randint(8, 24)
                pts = []
                for v in range(nv):
                    import math

                    a = 2 * math.pi * v / nv
                    rr = r * rng2.uniform(0.6, 1.0)
                    pts += [round(cx + rr * math.cos(a), 2), round(cy + rr * math.sin(a), 2)]
                ann = {
                    "id": n_ann,
                    "image_id": i,
                    "category_id": rng2.randint(1, 80),
                    "segmentation": [pts],
                    "area": round(3.0 * r * r, 2),
                    "bbox": [round(cx - r, 2), round(cy - r, 2), round(2 * r, 2), round(2 * r, 2)],
                    "iscrowd": 0,
                }
                out.write(("," if n_ann > 1 else "") + json.dumps(ann, separators=(",", ":")))
        out.write("]}\n")
    return n_ann


GIB = 1024**3

STEPS = """
import hashlib, json, os, resource, shutil, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
import django; django.setup()
from pathlib import Path
from datasets.ingest import build_cache
from datasets.ingest.scene import _declarations, _file_scene, cache_scene
from datasets.validation import validate_annotation_file
from datasets.selectors import ImageStrata, file_videos, strata_from_cache_file
from quality.engine.scene import coverage

path, fmt, scratch = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

def reset():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS starts again from the current RSS

steps = []
def step(name, fn):
    reset()
    t = time.perf_counter()
    out = fn()
    steps.append({"step": name, "seconds": round(time.perf_counter() - t, 3), "peak_rss": hwm()})
    return out

result = step("validate", lambda: validate_annotation_file(path))
assert result.valid, result.report["errors"][:3]
if fmt == "coco":
    cache, cache_path = step("cache", lambda: build_cache(path, result, scratch / "reference.npz"))
    step("scene", lambda: (cache_scene(cache).figures(), coverage(_declarations(path, "coco_instances")[0])))
    del cache
    strata = ImageStrata()
    step("audit_sample", lambda: strata_from_cache_file(strata, cache_path, "train", where=str(cache_path)))
    def sha():
        h = hashlib.sha256()
        with open(cache_path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        return h.hexdigest()
    step("store", sha)
else:
    step("scene", lambda: (_file_scene(path, "youtube_vis")[0].figures()))
    def videos():
        # the worker copies the file from storage to read it mapped: the copy is counted
        local = scratch / "videos.json"
        shutil.copyfile(path, local)
        try:
            return len(file_videos(lambda: open(local, "rb"), path.name, "youtube_vis", local=local))
        finally:
            local.unlink()
    step("audit_sample", videos)
print(json.dumps({"steps": steps, "seconds": round(sum(s["seconds"] for s in steps), 3),
                  "peak_rss": max(max(s["peak_rss"] for s in steps), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)}))
"""


def measure(code: str, *args: str) -> dict:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=RUN_DIR, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


UPLOAD_SETUP = """
import os, sys, json
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
import django; django.setup()
from marketplace.core.storage import get_storage
get_storage().ensure_bucket()
sys.path.append(sys.argv[2])  # the checkout, after the installed packages: only for tests/
from tests.factories import make_seller
a = make_seller(username=sys.argv[1])
print(json.dumps({"token": a.token}))
"""

UPLOAD_CHECK = """
import os, sys, json
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")
import django; django.setup()
from datasets.models import DatasetFile, UploadSession
from marketplace.core.storage import get_storage
f = DatasetFile.objects.get(version__dataset__slug=sys.argv[1], path="images.tar")
u = UploadSession.objects.get(file=f)
print(json.dumps({"sha256": f.sha256, "size": f.size, "state": u.state, "stored_size": get_storage().size(f.storage_key),
                  "uploads": UploadSession.objects.filter(version__dataset__slug=sys.argv[1], name="images.tar").count()}))
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open")


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def _sparse_file(path: Path, size: int, part: int, seed: int = 0) -> None:
    """A file of ``size`` bytes that costs almost no disk: holes, plus 4 KiB of random
    bytes at the start of every part (so no two parts are alike)."""
    rng = random.Random(seed)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for off in range(0, size, part):
            fh.seek(off)
            fh.write(rng.randbytes(min(4096, size - off)))


def _sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(8 << 20):
            h.update(block)
    return h.hexdigest()


def upload_bench(gb: float, part_mb: int) -> dict:
    import re
    import shutil
    import signal
    import threading

    size, part = int(gb * 1024**3), part_mb * 1024**2
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="upload-bench-", dir=RUN_DIR))
    free = shutil.disk_usage(work).free
    if free < 2.5 * size:  # moto keeps the parts and then the object on disk; the file is sparse
        shutil.rmtree(work)
        raise SystemExit(f"{free / 1e9:.1f} GB free under var/; {2.5 * size / 1e9:.1f} GB needed")
    procs: list[subprocess.Popen] = []
    logs = work / "logs"
    logs.mkdir()

    def spawn(name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        p = subprocess.Popen(cmd, cwd=RUN_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(p)
        return p

    try:
        s3_port, api_port = _free_port(), _free_port()
        (work / "moto-tmp").mkdir()
        moto = spawn(
            "moto",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            dict(os.environ, TMPDIR=str(work / "moto-tmp")),
        )
        env = dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="marketplace.settings",
            MARKET_PROFILE="dev",
            DEBUG="false",
            MARKET_VAR_DIR=str(work / "var"),
            AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{s3_port}",
            AWS_STORAGE_BUCKET_NAME="bench-uploads",
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_S3_REGION_NAME="us-east-1",
            THROTTLE_USER="100000/min",
            THROTTLE_AUTH="100000/min",
            THROTTLE_ANON="100000/min",
        )
        if not env.get("DATABASE_URL", "").startswith("postgres") or not env.get("CELERY_BROKER_URL", "").startswith("redis"):
            raise SystemExit("--upload-gb needs DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis)")
        _wait_port(s3_port, moto)
        subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"], cwd=RUN_DIR, env=env, check=True)
        user = f"bench{int(time.time())}"
        token = json.loads(
            subprocess.run(
                [sys.executable, "-c", UPLOAD_SETUP, user, str(ROOT)], cwd=RUN_DIR, env=env, check=True, capture_output=True, text=True
            ).stdout.splitlines()[-1]
        )["token"]
        api = spawn(
            "api",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "marketplace.wsgi",
                "-b",
                f"127.0.0.1:{api_port}",
                "-w",
                "2",
                "--threads",
                "4",
                "--timeout",
                "300",
            ],
            env,
        )
        worker = spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                "ingest,default",
                "-c",
                "1",
                "-n",
                f"{user}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "INFO",
            ],
            env,
        )
        _wait_port(api_port, api)
        deadline = time.monotonic() + 60
        while b"ready." not in (logs / "worker.log").read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((logs / "worker.log").read_text()[-2000:])
            time.sleep(0.2)

        data = work / "data"
        data.mkdir()
        (data / "annotations.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}))
        t = time.perf_counter()
        # The client finds images by suffix; the bytes need not be a real archive (no ingest).
        _sparse_file(data / "images.tar", size, part)
        expected_sha = _sha256_file(data / "images.tar")
        prep = time.perf_counter() - t

        samples = {"api": [], "worker": [], "moto": []}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples["api"].append(_tree_rss(api.pid))
                samples["worker"].append(_tree_rss(worker.pid))
                samples["moto"].append(_tree_rss(moto.pid))
                stop.wait(0.25)

        idle_api, idle_worker = _tree_rss(api.pid), _tree_rss(worker.pid)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        slug = f"upload-bench-{user}"
        client = [
            sys.executable,
            "-m",
            "datasets.client",
            "--api",
            f"http://127.0.0.1:{api_port}",
            "--token",
            token,
            "upload",
            str(data),
            "--dataset",
            slug,
            "--part-size",
            str(part),
            "--workers",
            "4",
        ]
        t0 = time.perf_counter()
        first = subprocess.Popen(client, cwd=RUN_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        killed_at, api_at_kill = None, 0
        for line in first.stderr:
            m = re.search(r"(\d+\.\d)%", line)
            if m and "images.tar" in line and float(m.group(1)) >= 50.0:
                first.send_signal(signal.SIGKILL)
                killed_at = float(m.group(1))
                api_at_kill = _tree_rss(api.pid)
                break
        first.wait()
        t_first = time.perf_counter() - t0
        second = subprocess.run(client, cwd=RUN_DIR, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        stop.set()
        sampler.join()
        if second.returncode != 0:
            raise RuntimeError(f"resumed client failed: {second.stderr[-3000:]}")
        api_at_end = _tree_rss(api.pid)
        resent = len(re.findall(r"images\.tar: part \d+/", second.stderr))
        check = json.loads(
            subprocess.run(
                [sys.executable, "-c", UPLOAD_CHECK, slug], cwd=RUN_DIR, env=env, check=True, capture_output=True, text=True
            ).stdout.splitlines()[-1]
        )
        mb = 1024**2
        result = {
            "upload_bytes": size,
            "part_size": part,
            "parts": -(-size // part),
            "prepare_seconds": round(prep, 1),
            "killed_at_percent": killed_at,
            "first_run_seconds": round(t_first, 1),
            "parts_sent_after_resume": resent,
            "seconds": round(seconds, 1),
            "api_idle_rss_mb": round(idle_api / mb, 1),
            "api_peak_rss_mb": round(max(samples["api"]) / mb, 1),
            "api_rss_at_kill_mb": round(api_at_kill / mb, 1),
            "api_rss_at_end_mb": round(api_at_end / mb, 1),
            "worker_idle_rss_mb": round(idle_worker / mb, 1),
            "worker_peak_rss_mb": round(max(samples["worker"]) / mb, 1),
            "s3_endpoint_peak_rss_mb": round(max(samples["moto"]) / mb, 1),
            "upload_state": check["state"],
            "stored_size": check["stored_size"],
            "sha256_verified": check["state"] == "complete" and check["sha256"] == expected_sha and check["stored_size"] == size,
            "upload_sessions": check["uploads"],
        }
        result["ok"] = bool(result["sha256_verified"] and killed_at is not None and max(samples["api"]) - idle_api < 100 * mb)
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train-scale", "--full", action="store_true", help="train-scale files (the targets are for these)")
    ap.add_argument("--quick", action="store_true", help="small files (the default without --train-scale)")
    ap.add_argument("--images", type=int, help="COCO images (train scale 118,287; smoke run 5,000)")
    ap.add_argument("--videos", type=int, help="YouTube-VIS videos (train scale 6,000; smoke run 100)")
    ap.add_argument("--per-image", type=float, default=7.3)
    ap.add_argument("--coco", type=Path, help="a COCO file instead of the generated one")
    ap.add_argument("--ytvis", type=Path, help="a YouTube-VIS file instead of the generated one")
    ap.add_argument("--keep", help="write the generated files in this folder and keep them (reused when there)")
    ap.add_argument("--upload-gb", type=float, help="run the upload benchmark instead, at this size (GiB)")
    ap.add_argument("--part-mb", type=int, default=16)
    args, _unknown = ap.parse_known_args()  # bench/run.py passes every option to every script
    if args.upload_gb:
        result = upload_bench(args.upload_gb, args.part_mb)
        print(json.dumps(result, indent=2))
        return 0 if result["ok"] else 1
    full = args.train_scale
    images = args.images or (118_287 if full else 5_000)
    videos = args.videos or (6_000 if full else 100)
    sys.path.insert(0, str(ROOT / "bench"))
    from validate_bench import COCO_LOAD, JSON_LOAD, generate_ytvis

    with tempfile.TemporaryDirectory(dir=_run_dir()) as tmp:
        where = Path(args.keep) if args.keep else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        coco = args.coco or where / f"coco_{images}.json"
        ytvis = args.ytvis or where / f"ytvis_{videos}.json"
        if not coco.exists():
            generate(coco, images, args.per_image)
        if not ytvis.exists():
            generate_ytvis(ytvis, videos)
        kernels = subprocess.run(
            [sys.executable, "-c", "from quality.engine import native; print(native.status())"], cwd=_run_dir(), capture_output=True, text=True, check=True
        ).stdout.strip()
        print(f"engine kernels: {kernels}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
        report = {
            "kernels": kernels,
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "coco": _compare(coco, "coco", "pycocotools", COCO_LOAD, Path(tmp)),
            "youtube_vis": _compare(ytvis, "youtube_vis", "json_load", JSON_LOAD, Path(tmp)),
        }
        report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    ok = report["coco"]["ok"] and report["youtube_vis"]["ok"]
    print(json.dumps(report, indent=2))
    if not full:
        print("smoke run: the targets are for train scale (make bench-ingest)")
    return 0 if ok or not full else 1


def _run_dir() -> Path:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    return RUN_DIR


def _compare(path: Path, fmt: str, loader: str, loader_code: str, scratch: Path) -> dict:
    """The worker's steps on ``path`` and the loader's time, printed as a table."""
    ingest = measure(STEPS, str(path), fmt, str(scratch))
    base = measure(loader_code, str(path))
    mb = 1024**2
    row = {
        "file": path.name,
        "bytes": path.stat().st_size,
        "ingest": ingest,
        loader: base,
        "ratio": round(base["seconds"] / ingest["seconds"], 2),
        "faster": ingest["seconds"] < base["seconds"],
        "under_1gib": ingest["peak_rss"] < GIB,
    }
    row["ok"] = row["faster"] and row["under_1gib"]
    print(f"{fmt}: {path.name}, {row['bytes'] / 1e6:.0f} MB", flush=True)
    for s in ingest["steps"]:
        print(f"  {s['step']:<13} {s['seconds']:8.2f} s  peak {s['peak_rss'] / mb:7.0f} MB")
    print(f"  {'ingest':<13} {ingest['seconds']:8.2f} s  peak {ingest['peak_rss'] / mb:7.0f} MB")
    print(f"  {loader:<13} {base['seconds']:8.2f} s  peak {base['peak_rss'] / mb:7.0f} MB")
    print(f"  ratio {row['ratio']}x ({loader} seconds / ingest seconds)")
    print(f"  target faster than {loader}: {'met' if row['faster'] else 'MISSED'}")
    print(f"  target peak under 1 GiB: {'met' if row['under_1gib'] else 'MISSED'}", flush=True)
    return row


if __name__ == "__main__":
    sys.exit(main())
