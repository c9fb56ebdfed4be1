"""Sharded evaluation: a large evaluation split by images into a chord of shard tasks on
the ``quality`` queue (any number of GPU or CPU workers), merged with the engine's exact
shard merge, so the merged report equals a single-process run bit for bit.

Shard states travel through object storage (``.npz``), not through the result backend:
they can be large, and the backend then only carries storage keys.
"""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import numpy as np
from celery import chord

from marketplace.core.storage import get_storage
from quality.engine.cocoeval import EvalParams, EvalState, evaluate_shard, merge_shards

STATE_ARRAYS = ("det_kpos", "det_img_pos", "det_rank", "det_score", "matched", "ignored", "npig")


def state_dumps(state) -> bytes:
    buffer = io.BytesIO()
    arrays = {name: getattr(state, name) for name in STATE_ARRAYS}
    np.savez(buffer, params=np.frombuffer(json.dumps(state.params.to_dict()).encode(), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def state_loads(data: bytes):
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        params = EvalParams.from_dict(json.loads(npz["params"].tobytes().decode()))
        return EvalState(params=params, **{name: npz[name] for name in STATE_ARRAYS})


def evaluation_sharded(*, gt_key: str, dt_key: str, num_shards: int, out_key: str, params: dict[str, Any] | None = None):
    """Start the chord: ``num_shards`` shard tasks, then the merge; returns the AsyncResult
    of the merge (its value is ``out_key``, where the result JSON is stored)."""
    from workers.tasks import evaluation_merge_task, evaluation_shard_task

    run = uuid.uuid4().hex
    header = [
        evaluation_shard_task.si(gt_key, dt_key, shard, num_shards, f"tmp/shards/{run}/{shard}.npz", params).set(queue="quality")
        for shard in range(num_shards)
    ]
    return chord(header)(evaluation_merge_task.s(out_key).set(queue="quality"))


def evaluation_shard(*, gt_key: str, dt_key: str, shard: int, num_shards: int, state_key: str, params: dict | None, device: str) -> str:
    storage = get_storage()
    gt = json.loads(storage.read_bytes(gt_key))
    dt = json.loads(storage.read_bytes(dt_key))
    state = evaluate_shard(gt, dt, params=EvalParams.from_dict(params) if params else None, device=device, shard=shard, num_shards=num_shards)
    storage.put_bytes(state_key, state_dumps(state))
    return state_key


def evaluation_merge(*, state_keys: list[str], out_key: str, device: str) -> str:
    storage = get_storage()
    states = [state_loads(storage.read_bytes(key)) for key in sorted(state_keys)]
    result = merge_shards(states, device=device)
    storage.put_bytes(out_key, json.dumps(result.to_dict()).encode(), content_type="application/json")
    for key in state_keys:  # shard states are scratch: nothing is left without a purpose
        storage.delete(key)
    return out_key
