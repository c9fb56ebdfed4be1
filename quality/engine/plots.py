"""Headless PNG plots for reports (matplotlib with the Agg backend; overlays with Pillow).

Charts are ``FIGSIZE`` x ``DPI`` (640 x 480 pixels). An overlay is the image itself, at its
size in the top-left corner, with reference masks painted blue and seller (or second-pass)
masks orange, above a legend strip (at least ``LEGEND_MIN_WIDTH`` wide) naming the colours,
the image and its IoU. If the image file is not available the masks are drawn on a neutral
grey background of the image's size and the legend says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and workers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from quality.engine import masks  # noqa: E402
from quality.engine.files import FolderIndex  # noqa: E402
from quality.engine.gate import CheckedRLE  # noqa: E402
from quality.engine.matching import image_rles, image_sizes, indices_by_image  # noqa: E402
from quality.engine.video_audit import restrict_to_videos, seller_tracks  # noqa: E402
from quality.engine.ytvis import reference_tracks, ytvis_videos  # noqa: E402

FIGSIZE = (6.4, 4.8)
DPI = 100
REFERENCE_RGB = (31, 119, 255)
SELLER_RGB = (255, 127, 14)
NEUTRAL_RGB = (128, 128, 128)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return path


def plot_iou_histogram(ious: list[float], path: str | Path, *, title: str = "IoU of matched pairs") -> Path:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.hist(np.asarray(ious, dtype=float), bins=np.linspace(0.0, 1.0, 21), color="#1f77b4", edgecolor="white")
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    ax.set_ylabel("pairs")
    ax.set_title(f"{title} (n = {len(ious)})")
    return _save(fig, Path(path))


def plot_pr_curves(pr_curves: dict[str, list[float]], path: str | Path) -> Path:
    """Precision against recall at each IoU threshold (mean over categories, area all)."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    cmap = plt.get_cmap("viridis")
    for i, (thr, precision) in enumerate(sorted(pr_curves.items())):
        recall = np.linspace(0.0, 1.0, len(precision))
        ax.plot(recall, precision, color=cmap(i / max(1, len(pr_curves) - 1)), label=f"IoU {thr}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall per IoU threshold")
    if pr_curves:
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, Path(path))


def plot_per_class_ap(per_class: dict[str, float | None], path: str | Path, *, names: dict[str, str] | None = None) -> Path:
    names = names or {}
    keys = list(per_class)
    values = [per_class[k] if per_class[k] is not None else 0.0 for k in keys]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.bar(range(len(keys)), values, color="#2ca02c")
    ax.set_xticks(range(len(keys)), [names.get(k, k) for k in keys], rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AP @[.50:.95]")
    ax.set_title("AP per class (no bar: class without reference instances)")
    fig.tight_layout()
    return _save(fig, Path(path))


def _paint(canvas: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int], alpha: float = 0.45) -> None:
    # The blend is computed on the mask's pixels only: the canvas stays uint8, so an
    # overlay of the largest image the gate admits costs 3 bytes a pixel, not 24.
    canvas[mask] = ((1 - alpha) * canvas[mask].astype(np.float32) + alpha * np.asarray(rgb, dtype=np.float32)).astype(np.uint8)
    # a solid outline keeps thin masks and the edge of each mask visible
    edge = mask & ~(np.pad(mask, 1)[2:, 1:-1] & np.pad(mask, 1)[:-2, 1:-1] & np.pad(mask, 1)[1:-1, 2:] & np.pad(mask, 1)[1:-1, :-2])
    canvas[edge] = rgb


LEGEND_ROW = 14  # pixels per legend line (Pillow's default bitmap font is 11 pixels high)
LEGEND_MIN_WIDTH = 180
LEGEND_BACKGROUND = (255, 255, 255)


def _legend(lines: list[tuple[tuple[int, int, int] | None, str]], width: int) -> Image.Image:
    """A white strip with one line per entry: a colour swatch (or none) and its text."""
    strip = Image.new("RGB", (width, LEGEND_ROW * len(lines) + 4), LEGEND_BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for row, (rgb, text) in enumerate(lines):
        y = 2 + row * LEGEND_ROW
        x = 4
        if rgb is not None:
            draw.rectangle([x, y + 2, x + 9, y + 11], fill=rgb)
            x += 14
        draw.text((x, y + 1), text, fill=(0, 0, 0))
    return strip


def render_overlay(
    height: int,
    width: int,
    reference: list[CheckedRLE],
    seller: list[CheckedRLE],
    *,
    image_path: Path | None = None,
    labels: tuple[str, str] = ("reference", "seller"),
    caption: str = "",
) -> Image.Image:
    """The image with reference and seller masks (of this image's size, which the gate
    bounds) painted over it, and a legend strip below it.

    The image keeps its size and place in the top-left corner: a pixel outside every mask
    is the image's own pixel. Without an image file of that size the masks are painted on
    a neutral grey and the legend says so.
    """
    background = None
    if image_path is not None and image_path.is_file():
        with Image.open(image_path) as img:
            if img.size == (width, height):
                background = np.array(img.convert("RGB"), dtype=np.uint8)
    canvas = background if background is not None else np.full((height, width, 3), NEUTRAL_RGB, dtype=np.uint8)
    for rle in reference:
        _paint(canvas, masks.decode(rle).astype(bool), REFERENCE_RGB)
    for rle in seller:
        _paint(canvas, masks.decode(rle).astype(bool), SELLER_RGB)
    painted = Image.fromarray(canvas, mode="RGB")
    lines: list[tuple[tuple[int, int, int] | None, str]] = [(REFERENCE_RGB, f"{labels[0]} ({len(reference)})"), (SELLER_RGB, f"{labels[1]} ({len(seller)})")]
    if caption:
        lines.append((None, caption))
    if background is None:
        lines.append((None, "image file not available"))
    full_width = max(width, LEGEND_MIN_WIDTH)
    legend = _legend(lines, full_width)
    out = Image.new("RGB", (full_width, height + legend.height), LEGEND_BACKGROUND)
    out.paste(painted, (0, 0))
    out.paste(legend, (0, height))
    return out


def image_iou(row: Any) -> float | None:
    """One image's IoU for choosing overlays: its matched pairs' IoUs summed over the larger
    of its reference and seller instance counts (a missed or extra instance counts 0);
    None for an image with no instance on either side."""
    total = max(int(row.n_reference), int(row.n_seller))
    if total == 0:
        return None
    return float(row.mean_iou or 0.0) * int(row.n_matched) / total


def overlay_choices(rows: list[Any], *, key: str = "image_id") -> list[tuple[str, int, float]]:
    """``(rank, id, IoU)`` for the best, median and worst image (or clip, ``key="video_id"``)
    of an audit (rows with ``key``, ``n_reference``, ``n_seller``, ``n_matched``,
    ``mean_iou``), so the overlays show the range of the sample; an id appears once (ties
    by id)."""
    scored = sorted(((iou, int(getattr(r, key))) for r in rows if (iou := image_iou(r)) is not None), key=lambda t: (-t[0], t[1]))
    if not scored:
        return []
    picks = [("best", scored[0]), ("median", scored[(len(scored) - 1) // 2]), ("worst", scored[-1])]
    out: list[tuple[str, int, float]] = []
    seen: set[int] = set()
    for rank, (iou, image_id) in picks:
        if image_id not in seen:
            seen.add(image_id)
            out.append((rank, image_id, iou))
    return out


def plot_overlays(
    reference: dict,
    seller: dict,
    out_dir: str | Path,
    *,
    images_dir: str | Path | None = None,
    image_paths: dict[int, Path] | None = None,
    n: int = 4,
    prefix: str = "overlay",
    choices: list[tuple[str, int, float]] | None = None,
    labels: tuple[str, str] = ("reference", "seller"),
) -> list[Path]:
    """Overlays of the ``choices`` (``(rank, image id, IoU)``, see :func:`overlay_choices`),
    named ``<prefix>_<rank>_<image id>.png``; without choices, of the first ``n`` images (by
    id) that have annotations on either side, named ``<prefix>_<image id>.png``.

    The image of an id is ``image_paths[id]`` when given (the caller fetched it), else the
    file of ``images_dir`` whose relative path is its ``file_name`` (the folder is listed,
    never joined with the name).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {**image_sizes(seller), **image_sizes(reference)}
    files = {img["id"]: img.get("file_name") for img in reference.get("images", []) + seller.get("images", [])}
    ref_by, sel_by = indices_by_image(reference), indices_by_image(seller)
    if choices is None:
        chosen = [("", i, None) for i in sorted(sizes) if ref_by.get(i) or sel_by.get(i)][:n]
    else:
        chosen = [(rank, i, iou) for rank, i, iou in choices if i in sizes]
    paths = []
    folder: FolderIndex | None = None
    for rank, image_id, iou in chosen:
        h, w = sizes[image_id]
        ref_rles = image_rles(reference, ref_by.get(image_id, []), h, w)
        sel_rles = image_rles(seller, sel_by.get(image_id, []), h, w)
        if image_paths is not None:
            image_path = image_paths.get(image_id)
        else:
            if folder is None and images_dir:
                folder = FolderIndex(images_dir)
            image_path = folder.get(files[image_id]) if folder is not None and isinstance(files.get(image_id), str) else None
        caption = f"image {image_id}" + (f": {rank} IoU {iou:.3f}" if iou is not None else "")
        path = out_dir / (f"{prefix}_{rank}_{image_id}.png" if rank else f"{prefix}_{image_id}.png")
        render_overlay(h, w, ref_rles, sel_rles, image_path=image_path, labels=labels, caption=caption).save(path)
        paths.append(path)
    return paths


def write_audit_plots(report, reference: dict, seller: dict, out_dir: str | Path, *, images_dir=None, image_paths: dict[int, Path] | None = None) -> list[Path]:
    """IoU histogram, PR curves, per-class AP bars, and overlays of the best, median and
    worst image of an :class:`AuditReport`'s sample (see :func:`overlay_choices`)."""
    out_dir = Path(out_dir)
    names = {str(c["id"]): c.get("name", str(c["id"])) for c in reference.get("categories", [])}
    paths = [
        plot_iou_histogram(report.matched_ious, out_dir / "iou_histogram.png"),
        plot_pr_curves(report.pr_curves, out_dir / "pr_curves.png"),
        plot_per_class_ap(report.per_category_ap, out_dir / "per_class_ap.png", names=names),
    ]
    choices = overlay_choices(report.per_image)
    return paths + plot_overlays(reference, seller, out_dir, images_dir=images_dir, image_paths=image_paths, choices=choices)


def video_overlay_frames(rows: list[Any], clips: dict[int, list[int]]) -> list[tuple[str, int, int, float]]:
    """``(rank, video id, frame index, clip IoU)``: the middle sampled frame of the best,
    median and worst clip of a video audit (rows: its ``per_clip``)."""
    out = []
    for rank, video_id, iou in overlay_choices(rows, key="video_id"):
        frames = sorted(clips.get(video_id) or [])
        if frames:
            out.append((rank, video_id, frames[(len(frames) - 1) // 2], iou))
    return out


def plot_video_overlays(
    reference: dict,
    seller: dict,
    out_dir: str | Path,
    *,
    frames: list[tuple[str, int, int, float]],
    frame_paths: dict[tuple[int, int], Path] | None = None,
    prefix: str = "overlay",
) -> list[Path]:
    """Overlays of sampled frames (``(rank, video id, frame index, IoU)``, see
    :func:`video_overlay_frames`) of a video audit: the reference tracks' masks at that
    frame and the seller's, on the frame image ``frame_paths[(video id, frame index)]``;
    named ``<prefix>_<rank>_<video id>-<frame index>.png``. ``reference`` is YouTube-VIS,
    ``seller`` YouTube-VIS or COCO with tracks."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    videos = ytvis_videos(reference)
    wanted = {vid for _rank, vid, _f, _iou in frames if vid in videos}
    refs = [t for t in reference_tracks(reference) if t.video_id in wanted and not t.iscrowd]
    _sel_videos, subs, _assumed = seller_tracks(restrict_to_videos(seller, wanted))
    paths = []
    for rank, vid, f, iou in frames:
        if vid not in wanted:
            continue
        h, w = int(videos[vid]["height"]), int(videos[vid]["width"])
        ref_masks = [t.masks[f] for t in refs if t.video_id == vid and f < len(t.masks) and t.masks[f]]
        sel_masks = [t.masks[f] for t in subs if t.video_id == vid and not t.iscrowd and f < len(t.masks) and t.masks[f]]
        path = out_dir / f"{prefix}_{rank}_{vid}-{f}.png"
        caption = f"video {vid} frame {f}: {rank} clip IoU {iou:.3f}"
        render_overlay(h, w, ref_masks, sel_masks, image_path=(frame_paths or {}).get((vid, f)), caption=caption).save(path)
        paths.append(path)
    return paths


def write_video_audit_plots(
    report, reference: dict, out_dir: str | Path, *, seller: dict | None = None, clips: dict[int, list[int]] | None = None, frame_paths: dict[tuple[int, int], Path] | None = None
) -> list[Path]:
    """IoU histogram of the matched frame pairs and per-class video AP of a
    :class:`VideoAuditReport`; with the seller's tracks, overlays of the middle sampled frame
    of its best, median and worst clip (see :func:`video_overlay_frames`)."""
    out_dir = Path(out_dir)
    names = {str(c["id"]): c.get("name", str(c["id"])) for c in reference.get("categories", [])}
    paths = [plot_iou_histogram(report.matched_ious, out_dir / "iou_histogram.png", title="IoU of matched pairs per sampled frame")]
    if report.ytvis is not None:
        paths.append(plot_per_class_ap(report.ytvis.per_category_ap, out_dir / "per_class_video_ap.png", names=names))
    if seller is not None:
        frames = video_overlay_frames(report.per_clip, clips or {})
        paths += plot_video_overlays(reference, seller, out_dir, frames=frames, frame_paths=frame_paths)
    return paths


def write_agreement_plots(report, first: dict, second: dict, out_dir: str | Path, *, images_dir=None, image_paths: dict[int, Path] | None = None) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [plot_iou_histogram(report.matched_ious, out_dir / "iou_histogram.png", title="IoU between passes")]
    return paths + plot_overlays(first, second, out_dir, images_dir=images_dir, image_paths=image_paths, labels=("first pass", "second pass"))


def write_temporal_plots(report, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    ious = [r.temporal_iou for r in report.tracks if r.temporal_iou is not None]
    paths = [plot_iou_histogram(ious, out_dir / "temporal_iou_histogram.png", title="Mean consecutive-frame IoU per track")]
    if report.video_ap is not None:
        paths.append(plot_per_class_ap(report.video_ap.per_category_ap, out_dir / "per_class_video_ap.png"))
    return paths


def write_panoptic_plots(report, out_dir: str | Path) -> list[Path]:
    return [plot_per_class_ap({k: v.pq for k, v in report.per_class.items()}, Path(out_dir) / "per_class_pq.png")]


def write_intrinsic_plots(report, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    edges, counts = report.area_histogram.get("edges", []), report.area_histogram.get("counts", [])
    ax.bar(range(len(counts)), counts, color="#9467bd")
    ax.set_xticks(range(len(edges)), [f">={e}" for e in edges], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("mask area (pixels)")
    ax.set_ylabel("instances")
    ax.set_title("Mask-area histogram")
    fig.tight_layout()
    paths = [_save(fig, out_dir / "area_histogram.png")]
    fig, ax = plt.subplots(figsize=FIGSIZE)
    keys = list(report.class_distribution)
    ax.bar(range(len(keys)), [report.class_distribution[k] for k in keys], color="#8c564b")
    ax.set_xticks(range(len(keys)), keys, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("instances")
    ax.set_title("Class distribution")
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "class_distribution.png"))
    return paths
