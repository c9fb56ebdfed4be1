"""``python -m quality evaluate`` and ``python -m quality cache``.

``evaluate`` prints COCOeval's 12 summary lines, or with ``--json`` one JSON object
``{"stats": [12 floats], "engine": version, "device": ..., "seconds": ...}``; ``--arrays``
writes ``precision``, ``recall`` and ``scores`` to an ``.npz``. ``cache`` rasterizes a
reference once into a file that ``evaluate --gt-cache`` (or ``--gt`` itself) reads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("evaluate", help="COCO AP of results against a reference (= pycocotools COCOeval)")
    ev.add_argument("--gt", help="reference COCO JSON (or a cache file)")
    ev.add_argument("--dt", required=True, help="results JSON (a list of results)")
    ev.add_argument("--iou-type", choices=["segm", "bbox"], default="segm")
    ev.add_argument("--device", choices=["auto", "cpu", "cuda", "torch-cpu"], default="cpu")
    ev.add_argument("--gt-cache", help="reference cache written by `python -m quality cache`")
    ev.add_argument("--json", action="store_true", help="print one JSON object instead of the summary lines")
    ev.add_argument("--arrays", help="write precision, recall and scores to this .npz")
    ev.set_defaults(func=run_evaluate, end_process=True)

    ca = sub.add_parser("cache", help="rasterize a reference once into a cache file")
    ca.add_argument("--gt", required=True, help="reference COCO JSON")
    ca.add_argument("--out", required=True, help="cache file to write (.npz)")
    ca.set_defaults(func=run_cache, end_process=True)


def _quiet_process() -> None:
    """Settings for a process that evaluates once and exits, made before numpy is imported.

    OpenBLAS starts a thread per core at numpy's import, which spins a while: CPU the
    evaluation (no BLAS call) takes from the machine. The collector has nothing to collect
    in a run that builds arrays, not cycles; it only walks the imported modules' objects."""
    import gc
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.disable()


def run_evaluate(args: argparse.Namespace) -> int:
    import os

    from quality.engine import readahead
    from quality.engine.errors import EngineInputError

    t0 = time.perf_counter()
    gt = args.gt_cache or args.gt
    if not gt:
        raise EngineInputError("missing_argument", "give --gt or --gt-cache")
    _quiet_process()
    # the compiled readers start on both files now, while numpy and the engine import
    readahead.start("results", args.dt)
    if not args.gt_cache:
        readahead.start("coco", args.gt)
    from quality.engine.cocoeval import EvalParams, evaluate_forked

    # parsed once, then image shards evaluated in forked processes and merged exactly
    # (QUALITY_ENGINE_WORKERS=1 keeps it to one process)
    workers = int(os.environ.get("QUALITY_ENGINE_WORKERS") or min(2, os.cpu_count() or 1))
    result = evaluate_forked(gt, args.dt, params=EvalParams(iou_type=args.iou_type), device=args.device, workers=workers)
    if args.arrays:
        import numpy as np

        np.savez(args.arrays, precision=result.precision, recall=result.recall, scores=result.scores)
    seconds = time.perf_counter() - t0
    if args.json:
        out = {"stats": [float(s) for s in result.stats], "engine": result.engine_version, "device": result.device, "seconds": seconds}
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write("\n".join(result.summary_lines()) + "\n")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from quality.engine import readahead

    _quiet_process()
    readahead.start("coco", args.gt)
    from quality.engine.cache import build_reference_cache

    t0 = time.perf_counter()
    cache = build_reference_cache(args.gt)
    cache.save(args.out)
    sys.stderr.write(f"cache: {len(cache.ann_ids)} annotations, {len(cache.img_ids)} images -> {args.out} ({time.perf_counter() - t0:.2f}s)\n")
    return 0
