"""The vocabulary of quality figures, in one place: the three kinds a figure can be, the
headline figures each report kind contributes to a version's summary, and the figures
listings are filtered and sorted by."""

from __future__ import annotations

from quality.models import ReportKind

# Every figure says which of these it is.
VERIFIED = "verified"  # against the platform's reference masks (an auditor's)
SELF_DECLARED = "self-declared"  # typed in, or computed against a reference the seller supplied

# The headline figures each report kind contributes to the version's quality summary.
SUMMARY_FIGURES: dict[str, tuple[str, ...]] = {
    ReportKind.AUDIT: ("mask_iou", "ap", "ap50", "ap75", "boundary_iou", "instance_recall", "instance_precision"),
    ReportKind.AGREEMENT: ("agreement",),
    ReportKind.TEMPORAL: ("temporal_iou",),
    ReportKind.PANOPTIC: ("pq", "sq", "rq"),
}
# The figures a buyer filters and sorts listings by (a column each in the search table).
LISTING_FIGURES = ("mask_iou", "ap", "ap50", "ap75", "agreement", "temporal_iou")
