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
        else:
            raise SystemExit(f"unknown engine {engine}")
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


if __name__ == "__main__":
    main()
