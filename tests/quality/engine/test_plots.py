"""Plots are PNG files of the expected size, written headless; overlays are the images
themselves with both mask sets painted over them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from quality.engine.plots import (
    DPI,
    FIGSIZE,
    LEGEND_MIN_WIDTH,
    LEGEND_ROW,
    REFERENCE_RGB,
    SELLER_RGB,
    overlay_choices,
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


def _mask(box, h=30, w=40):
    m = np.zeros((h, w), bool)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = True
    return m


def test_given_image_file_missing_then_overlay_on_neutral_background_of_image_size_and_says_so(tmp_path):
    images = [{"id": 1, "height": 30, "width": 40, "file_name": "missing.jpg"}]
    ref = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((2, 12, 2, 12))}]}
    sel = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((4, 14, 4, 14))}]}
    (path,) = plot_overlays(ref, sel, tmp_path, images_dir=tmp_path)
    with Image.open(path) as img:
        assert img.size == (LEGEND_MIN_WIDTH, 30 + 4 + 4 * LEGEND_ROW)  # two colours, the caption, "image file not available"
        pixels = np.asarray(img.convert("RGB"))
    assert tuple(pixels[29, 39]) == (128, 128, 128)  # untouched background
    assert pixels[2, 2, 2] > pixels[2, 2, 0]  # reference edge: blue
    assert pixels[13, 13, 0] > pixels[13, 13, 2]  # seller edge: orange


def test_overlay_is_the_image_itself_outside_the_masks_with_both_mask_sets_and_a_legend(tmp_path):
    rng = np.random.default_rng(3)
    source = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)  # noise: any repaint shows
    Image.fromarray(source).save(tmp_path / "frame.png")
    images = [{"id": 1, "height": 30, "width": 40, "file_name": "frame.png"}]
    ref_box, sel_box = (2, 12, 2, 12), (6, 20, 20, 36)
    ref = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg(ref_box)}]}
    sel = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg(sel_box)}]}
    (path,) = plot_overlays(ref, sel, tmp_path / "out", image_paths={1: tmp_path / "frame.png"})
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
    assert pixels.shape == (30 + 4 + 3 * LEGEND_ROW, LEGEND_MIN_WIDTH, 3)
    image = pixels[:30, :40]
    outside = ~(_mask(ref_box) | _mask(sel_box))
    assert np.array_equal(image[outside], source[outside])
    # Inside each mask the colour is its set's: the edge solid, the inside a blend.
    assert tuple(image[2, 2]) == REFERENCE_RGB and tuple(image[6, 20]) == SELLER_RGB
    inside_ref, inside_sel = _mask((3, 11, 3, 11)), _mask((7, 19, 21, 35))
    assert not np.array_equal(image[inside_ref], source[inside_ref]) and not np.array_equal(image[inside_sel], source[inside_sel])
    blend = 0.55 * source[5, 5].astype(float) + 0.45 * np.asarray(REFERENCE_RGB)
    assert np.abs(image[5, 5].astype(float) - blend).max() <= 1
    # The legend strip below the image holds a swatch of each colour.
    legend = pixels[30:]
    assert (legend == REFERENCE_RGB).all(axis=-1).any() and (legend == SELLER_RGB).all(axis=-1).any()


def test_a_frame_of_another_size_is_not_used_as_background(tmp_path):
    Image.fromarray(np.zeros((31, 40, 3), np.uint8)).save(tmp_path / "1.png")
    images = [{"id": 1, "height": 30, "width": 40, "file_name": "1.png"}]
    ref = {"images": images, "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": _seg((2, 12, 2, 12))}]}
    (path,) = plot_overlays(ref, {"images": images, "annotations": []}, tmp_path / "out", images_dir=tmp_path)
    with Image.open(path) as img:
        assert tuple(np.asarray(img)[29, 39]) == (128, 128, 128)


@dataclass
class Row:
    image_id: int
    n_reference: int
    n_seller: int
    n_matched: int
    mean_iou: float | None


def test_overlay_choices_are_the_best_median_and_worst_image_counting_missed_instances():
    rows = [
        Row(1, 2, 2, 2, 0.9),  # 0.9
        Row(2, 2, 1, 1, 0.95),  # one reference instance missed: 0.475
        Row(3, 1, 1, 1, 0.7),  # 0.7
        Row(4, 0, 0, 0, None),  # nothing on either side: never chosen
        Row(5, 1, 0, 0, None),  # everything missed: 0
        Row(6, 1, 1, 1, 0.8),  # 0.8
    ]
    assert overlay_choices(rows) == [("best", 1, 0.9), ("median", 3, 0.7), ("worst", 5, 0.0)]
    assert overlay_choices([Row(7, 1, 1, 1, 0.5)]) == [("best", 7, 0.5)]
    assert overlay_choices([Row(4, 0, 0, 0, None)]) == []


def test_audit_overlays_are_named_by_rank_and_image(tmp_path):
    images = [{"id": i, "height": 30, "width": 40, "file_name": f"{i}.png"} for i in (1, 2, 3)]
    ref = {"images": images, "annotations": [{"id": i, "image_id": i, "category_id": 1, "segmentation": _seg((2, 12, 2, 12))} for i in (1, 2, 3)]}
    sel = {"images": images, "annotations": [{"id": i, "image_id": i, "category_id": 1, "segmentation": _seg((2 + i, 12 + i, 2, 12))} for i in (1, 2, 3)]}
    choices = overlay_choices([Row(1, 1, 1, 1, 0.8), Row(2, 1, 1, 1, 0.6), Row(3, 1, 1, 1, 0.5)])
    paths = plot_overlays(ref, sel, tmp_path, choices=choices)
    assert [p.name for p in paths] == ["overlay_best_1.png", "overlay_median_2.png", "overlay_worst_3.png"]


@dataclass
class ClipRow:
    video_id: int
    n_reference: int
    n_seller: int
    n_matched: int
    mean_iou: float | None


def test_video_overlays_take_the_middle_sampled_frame_of_the_best_median_and_worst_clip():
    from quality.engine.plots import video_overlay_frames

    rows = [ClipRow(1, 8, 8, 8, 0.9), ClipRow(2, 8, 8, 4, 0.9), ClipRow(3, 8, 8, 8, 0.7), ClipRow(4, 0, 0, 0, None)]
    clips = {1: [5, 6, 7, 8], 2: [0, 1, 2], 3: [10, 11, 12, 13, 14], 4: [1]}
    assert video_overlay_frames(rows, clips) == [("best", 1, 6, 0.9), ("median", 3, 12, 0.7), ("worst", 2, 1, 0.45)]
