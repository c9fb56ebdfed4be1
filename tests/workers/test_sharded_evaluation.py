"""A large evaluation sharded by images over several worker processes gives a result
identical to a single-process run."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.workers.synthetic import coco_pair

pytestmark = pytest.mark.worker


def test_sharded_evaluation_over_three_workers_equals_a_single_process_run(worker_factory):
    from marketplace.core.storage import get_storage
    from quality.engine.cocoeval import evaluate
    from workers.sharding import evaluation_sharded

    ref, _, dets = coco_pair(images=36, seed=11)
    storage = get_storage()
    run = uuid.uuid4().hex
    gt_key, dt_key, out_key = f"tmp/test-shards/{run}/gt.json", f"tmp/test-shards/{run}/dt.json", f"tmp/test-shards/{run}/result.json"
    storage.put_bytes(gt_key, json.dumps(ref).encode())
    storage.put_bytes(dt_key, json.dumps(dets).encode())

    workers = [worker_factory(queues="quality", name=f"shard{i}", extra_env={"QUALITY_DEVICE": "cpu"}) for i in range(3)]
    result = evaluation_sharded(gt_key=gt_key, dt_key=dt_key, num_shards=6, out_key=out_key)
    assert result.get(timeout=120) == out_key

    sharded = json.loads(storage.read_bytes(out_key))
    single = json.loads(json.dumps(evaluate(ref, dets, device="cpu").to_dict()))
    assert sharded == single
    assert 0.0 < single["stats"][0] < 1.0  # a real evaluation, not an empty one
    # the shards ran in more than one process, and their scratch objects are gone
    logs = [w.log_path.read_text() for w in workers]
    assert sum("evaluation_shard" in log and "succeeded" in log for log in logs) >= 2
    assert not list(storage.list_keys("tmp/shards/"))
    for key in (gt_key, dt_key, out_key):
        storage.delete(key)
