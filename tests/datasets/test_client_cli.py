"""The seller CLI against a live server, the S3 endpoint and a real worker: killed in the
middle of an upload and re-run, it resumes (same uploads, only what is missing) and ends
with every file in the version. Small files travel in shards; what each run sent is
counted by a forwarding proxy between the CLI and the servers."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datasets.models import DatasetFile, UploadSession, UploadState
from datasets.services import upload_parts_arrived
from tests.datasets.counting_proxy import CountingProxy
from tests.datasets.helpers import coco, png_bytes, sha

ROOT = Path(__file__).resolve().parents[2]
PART = 5 * 1024 * 1024


def _client(live_server, seller, *args, proxy: CountingProxy | None = None):
    env = dict(os.environ, MARKET_API_URL=live_server.url, MARKET_TOKEN=seller.token, PYTHONUNBUFFERED="1")
    for name in ("no_proxy", "NO_PROXY", "http_proxy", "HTTP_PROXY"):
        env.pop(name, None)
    if proxy is not None:
        env["http_proxy"] = proxy.url
    return subprocess.Popen(
        [sys.executable, "-m", "datasets.client", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _wait(predicate, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the client ended before the kill point (rc {proc.returncode}): {out}{err}")
        time.sleep(0.02)
    pytest.fail("the kill point was not reached")


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

    def some_parts_arrived() -> bool:
        upload = UploadSession.objects.filter(name="zz-frames.zip").first()
        return upload is not None and len(upload_parts_arrived(upload=upload)) >= 2

    _wait(some_parts_arrived, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    upload = UploadSession.objects.get(name="zz-frames.zip")
    assert upload.state == "open"
    proc = _client(live_server, seller, "upload", str(d), "--dataset", "cli-set", "--workers", "3", "--part-size", str(PART))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, out + err
    assert err == ""  # no progress bar when stderr is not a terminal
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


def _puts(requests) -> list[str]:
    """The upload (hex id, from the object key) of every part PUT to the object store."""
    return [re.search(r"/uploads/([0-9a-f]{32})/", url).group(1) for method, url in requests if method == "PUT"]


@pytest.mark.timeout(300)
def test_cli_shard_upload_killed_half_way_resends_only_what_is_missing(live_server, celery_worker, tmp_path):
    from tests.factories import make_seller

    seller = make_seller(username="shard-seller")
    d = tmp_path / "data"
    (d / "frames").mkdir(parents=True)
    n_frames = 40
    (d / "instances.json").write_text(json.dumps(coco(n_images=2)))
    frames = {f"frames/{i:05d}.png": png_bytes(color=(i, 7, 7)) for i in range(n_frames)}
    for name, data in frames.items():
        (d / name).write_bytes(data)
    # two frames a shard: 20 shards of one part each
    args = ["upload", str(d), "--dataset", "shard-set", "--shard-size", "4096", "--part-size", str(PART)]
    with CountingProxy() as proxy:
        proc = _client(live_server, seller, *args, "--workers", "1", proxy=proxy)

        def half_recorded() -> bool:
            return UploadSession.objects.filter(shard=True, state=UploadState.COMPLETE).count() >= 10

        _wait(half_recorded, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        first = proxy.take()
        sessions = list(UploadSession.objects.filter(shard=True))  # one snapshot: the worker may still move verifying -> complete
        recorded = {u.pk.hex for u in sessions if u.state == UploadState.COMPLETE}
        arrived = {u.pk.hex for u in sessions if u.state == UploadState.VERIFYING or (u.state == UploadState.OPEN and upload_parts_arrived(upload=u))}
        started = set(UploadSession.objects.filter(shard=True).values_list("name", flat=True))
        assert 10 <= len(recorded) < 20
        assert set(_puts(first)) >= recorded  # the proxy saw the first run's parts
        state = json.loads((d / ".market-upload-state.json").read_text())
        noted = {s["upload"].replace("-", "") for s in state["shards"].values() if s["state"] == "complete"}
        # the kill may land between the server recording a shard and the state file saying so
        assert noted <= recorded and len(recorded - noted) <= 1

        proc = _client(live_server, seller, *args, "--workers", "2", proxy=proxy)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        second = proxy.take()

    resent = _puts(second)
    assert not set(resent) & (recorded | arrived), "a part that had arrived was sent again"
    assert len(resent) == len(set(resent)) == 20 - len(recorded) - len(arrived)
    for hex_id in recorded:
        touching = [(m, url) for m, url in second if hex_id in url or str(UploadSession.objects.get(pk=hex_id).pk) in url]
        if hex_id in noted:  # recorded and known to be: the rerun costs it no request at all
            assert touching == []
        else:  # recorded, the state file not yet told: the manifest or one status question says so; nothing sent
            assert [m for m, _u in touching] in ([], ["GET"]), touching
    shards = UploadSession.objects.filter(shard=True)
    assert shards.count() == 20 and set(shards.values_list("state", flat=True)) == {UploadState.COMPLETE}
    assert len(started - set(shards.values_list("name", flat=True))) == 0  # shards resumed under their names, none restarted
    assert sum(shards.values_list("members", flat=True)) == n_frames
    version = shards.first().version
    files = {f.path: f.sha256 for f in DatasetFile.objects.filter(version=version)}
    assert files == {"instances.json": hashlib.sha256((d / "instances.json").read_bytes()).hexdigest(), **{n: sha(b) for n, b in frames.items()}}
    assert "40 in 20 shards" in out


@pytest.mark.timeout(300)
def test_cli_rerun_after_adding_frames_sends_only_the_new_ones(live_server, celery_worker, tmp_path):
    from tests.factories import make_seller

    seller = make_seller(username="grow-seller")
    d = tmp_path / "data"
    (d / "frames").mkdir(parents=True)
    (d / "instances.json").write_text(json.dumps(coco(n_images=2)))
    frames = {f"frames/{i:05d}.png": png_bytes(color=(i, 9, 9)) for i in range(0, 20, 2)}
    for name, data in frames.items():
        (d / name).write_bytes(data)
    args = ["upload", str(d), "--dataset", "grow-set", "--shard-size", "4096", "--part-size", str(PART), "--workers", "2"]
    with CountingProxy() as proxy:
        proc = _client(live_server, seller, *args, proxy=proxy)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        assert len(_puts(proxy.take())) == 1 + 5  # the annotation file, then 10 frames in 5 shards

        # frames added between the recorded ones: new shards of the new frames only
        added = {f"frames/{i:05d}.png": png_bytes(color=(i, 9, 9)) for i in (1, 7, 13)}
        for name, data in added.items():
            (d / name).write_bytes(data)
        proc = _client(live_server, seller, *args, proxy=proxy)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        assert len(_puts(proxy.take())) == 2  # 3 frames, 2 a shard

        # the resume state lost: what the version has (name and sha256) is not sent again
        (d / ".market-upload-state.json").unlink()
        proc = _client(live_server, seller, *args, proxy=proxy)
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, out + err
        again = proxy.take()
    assert _puts(again) == [] and not [url for method, url in again if method == "POST" and url.endswith("/uploads/")]
    shards = UploadSession.objects.filter(shard=True)
    assert shards.count() == 7 and set(shards.values_list("state", flat=True)) == {UploadState.COMPLETE}
    files = dict(DatasetFile.objects.filter(version=shards.first().version).values_list("path", "sha256"))
    assert files == {"instances.json": hashlib.sha256((d / "instances.json").read_bytes()).hexdigest(), **{n: sha(b) for n, b in {**frames, **added}.items()}}


@pytest.mark.timeout(300)
def test_cli_progress_bar_on_a_terminal_only(live_server, celery_worker, tmp_path):
    import pty

    from tests.factories import make_seller

    seller = make_seller(username="tty-seller")
    d = tmp_path / "data"
    d.mkdir()
    (d / "instances.json").write_text(json.dumps(coco(n_images=2)))
    for i in range(6):
        (d / f"img{i}.png").write_bytes(png_bytes(color=(i, 1, 1)))
    env = dict(os.environ, MARKET_API_URL=live_server.url, MARKET_TOKEN=seller.token)

    def run(slug: str, *extra: str) -> str:
        master, slave = pty.openpty()  # stderr is a terminal
        proc = subprocess.Popen(
            [sys.executable, "-m", "datasets.client", "upload", str(d), "--dataset", slug, "--shard-size", "4096", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave, text=True,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=240)
        os.close(master)
        assert proc.returncode == 0, b"".join(chunks)
        return b"".join(chunks).decode()

    shown = run("tty-set")
    assert "7/7 files" in shown and " MB" in shown and "MB/s" in shown, shown
    assert run("tty-quiet", "--quiet") == ""
