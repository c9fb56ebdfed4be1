"""Report types of the engine: kw-only dataclasses with ``to_dict`` (JSON-safe) and ``from_dict``.

The Django side stores ``to_dict()`` as JSON and takes its defaults from these types.
Every report carries ``engine_version``, its sample sizes, and ``verified``: the engine
never sets ``verified`` itself (it cannot know whether the reference masks are the
platform's); the caller does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from quality.engine.version import ENGINE_VERSION


def to_jsonable(value: Any) -> Any:
    """Plain Python (int, float, str, bool, None, list, dict with str keys) from numpy and dataclasses.

    NaN and infinities become ``None`` so the output is strict JSON.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


class _Report:
    """``to_dict``/``from_dict`` for the dataclasses below.

    ``_nested`` names the fields holding other report types: ``(kind, type)`` with kind
    ``one`` (a single object, or None), ``list`` or ``dict`` (str keys).
    """

    _nested: ClassVar[dict[str, tuple[str, type]]] = {}

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in names:
                continue  # written by a newer engine: ignore rather than fail
            if key in cls._nested and value is not None:
                kind, typ = cls._nested[key]
                if kind == "one":
                    value = typ.from_dict(value)
                elif kind == "list":
                    value = [typ.from_dict(v) for v in value]
                else:
                    value = {k: (typ.from_dict(v) if v is not None else None) for k, v in value.items()}
            kwargs[key] = value
        return cls(**kwargs)


@dataclass(kw_only=True)
class ConfidenceInterval(_Report):
    """A seeded percentile-bootstrap interval over images. ``None`` bounds: no draw defined the figure."""

    low: float | None
    high: float | None
    level: float = 0.95
    n_boot: int = 1000
    seed: int = 0


# ---------------------------------------------------------------- audit and agreement


@dataclass(kw_only=True)
class AuditImageRow(_Report):
    image_id: int
    n_reference: int
    n_seller: int
    n_matched: int
    mean_iou: float | None
    boundary_iou: float | None


@dataclass(kw_only=True)
class AuditReport(_Report):
    """Seller masks against reference masks on the audit sample.

    ``mask_iou`` and ``median_iou`` are over matched pairs with IoU >= 0.5 (``n_matched``);
    recall and precision count those pairs against all reference and seller instances.
    AP figures use the seller's masks as detections; a seller annotation without
    ``score`` scores 1.0 (``scores_assumed`` says so), so ties keep annotation order.
    ``tier`` follows from ``mask_iou``; it is the listing's tier only once ``verified``.
    """

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    seed: int = 0
    n_boot: int = 1000
    n_images: int = 0
    n_reference: int = 0
    n_seller: int = 0
    n_matched: int = 0
    mask_iou: float | None = None
    median_iou: float | None = None
    instance_recall: float | None = None
    instance_precision: float | None = None
    boundary_iou: float | None = None
    ap: float | None = None
    ap50: float | None = None
    ap75: float | None = None
    ap95: float | None = None
    per_category_ap: dict[str, float | None] = field(default_factory=dict)
    scores_assumed: bool = False
    intervals: dict[str, ConfidenceInterval | None] = field(default_factory=dict)
    tier: str | None = None
    per_image: list[AuditImageRow] = field(default_factory=list)
    matched_ious: list[float] = field(default_factory=list)
    pr_curves: dict[str, list[float]] = field(default_factory=dict)

    _nested: ClassVar = {"intervals": ("dict", ConfidenceInterval), "per_image": ("list", AuditImageRow)}


@dataclass(kw_only=True)
class AgreementReport(_Report):
    """A second annotation pass against the first on the same images.

    ``mean_iou`` is over pairs matched per image and category with IoU >= 0.5;
    ``unmatched_rate`` = instances of either pass left without such a partner over all
    instances of both. ``kappa`` is Cohen's kappa of the two passes' classes on pairs
    matched class-agnostically (IoU >= 0.5): matching within a category would make every
    pair agree by construction. ``inconsistent_labeling`` when ``mean_iou`` < threshold
    or when nothing matched.
    """

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    seed: int = 0
    n_boot: int = 1000
    n_images: int = 0
    n_first: int = 0
    n_second: int = 0
    n_matched: int = 0
    n_kappa_pairs: int = 0
    mean_iou: float | None = None
    unmatched_rate: float | None = None
    kappa: float | None = None
    threshold: float = 0.85
    inconsistent_labeling: bool = False
    intervals: dict[str, ConfidenceInterval | None] = field(default_factory=dict)
    matched_ious: list[float] = field(default_factory=list)

    _nested: ClassVar = {"intervals": ("dict", ConfidenceInterval)}


# ---------------------------------------------------------------- panoptic


@dataclass(kw_only=True)
class PQFigures(_Report):
    pq: float
    sq: float
    rq: float
    n: int | None = None


@dataclass(kw_only=True)
class PanopticReport(_Report):
    """PQ/SQ/RQ as panopticapi's ``pq_compute`` reports them (``All``, ``Things``, ``Stuff``, per class)."""

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    n_images: int = 0
    all: PQFigures
    things: PQFigures
    stuff: PQFigures
    per_class: dict[str, PQFigures] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    # ``<group>_<figure>`` (e.g. ``all_pq``, ``things_sq``): bootstrap intervals over images
    intervals: dict[str, ConfidenceInterval] = field(default_factory=dict)

    _nested: ClassVar = {
        "all": ("one", PQFigures),
        "things": ("one", PQFigures),
        "stuff": ("one", PQFigures),
        "per_class": ("dict", PQFigures),
        "intervals": ("dict", ConfidenceInterval),
    }

    def results_dict(self) -> dict[str, Any]:
        """The panopticapi-shaped result: ``{"All", "Things", "Stuff", "per_class"}``."""
        return {
            "All": self.all.to_dict(),
            "Things": self.things.to_dict(),
            "Stuff": self.stuff.to_dict(),
            "per_class": {k: {"pq": v.pq, "sq": v.sq, "rq": v.rq} for k, v in self.per_class.items()},
        }


@dataclass(kw_only=True)
class MergedInstance(_Report):
    image_id: int
    file_name: str
    segment_id: int
    category_id: int
    blobs: int
    blob_areas: list[int] = field(default_factory=list)


@dataclass(kw_only=True)
class MergedInstancesReport(_Report):
    """Thing segments covering several disconnected blobs (likely merged instances)."""

    engine_version: str = ENGINE_VERSION
    n_segments: int = 0
    n_flagged: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    examples: list[MergedInstance] = field(default_factory=list)

    _nested: ClassVar = {"examples": ("list", MergedInstance)}


# ---------------------------------------------------------------- intrinsic


@dataclass(kw_only=True)
class Finding(_Report):
    code: str
    count: int
    examples: list[int] = field(default_factory=list)
    message: str = ""


@dataclass(kw_only=True)
class IntrinsicReport(_Report):
    """Checks that need no reference. ``examples`` are annotation
    ids, or image ids for ``image_without_annotations``."""

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    n_images: int = 0
    n_annotations: int = 0
    findings: list[Finding] = field(default_factory=list)
    class_distribution: dict[str, int] = field(default_factory=dict)
    instances_per_image: dict[str, float | int | None] = field(default_factory=dict)
    instances_per_image_histogram: dict[str, int] = field(default_factory=dict)
    area_histogram: dict[str, list] = field(default_factory=dict)

    _nested: ClassVar = {"findings": ("list", Finding)}

    def finding(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.code == code), None)


# ---------------------------------------------------------------- temporal


@dataclass(kw_only=True)
class TrackRow(_Report):
    track_id: str
    video_id: int
    category_id: int | None
    n_frames: int
    first_frame: int
    last_frame: int
    gaps: int
    temporal_iou: float | None
    min_iou: float | None
    jumps: int


@dataclass(kw_only=True)
class VideoAP(_Report):
    """The YouTube-VIS evaluation (``YTVOSeval``, segm): 12 stats in its order."""

    stats: list[float]
    per_category_ap: dict[str, float | None] = field(default_factory=dict)
    n_videos: int = 0


@dataclass(kw_only=True)
class TemporalReport(_Report):
    """Temporal consistency of video tracks.

    Without reference tracks: ``temporal_iou`` (mean IoU between consecutive annotated
    frames of a track), gaps (frames missing inside a track's span) and jumps (consecutive
    IoU below ``jump_iou``). With reference tracks: ID switches, fragmentations, mean
    spatio-temporal IoU of tracks matched one-to-one, and ``video_ap``.
    """

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    n_videos: int = 0
    n_tracks: int = 0
    n_frame_pairs: int = 0
    temporal_iou: float | None = None
    n_gaps: int = 0
    tracks_with_gaps: int = 0
    jump_iou: float = 0.1
    tracks_that_jump: list[str] = field(default_factory=list)
    tracks: list[TrackRow] = field(default_factory=list)
    has_reference: bool = False
    n_reference_tracks: int = 0
    id_switches: int | None = None
    fragmentations: int | None = None
    st_iou: float | None = None
    n_st_matched: int = 0
    video_ap: VideoAP | None = None

    _nested: ClassVar = {"tracks": ("list", TrackRow), "video_ap": ("one", VideoAP)}


@dataclass(kw_only=True)
class ClipRow(_Report):
    """One audited clip: a video's sampled frames."""

    video_id: int
    n_frames: int
    n_reference: int
    n_seller: int
    n_matched: int
    mean_iou: float | None
    boundary_iou: float | None


@dataclass(kw_only=True)
class VideoAuditReport(_Report):
    """A video version's seller tracks against the auditor's reference tracks on the
    sampled clips: per-frame mask figures (one-to-one matching per frame and category)
    with clip-level bootstrap intervals, identity errors along the reference tracks, and
    the YouTube-VIS evaluation of the seller's tracks (clipped to the sampled frames)."""

    engine_version: str = ENGINE_VERSION
    verified: bool = False
    seed: int = 0
    n_boot: int = 1000
    n_videos: int = 0
    n_frames: int = 0
    n_reference: int = 0
    n_seller: int = 0
    n_matched: int = 0
    n_reference_tracks: int = 0
    n_seller_tracks: int = 0
    mask_iou: float | None = None
    median_iou: float | None = None
    instance_recall: float | None = None
    instance_precision: float | None = None
    boundary_iou: float | None = None
    id_switches: int = 0
    fragmentations: int = 0
    video_ap: float | None = None
    video_ap50: float | None = None
    video_ap75: float | None = None
    ytvis: VideoAP | None = None
    scores_assumed: bool = True
    intervals: dict[str, ConfidenceInterval | None] = field(default_factory=dict)
    tier: str | None = None
    per_clip: list[ClipRow] = field(default_factory=list)
    matched_ious: list[float] = field(default_factory=list)

    _nested: ClassVar = {"intervals": ("dict", ConfidenceInterval), "per_clip": ("list", ClipRow), "ytvis": ("one", VideoAP)}
