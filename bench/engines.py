"""One COCO evaluation in this process, for the benchmark: ``engines.py ENGINE GT DT IOU_TYPE OUT [ARRAYS]``.

Writes ``{"stats": [...]}`` to OUT (and precision/recall/scores to ARRAYS when the engine
exposes them). The parent measures wall time and peak RSS of the whole process.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys


def main() -> None:
    engine, gt, dt, iou_type, out = sys.argv[1:6]
    arrays = sys.argv[6] if len(sys.argv) > 6 else None
    ev = None
    with contextlib.redirect_stdout(io.StringIO()):
        if engine == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval

            g = COCO(gt)
            ev = COCOeval(g, g.loadRes(dt), iou_type)
        elif engine == "faster-coco-eval":
            from faster_coco_eval import COCO, COCOeval_faster

            g = COCO(gt)
            ev = COCOeval_faster(g, g.loadRes(dt), iou_type)
        elif engine == "hotcoco":
            from hotcoco import COCO, COCOeval

            g = COCO(gt)
            ev = COCOeval(g, g.loadRes(dt), iou_type)
        elif engine == "ultrafast-pycocotools":
            from ultrafast_pycocotools import COCO, COCOeval

            g = COCO(gt)
            ev = COCOeval(g, g.loadRes(dt), iou_type)
        elif engine == "vernier":
            ev = _vernier(gt, dt, iou_type)
        else:
            raise SystemExit(f"unknown engine {engine}")
        if engine != "vernier":
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
    stats = [float(s) for s in ev.stats]
    with open(out, "w") as f:
        json.dump({"stats": stats}, f)
    if arrays:
        import numpy as np

        e = ev.eval
        np.savez(arrays, precision=np.asarray(e["precision"]), recall=np.asarray(e["recall"]), scores=np.asarray(e["scores"]))


class _Evaluated:
    """vernier's result in COCOeval's shape (``stats``, ``eval``), for the writer above."""

    def __init__(self, stats, precision, recall, scores) -> None:
        self.stats = stats
        self.eval = {"precision": precision, "recall": recall, "scores": scores}


def _vernier(gt: str, dt: str, iou_type: str) -> _Evaluated:
    """vernier's native path in its strict (pycocotools-parity) mode, from the JSON bytes.

    The per-image grid is what its ``Evaluator`` summarizes too; asking for it keeps the
    precision/recall/scores arrays so they can be compared with pycocotools'. Threads: its
    default (every core), as the other engines get.

    vernier's parser requires a ``bbox`` on every detection, and a segmentation results
    file may omit it (``loadRes`` derives it from the mask, and the benchmark's files carry
    none). So this process derives them the way ``loadRes`` does (``pycocotools.mask.toBbox``)
    inside its timed run, and lets vernier derive the area from the mask (``dt_area="mask"``),
    also as ``loadRes`` does.
    """
    import orjson
    from pycocotools import mask as mask_utils
    from vernier import _core

    with open(gt, "rb") as f:
        gt_bytes = f.read()
    with open(dt, "rb") as f:
        results = orjson.loads(f.read())
    max_dets = [1, 10, 100]
    kw = {"parity_mode": "strict", "max_dets_per_image": max_dets[-1], "use_cats": True}
    if iou_type == "segm":
        missing = [r for r in results if "bbox" not in r]
        if missing:
            for r, box in zip(missing, mask_utils.toBbox([r["segmentation"] for r in missing]).tolist()):
                r["bbox"] = box
        grid = _core.evaluate_segm_grid(gt_bytes, results, dt_area="mask", **kw)
    else:
        grid = _core.evaluate_bbox_grid(gt_bytes, results, dt_area="bbox", **kw)
    acc = grid.accumulate(max_dets)
    return _Evaluated(list(acc.summarize(max_dets).stats), acc.precision, acc.recall, acc.scores)


if __name__ == "__main__":
    main()
