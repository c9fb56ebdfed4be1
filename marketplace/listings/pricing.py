"""Quality-adjusted cost: what a buyer pays per usable frame.

    price_per_frame = price / frames
    quality_weight  = max(FLOOR, verified_mask_iou ** IOU_EXPONENT
                                 * (PROVENANCE_BASE + (1 - PROVENANCE_BASE) * provenance_completeness))
    quality_adjusted_cost = price_per_frame / quality_weight

* ``verified_mask_iou`` is the mask IoU only when its status is ``verified`` (an auditor's
  reference backs it); a self-declared figure counts as ``UNVERIFIED_IOU`` (default 0), so an
  unverified listing's weight falls to the floor and its adjusted cost is the highest.
* ``provenance_completeness`` is 0..1 (missing → 0).
* Free listings cost 0 whatever their quality; a listing without frames has no cost (null).

Configurable in settings as ``LISTINGS_QUALITY_COST`` (a dict overriding any of
:data:`DEFAULTS`). Every listing returns the inputs and the parameters so a buyer can
recompute the figure.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, float] = {
    "iou_exponent": 2.0,  # quality counts more than linearly: 0.9 IoU vs 0.7 is worth > 0.2
    "provenance_base": 0.5,  # a listing with no provenance still keeps half its weight
    "unverified_iou": 0.0,
    "floor": 0.05,  # bounds the cost of an unverified listing at 20x its price per frame
}


def quality_cost_params() -> dict[str, float]:
    return {**DEFAULTS, **getattr(settings, "LISTINGS_QUALITY_COST", {})}


def quality_adjusted_cost(
    *, price: Decimal | float, frames: int, mask_iou: float | None, mask_iou_verified: bool, provenance_completeness: float | None
) -> tuple[float | None, dict[str, Any]]:
    p = quality_cost_params()
    iou = float(mask_iou) if (mask_iou is not None and mask_iou_verified) else p["unverified_iou"]
    completeness = float(provenance_completeness or 0.0)
    weight = max(p["floor"], (max(iou, 0.0) ** p["iou_exponent"]) * (p["provenance_base"] + (1 - p["provenance_base"]) * completeness))
    price_f = float(price)
    per_frame = price_f / frames if frames else None
    cost = None if per_frame is None else round(per_frame / weight, 8)
    inputs = {
        "price": str(price),
        "frames": frames,
        "price_per_frame": None if per_frame is None else round(per_frame, 8),
        "verified_mask_iou": iou if mask_iou_verified and mask_iou is not None else None,
        "provenance_completeness": completeness,
        "quality_weight": round(weight, 8),
        "params": p,
        "formula": "price/frames / max(floor, verified_mask_iou**iou_exponent * (provenance_base + (1-provenance_base)*provenance_completeness))",
    }
    return cost, inputs
