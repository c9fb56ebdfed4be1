"""The seller CLI against a live server, the S3 endpoint and a real worker: killed in the
middle of an upload and re-run, it resumes (same upload, only missing parts) and ends
with the files in the version."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasets.models import DatasetFile, UploadSession
from tests.datasets.helpers import coco, png_bytes, sha

ROOT = Path(__file__).resolve().parents[2]
PART = 5 * 1024 * 1024


def _client(live_server, seller, *args):
    env = dict(os.environ, MARKET_API_URL=live_server.url, MARKET_TOKEN=seller.token, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "datasets.client", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.timeout(300)
def test_cli_upload_killed_and_resumed(live_server, celery_worker, tmp_path):
    from tests.factories import make_seller

    seller = make_seller(username="cli-seller")
    d = tmp_path / "data"
    d.mkdir()
    (d / "instances.json").write_text(json.dumps(coco(n_images=2)))
    (d / "img1.png").write_bytes(png_bytes())
    (d / "img2.png").write_bytes(png_bytes())
    big = os.urandom(12 * PART + 17)
    (d / "zz-frames.zip").write_bytes(big)  # sorted last: the kill lands in its parts
    proc = _client(live_server, seller, "upload", str(d), "--dataset", "cli-set", "--workers", "1", "--part-size", str(PART))
    deadline = time.monotonic() + 120
    lines = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        if "zz-frames.zip: part" in line:
            break
        if not line and proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert any("zz-frames.zip: part" in line for line in lines), "".join(lines)
    upload = UploadSession.objects.get(name="zz-frames.zip")
    assert upload.state == "open"
    proc = _client(live_server, seller, "upload", str(d), "--dataset", "cli-set", "--workers", "3", "--part-size", str(PART))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, out + err
    assert UploadSession.objects.filter(name="zz-frames.zip").count() == 1  # resumed, not restarted
    f = DatasetFile.objects.get(path="zz-frames.zip")
    assert f.sha256 == sha(big)
    assert set(DatasetFile.objects.filter(version=f.version).values_list("path", flat=True)) == {
        "instances.json",
        "img1.png",
        "img2.png",
        "zz-frames.zip",
    }
    proc = _client(live_server, seller, "status", "--dataset", "cli-set", "--json")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)[0]["state"] == "draft"
