"""Upload benchmark: the seller CLI sends a folder of many small frames on ``make run``'s
embedded default (SQLite, the filesystem broker, local storage, one worker process).

    python bench/upload_bench.py [--frames 10000] [--shard-mb 16] [--workers 4] [--keep]

A folder of ``--frames`` JPEG frames (320x240, about 36 KB each) and their COCO file is
generated once. ``manage.py run_embedded`` (API + worker) runs on a scratch
``MARKET_VAR_DIR``, and then:

* ``full``: ``python -m datasets.client upload`` of the folder into a new dataset, timed
  from start to exit (hashing, packing shards, sending, the server unpacking and recording
  every frame);
* ``resume``: the same folder into a second dataset through a counting proxy; the CLI is
  SIGKILLed once half of its shards are recorded, then re-run and timed. The proxy counts
  the part PUTs of each run; none of the parts that had arrived before the kill may be sent
  again.

Prints one JSON object. Exits 1 when a frame is missing or its sha256 differs, when the
re-run sent a part that had arrived, or (at 10,000 frames or more) when the full upload
took longer than 60 s.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import re
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
sys.path.insert(0, str(ROOT))
from tests.datasets.counting_proxy import CountingProxy  # noqa: E402 - the checkout's tests package

TARGET_S = 60.0
SCRUB = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CACHE_URL", "MARKET_STORAGE_ROOT", "DJANGO_SETTINGS_MODULE")

SETUP = """
import json
from tests.factories import make_seller
print(json.dumps({"token": make_seller(username="bench-seller").token}))
"""
CHECK = """
import json, os
from datasets.models import DatasetFile, UploadSession
slug = os.environ["BENCH_SLUG"]
files = dict(DatasetFile.objects.filter(version__dataset__slug=slug).values_list("path", "sha256"))
shards = list(UploadSession.objects.filter(version__dataset__slug=slug, shard=True).values_list("state", flat=True))
print(json.dumps({"files": files, "shards": shards}))
"""


def make_frames(folder: Path, n: int) -> dict[str, str]:
    """n frames (a few distinct JPEGs, cycled) and a COCO file naming them; returns name -> sha256."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, 320 * 240 * 3).reshape(240, 320, 3)
    variants = []
    for _ in range(32):
        buf = io.BytesIO()
        Image.fromarray((base * 0.7 + rng.integers(0, 60, (240, 320, 3))).astype("uint8")).save(buf, format="JPEG", quality=90)
        variants.append(buf.getvalue())
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    out, images, anns = {}, [], []
    for i in range(n):
        name = f"frames/episode_{i // 1000:03d}/{i:06d}.jpg"
        data = variants[i % len(variants)]
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out[name] = hashlib.sha256(data).hexdigest()
        images.append({"id": i + 1, "file_name": name, "width": 320, "height": 240})
        anns.append({"id": i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [[10, 10, 60, 10, 60, 50, 10, 50]], "area": 2000.0, "bbox": [10, 10, 50, 40], "iscrowd": 0})
    coco = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}
    data = json.dumps(coco).encode()
    (folder / "instances.json").write_bytes(data)
    out["instances.json"] = hashlib.sha256(data).hexdigest()
    return out


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


def client(env: dict, token: str, api: str, folder: Path, slug: str, state: Path, args, proxy: CountingProxy | None = None) -> subprocess.Popen:
    env = {**env, "MARKET_API_URL": api, "MARKET_TOKEN": token}
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        env.pop(name, None)
    if proxy is not None:
        env["http_proxy"] = proxy.url
    cmd = [sys.executable, "-m", "datasets.client", "upload", str(folder), "--dataset", slug, "--quiet", "--state", str(state)]
    cmd += ["--shard-size", str(args.shard_mb * 1024 * 1024), "--workers", str(args.workers)]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, what: str) -> None:
    out, err = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{what}: the client failed ({proc.returncode}): {out}{err}")


def recorded(env: dict, slug: str) -> dict:
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", CHECK], cwd=ROOT, env={**env, "BENCH_SLUG": slug}, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_uploads(requests) -> list[str]:
    """The upload (from the part's URL) of every part PUT through the API."""
    return [re.search(r"/uploads/([0-9a-f-]{36})/parts/", url).group(1) for method, url in requests if method == "PUT"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--shard-mb", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (printed)")
    args, _rest = ap.parse_known_args()  # `make bench` passes every bench the same extra arguments
    scratch = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUB and not k.startswith("AWS_")}
    env.update(MARKET_VAR_DIR=str(scratch / "var"), MARKET_PROFILE="dev", DEBUG="false", PORT=str(port))
    env.update(THROTTLE_USER="100000/min", THROTTLE_AUTH="100000/min", THROTTLE_ANON="100000/min", PYTHONUNBUFFERED="1")
    server = None
    try:
        t0 = time.monotonic()
        expected = make_frames(scratch / "data", args.frames)
        folder_mb = sum(p.stat().st_size for p in (scratch / "data").rglob("*") if p.is_file()) / 1e6
        generate_s = time.monotonic() - t0
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
        token = json.loads(
            subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )["token"]
        server = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded", "--port", str(port)], cwd=ROOT, env=env, start_new_session=True,
            stdout=(scratch / "server.log").open("w"), stderr=subprocess.STDOUT,  # noqa: SIM115 - the server's log, for the life of the run
        )
        api = f"http://127.0.0.1:{port}"
        wait_http(f"{api}/healthz", server)

        t0 = time.monotonic()
        finish(client(env, token, api, scratch / "data", "bench-full", scratch / "state-full.json", args), "full")
        full_s = time.monotonic() - t0
        full = recorded(env, "bench-full")

        state = scratch / "state-resume.json"
        with CountingProxy() as proxy:
            first = client(env, token, api, scratch / "data", "bench-resume", state, args, proxy=proxy)
            shards_total = None
            while first.poll() is None:
                try:
                    shards = json.loads(state.read_text())["shards"]
                except (OSError, ValueError, KeyError):
                    shards = {}
                done = sum(s.get("state") == "complete" for s in shards.values())
                shards_total = shards_total or -(-(folder_mb * 1e6) // (args.shard_mb * 1024 * 1024))
                if done >= shards_total / 2:
                    first.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.05)
            first.wait()
            killed = first.returncode == -signal.SIGKILL
            before = proxy.take()
            at_kill = recorded(env, "bench-resume")
            t0 = time.monotonic()
            finish(client(env, token, api, scratch / "data", "bench-resume", state, args, proxy=proxy), "resume")
            resume_s = time.monotonic() - t0
            after = proxy.take()
        resumed = recorded(env, "bench-resume")
        sent_before, sent_after = part_uploads(before), part_uploads(after)
        # The proxy counts a part once the server answered it: a part cut by the kill is not
        # counted, one that arrived must not be sent again.
        resent = sorted(set(sent_after) & set(sent_before))
        result = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
            "backend": "embedded default: SQLite, filesystem broker, local storage, one worker",
            "frames": args.frames,
            "folder_mb": round(folder_mb, 1),
            "shard_mb": args.shard_mb,
            "workers": args.workers,
            "generate_s": round(generate_s, 1),
            "full": {
                "seconds": round(full_s, 2),
                "files_per_s": round((args.frames + 1) / full_s, 1),
                "mb_per_s": round(folder_mb / full_s, 1),
                "files_recorded": len(full["files"]),
                "shards": len(full["shards"]),
            },
            "resume": {
                "killed_half_way": killed,
                "shards_recorded_at_kill": at_kill["shards"].count("complete"),
                "files_recorded_at_kill": len(at_kill["files"]),
                "parts_sent_before_kill": len(sent_before),
                "parts_sent_by_rerun": len(sent_after),
                "parts_sent_twice": len(resent),
                "rerun_seconds": round(resume_s, 2),
                "files_recorded": len(resumed["files"]),
                "shards": len(resumed["shards"]),
            },
            "target_s": TARGET_S,
        }
        ok_files = full["files"] == expected and resumed["files"] == expected
        ok_resume = killed and not resent and len(resumed["shards"]) == len(full["shards"])
        result["ok"] = {"files": ok_files, "resume": ok_resume, "speed": full_s <= TARGET_S or args.frames < 10_000}
        print(json.dumps(result, indent=1))
        return 0 if all(result["ok"].values()) else 1
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if args.keep:
            print(f"kept {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
