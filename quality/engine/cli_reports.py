"""CLI verbs for quality reports: ``audit``, ``video-audit``, ``agreement``, ``temporal``, ``panoptic``, ``intrinsic``.

Each prints a short summary, or the report as JSON with ``--json`` (for ``panoptic``
exactly panopticapi's ``{"All", "Things", "Stuff", "per_class"}``), and writes PNG plots
into ``--plots DIR`` (their paths go to stderr so stdout stays JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from quality.engine.errors import EngineInputError


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, indent=1, sort_keys=False))
    else:
        print("\n".join(lines))


def _fmt(value: Any) -> str:
    return "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def _with_ci(report, key: str) -> str:
    ci = report.intervals.get(key)
    bounds = f" [{_fmt(ci.low)}, {_fmt(ci.high)}]" if ci is not None else ""
    return f"{key:<20} {_fmt(getattr(report, key))}{bounds}"


def _plots_done(paths: list[Path]) -> None:
    for path in paths:
        print(f"plot: {path}", file=sys.stderr)


def _load(path: str, what: str) -> dict:
    from quality.engine.matching import load_coco

    return load_coco(path, what)


def _run_audit(args: argparse.Namespace) -> int:
    from quality.engine.audit import audit_compare

    reference, seller = _load(args.reference, "reference"), _load(args.seller, "seller annotations")
    report = audit_compare(reference, seller, seed=args.seed, n_boot=args.n_boot, n_boot_ap=args.n_boot_ap)
    lines = [
        f"audit: {report.n_images} images, {report.n_reference} reference / {report.n_seller} seller instances, "
        f"{report.n_matched} matched (95% CI over images, seed {report.seed})"
    ]
    lines += [
        _with_ci(report, k)
        for k in ("mask_iou", "median_iou", "instance_recall", "instance_precision", "boundary_iou", "ap", "ap50", "ap75", "ap95")
    ]
    lines.append(f"{'tier':<20} {_fmt(report.tier)} (counts once verified)")
    _emit(args, report.to_dict(), lines)
    if args.plots:
        from quality.engine.plots import write_audit_plots

        _plots_done(write_audit_plots(report, reference, seller, args.plots, images_dir=args.images))
    return 0


def _run_video_audit(args: argparse.Namespace) -> int:
    from quality.engine.temporal import _read
    from quality.engine.video_audit import video_audit_compare

    reference = _read(args.reference, "reference")
    clips = None
    if args.clips:
        raw = _read(args.clips, "clips")
        if not isinstance(raw, list) or not all(isinstance(c, dict) and "video_id" in c and isinstance(c.get("frame_indices"), list) for c in raw):
            raise EngineInputError("invalid_clips", "clips: a list of {\"video_id\", \"frame_indices\"}", location="clips")
        clips = {int(c["video_id"]): [int(f) for f in c["frame_indices"]] for c in raw}
    report = video_audit_compare(reference, args.seller, clips=clips, seed=args.seed, n_boot=args.n_boot)
    lines = [
        f"video audit: {report.n_videos} clips, {report.n_frames} frames, {report.n_reference} reference / {report.n_seller} seller masks, "
        f"{report.n_matched} matched (95% CI over clips, seed {report.seed})"
    ]
    lines += [_with_ci(report, k) for k in ("mask_iou", "median_iou", "instance_recall", "instance_precision", "boundary_iou")]
    lines += [
        f"{'id_switches':<20} {report.id_switches}",
        f"{'fragmentations':<20} {report.fragmentations}",
        f"{'video AP':<20} {_fmt(report.video_ap)} (AP50 {_fmt(report.video_ap50)}, AP75 {_fmt(report.video_ap75)})",
    ]
    _emit(args, report.to_dict(), lines)
    if args.plots:
        from quality.engine.plots import write_video_audit_plots

        _plots_done(write_video_audit_plots(report, reference, args.plots))
    return 0


def _run_agreement(args: argparse.Namespace) -> int:
    from quality.engine.agreement import agreement_compare

    first, second = _load(args.first, "first pass"), _load(args.second, "second pass")
    report = agreement_compare(first, second, seed=args.seed, n_boot=args.n_boot)
    lines = [f"agreement: {report.n_images} images, {report.n_first} / {report.n_second} instances, {report.n_matched} matched"]
    lines += [_with_ci(report, k) for k in ("mean_iou", "unmatched_rate", "kappa")]
    lines.append(f"{'inconsistent_labeling':<20} {report.inconsistent_labeling}")
    _emit(args, report.to_dict(), lines)
    if args.plots:
        from quality.engine.plots import write_agreement_plots

        _plots_done(write_agreement_plots(report, first, second, args.plots, images_dir=args.images))
    return 0


def _run_temporal(args: argparse.Namespace) -> int:
    from quality.engine.temporal import temporal_consistency

    subject = args.results or args.annotations
    reference = args.gt if subject else None
    if subject is None:
        if args.gt is None:
            raise EngineInputError("missing_argument", "give --gt with --results, or --annotations", location="arguments")
        subject = args.gt
    report = temporal_consistency(subject, reference=reference, jump_iou=args.jump_iou)
    lines = [
        f"temporal: {report.n_videos} videos, {report.n_tracks} tracks, {report.n_frame_pairs} consecutive frame pairs",
        f"{'temporal_iou':<20} {_fmt(report.temporal_iou)}",
        f"{'gaps':<20} {report.n_gaps} in {report.tracks_with_gaps} tracks",
        f"{'tracks that jump':<20} {len(report.tracks_that_jump)}",
    ]
    if report.has_reference:
        lines += [
            f"{'id_switches':<20} {report.id_switches}",
            f"{'fragmentations':<20} {report.fragmentations}",
            f"{'st_iou':<20} {_fmt(report.st_iou)} over {report.n_st_matched} matched tracks",
        ]
        if report.video_ap is not None:
            lines.append(f"{'video AP':<20} {_fmt(report.video_ap.stats[0])} (AP50 {_fmt(report.video_ap.stats[1])})")
    _emit(args, report.to_dict(), lines)
    if args.plots:
        from quality.engine.plots import write_temporal_plots

        _plots_done(write_temporal_plots(report, args.plots))
    return 0


def _run_panoptic(args: argparse.Namespace) -> int:
    from quality.engine.panoptic import panoptic_quality

    report = panoptic_quality(args.gt, args.pred, gt_dir=args.gt_dir, pred_dir=args.pred_dir)
    results = report.results_dict()
    lines = [f"{'':<8} {'PQ':>7} {'SQ':>7} {'RQ':>7} {'N':>4}"]
    for name in ("All", "Things", "Stuff"):
        r = results[name]
        lines.append(f"{name:<8} {100 * r['pq']:7.3f} {100 * r['sq']:7.3f} {100 * r['rq']:7.3f} {r['n']:4d}")
    _emit(args, results, lines)
    if args.plots:
        from quality.engine.plots import write_panoptic_plots

        _plots_done(write_panoptic_plots(report, args.plots))
    return 0


def _run_intrinsic(args: argparse.Namespace) -> int:
    from quality.engine.intrinsic import intrinsic_checks

    report = intrinsic_checks(_load(args.annotations, "annotations"), tiny_area=args.tiny_area)
    lines = [f"intrinsic: {report.n_images} images, {report.n_annotations} annotations"]
    lines += [f"{f.code:<28} {f.count:>6}  e.g. {f.examples[:5]}" for f in report.findings if f.count]
    if len(lines) == 1:
        lines.append("no findings")
    _emit(args, report.to_dict(), lines)
    if args.plots:
        from quality.engine.plots import write_intrinsic_plots

        _plots_done(write_intrinsic_plots(report, args.plots))
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plots", metavar="DIR", help="write PNG plots into DIR")


def register(subparsers) -> None:
    """Add the report verbs to ``python -m quality``."""
    p = subparsers.add_parser("audit", help="seller masks against reference masks")
    p.add_argument("--reference", required=True, metavar="REF.json")
    p.add_argument("--seller", required=True, metavar="SELLER.json")
    p.add_argument("--images", metavar="DIR", help="image files for overlays (else a neutral background)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws (default 1000)")
    p.add_argument("--n-boot-ap", type=int, default=200, help="bootstrap draws for AP intervals (default 200)")
    _common(p)
    p.set_defaults(func=_run_audit)

    p = subparsers.add_parser("video-audit", help="seller tracks against reference tracks on sampled clips")
    p.add_argument("--reference", required=True, metavar="REF.json", help="YouTube-VIS reference tracks (null at unsampled frames)")
    p.add_argument("--seller", required=True, metavar="TRACKS.json", help="YouTube-VIS, or COCO with video_id/frame_index/track_id")
    p.add_argument("--clips", metavar="CLIPS.json", help='[{"video_id", "frame_indices"}] (default: every frame of the reference videos)')
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws over clips (default 1000)")
    _common(p)
    p.set_defaults(func=_run_video_audit)

    p = subparsers.add_parser("agreement", help="a second annotation pass against the first")
    p.add_argument("--first", required=True, metavar="A.json")
    p.add_argument("--second", required=True, metavar="B.json")
    p.add_argument("--images", metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000)
    _common(p)
    p.set_defaults(func=_run_agreement)

    p = subparsers.add_parser("temporal", help="temporal consistency of video tracks (+ video AP with --gt)")
    p.add_argument("--gt", metavar="GT.json", help="reference tracks (YouTube-VIS or COCO with track_id)")
    p.add_argument("--results", metavar="RESULTS.json", help="tracks to judge against --gt (YouTube-VIS results)")
    p.add_argument("--annotations", metavar="A.json", help="tracks to judge (COCO with video_id/frame_id/track_id)")
    p.add_argument("--jump-iou", type=float, default=0.1, help="consecutive IoU below this is a jump (default 0.1)")
    _common(p)
    p.set_defaults(func=_run_temporal)

    p = subparsers.add_parser("panoptic", help="PQ/SQ/RQ as panopticapi computes them")
    p.add_argument("--gt", required=True, metavar="GT.json")
    p.add_argument("--gt-dir", required=True, metavar="DIR")
    p.add_argument("--pred", required=True, metavar="PRED.json")
    p.add_argument("--pred-dir", required=True, metavar="DIR")
    _common(p)
    p.set_defaults(func=_run_panoptic)

    p = subparsers.add_parser("intrinsic", help="checks that need no reference")
    p.add_argument("--annotations", required=True, metavar="A.json")
    p.add_argument("--tiny-area", type=int, default=16, help="masks under this many pixels are tiny (default 16)")
    _common(p)
    p.set_defaults(func=_run_intrinsic)
