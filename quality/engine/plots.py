"""Headless PNG plots for reports (matplotlib with the Agg backend; overlays with Pillow).

Charts are ``FIGSIZE`` x ``DPI`` (640 x 480 pixels); an overlay has its image's size. If
the image file is not available the masks are drawn on a neutral grey background of the
image's size. Reference masks are blue, seller (or second-pass) masks orange.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on servers and workers

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from quality.engine import masks  # noqa: E402
from quality.engine.gate import CheckedRLE  # noqa: E402
from quality.engine.matching import image_rles, image_sizes, indices_by_image  # noqa: E402

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
    canvas[mask] = (1 - alpha) * canvas[mask] + alpha * np.asarray(rgb, dtype=np.float64)
    # a solid outline keeps thin masks and the edge of each mask visible
    edge = mask & ~(np.pad(mask, 1)[2:, 1:-1] & np.pad(mask, 1)[:-2, 1:-1] & np.pad(mask, 1)[1:-1, 2:] & np.pad(mask, 1)[1:-1, :-2])
    canvas[edge] = rgb


def render_overlay(
    height: int,
    width: int,
    reference: list[CheckedRLE],
    seller: list[CheckedRLE],
    *,
    image_path: Path | None = None,
) -> Image.Image:
    """The image (or a neutral background) with reference and seller masks (of this image's
    size, which the gate bounds) painted over it."""
    background = None
    if image_path is not None and image_path.is_file():
        with Image.open(image_path) as img:
            if img.size == (width, height):
                background = np.asarray(img.convert("RGB"), dtype=np.float64)
    canvas = background if background is not None else np.full((height, width, 3), NEUTRAL_RGB, dtype=np.float64)
    for rle in reference:
        _paint(canvas, masks.decode(rle).astype(bool), REFERENCE_RGB)
    for rle in seller:
        _paint(canvas, masks.decode(rle).astype(bool), SELLER_RGB)
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), mode="RGB")


def plot_overlays(
    reference: dict,
    seller: dict,
    out_dir: str | Path,
    *,
    images_dir: str | Path | None = None,
    n: int = 4,
    prefix: str = "overlay",
) -> list[Path]:
    """Overlays of the first ``n`` images (by id) that have annotations on either side."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {**image_sizes(seller), **image_sizes(reference)}
    files = {img["id"]: img.get("file_name") for img in reference.get("images", []) + seller.get("images", [])}
    ref_by, sel_by = indices_by_image(reference), indices_by_image(seller)
    chosen = [i for i in sorted(sizes) if ref_by.get(i) or sel_by.get(i)][:n]
    paths = []
    for image_id in chosen:
        h, w = sizes[image_id]
        ref_rles = image_rles(reference, ref_by.get(image_id, []), h, w)
        sel_rles = image_rles(seller, sel_by.get(image_id, []), h, w)
        image_path = Path(images_dir) / files[image_id] if images_dir and files.get(image_id) else None
        path = out_dir / f"{prefix}_{image_id}.png"
        render_overlay(h, w, ref_rles, sel_rles, image_path=image_path).save(path)
        paths.append(path)
    return paths


def write_audit_plots(report, reference: dict, seller: dict, out_dir: str | Path, *, images_dir=None) -> list[Path]:
    """IoU histogram, PR curves, per-class AP bars and overlays of an :class:`AuditReport`."""
    out_dir = Path(out_dir)
    names = {str(c["id"]): c.get("name", str(c["id"])) for c in reference.get("categories", [])}
    paths = [
        plot_iou_histogram(report.matched_ious, out_dir / "iou_histogram.png"),
        plot_pr_curves(report.pr_curves, out_dir / "pr_curves.png"),
        plot_per_class_ap(report.per_category_ap, out_dir / "per_class_ap.png", names=names),
    ]
    return paths + plot_overlays(reference, seller, out_dir, images_dir=images_dir)


def write_agreement_plots(report, first: dict, second: dict, out_dir: str | Path, *, images_dir=None) -> list[Path]:
    out_dir = Path(out_dir)
    paths = [plot_iou_histogram(report.matched_ious, out_dir / "iou_histogram.png", title="IoU between passes")]
    return paths + plot_overlays(first, second, out_dir, images_dir=images_dir)


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
