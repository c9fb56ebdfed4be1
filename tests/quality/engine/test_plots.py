"""Plots are PNG files of the expected size, written headless."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from quality.engine.plots import (
    DPI,
    FIGSIZE,
    plot_iou_histogram,
    plot_overlays,
    plot_per_class_ap,
    plot_pr_curves,
)

CHART = (int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI))


def _seg(box, h=30, w=40):
    m = np.zeros((h, w), np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 1
    return {"size": [h, w], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}


def test_charts_are_pngs_of_the_chart_size(tmp_path):
    paths = [
        plot_iou_histogram([0.5, 0.7, 0.9, 0.95], tmp_path / "h.png"),
        plot_pr_curves({"0.50": list(np.linspace(1, 0.2, 101)), "0.75": list(np.linspace(0.8, 0, 101))}, tmp_path / "pr.png"),
        plot_per_class_ap({"1": 0.5, "2": None, "3": 0.9}, tmp_path / "ap.png", names={"1": "cat"}),
    ]
    for path in paths:
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size == CHART


def test_given_image_file_missing_then_overlay_on_neutral_background_of_image_size(tmp_path):
    images = [{"id": 1, "height": 30, "width": 40, "file_name": "missing.jpg"}]
    ref = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((2, 12, 2, 12))}]}
    sel = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((4, 14, 4, 14))}]}
    (path,) = plot_overlays(ref, sel, tmp_path, images_dir=tmp_path)
    with Image.open(path) as img:
        assert img.size == (40, 30)
        pixels = np.asarray(img.convert("RGB"))
    assert tuple(pixels[29, 39]) == (128, 128, 128)  # untouched background
    assert pixels[2, 2, 2] > pixels[2, 2, 0]  # reference edge: blue
    assert pixels[13, 13, 0] > pixels[13, 13, 2]  # seller edge: orange


def test_given_image_file_then_overlay_on_it(tmp_path):
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "1.png")
    images = [{"id": 1, "height": 30, "width": 40, "file_name": "1.png"}]
    ref = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((2, 12, 2, 12))}]}
    (path,) = plot_overlays(ref, {"images": images, "annotations": []}, tmp_path / "out", images_dir=tmp_path)
    with Image.open(path) as img:
        assert tuple(np.asarray(img)[29, 39]) == (0, 0, 0)
