"""The vocabulary of quality figures, in one place: the three kinds a figure can be, the
headline figures each report kind contributes to a version's summary, and the figures
listings are filtered and sorted by.

Every figure, wherever it is shown, is ``{"value", "ci", "n", "status"}`` with ``status``
one of:

* ``verified``: computed by the platform against reference masks an auditor made for the
  platform's own sample (audit and panoptic figures);
* ``measured``: computed by the platform from the seller's data alone (agreement between
  the seller's two passes, temporal stability of the seller's tracks, intrinsic counts);
  nobody checked it against a reference, but nobody typed it in either;
* ``self-declared``: typed in by the seller (the provenance fields ``declared_*``).
"""

from __future__ import annotations

import math
from typing import Any

from quality.models import ReportKind

VERIFIED = "verified"
MEASURED = "measured"
SELF_DECLARED = "self-declared"
STATUSES = (VERIFIED, MEASURED, SELF_DECLARED)

# The headline figures each report kind contributes to the version's quality summary.
SUMMARY_FIGURES: dict[str, tuple[str, ...]] = {
    ReportKind.AUDIT: (
        "mask_iou",
        "ap",
        "ap50",
        "ap75",
        "boundary_iou",
        "instance_recall",
        "instance_precision",
        # video versions: identity errors and YouTube-VIS AP against the reference tracks
        "id_switches",
        "fragmentations",
        "video_ap",
    ),
    ReportKind.AGREEMENT: ("agreement",),
    ReportKind.TEMPORAL: ("temporal_iou",),
    ReportKind.PANOPTIC: ("pq", "sq", "rq"),
}
# The figures a buyer filters and sorts listings by (a value and a status column each in
# the search table).
LISTING_FIGURES = ("mask_iou", "ap", "ap50", "ap75", "agreement", "temporal_iou")
# Figures the platform can only measure from the seller's own data (there is no reference
# to verify them against): a ``min_`` filter on them accepts measured figures.
MEASURED_ONLY = frozenset({"agreement", "temporal_iou"})
# The seller's typed-in figures (provenance field -> figure).
DECLARED_FIGURES = {"declared_mask_iou": "mask_iou", "declared_agreement": "agreement"}


def figure(value: Any, *, status: str, ci: list[float] | None = None, n: int | None = None) -> dict[str, Any] | None:
    """A figure as every response shows it; None when there is no finite value."""
    if status not in STATUSES:
        raise ValueError(f"unknown figure status {status!r}")
    if value is None or isinstance(value, bool) or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return {"value": float(value), "ci": ci, "n": None if n is None else int(n), "status": status}


def with_declared(summary: dict[str, Any], declared: dict[str, Any]) -> dict[str, Any]:
    """``summary`` with the seller's declared figures (``declared_*`` provenance values) added
    as ``self-declared`` where the platform has no figure of that name."""
    out = dict(summary)
    for name, key in DECLARED_FIGURES.items():
        if key not in out and (fig := figure(declared.get(name), status=SELF_DECLARED)) is not None:
            out[key] = fig
    return out
