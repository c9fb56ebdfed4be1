"""Boundary IoU (Cheng et al. 2021, "Boundary IoU: Improving Object-Centric Image Segmentation Evaluation").

The boundary of a mask is the mask minus its erosion by ``d`` pixels, where
``d = max(1, round(dilation_ratio * image_diagonal))`` and the erosion is ``d`` iterations
of a 3x3 square kernel. Pixels beyond the image border count as background, so a mask cut
by the border has a boundary along it. This equals the reference ``mask_to_boundary`` of
boundary-iou-api (which pads with one zero pixel and erodes with OpenCV) without needing
OpenCV. ``round`` is Python's (half to even), as in the reference.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

_KERNEL = np.ones((3, 3), dtype=bool)


def boundary_width(height: int, width: int, dilation_ratio: float = 0.02) -> int:
    """The erosion depth ``d`` in pixels for an image of this size (at least 1)."""
    diagonal = math.sqrt(height**2 + width**2)
    return max(1, int(round(dilation_ratio * diagonal)))


def mask_boundary(mask: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    """The boolean inner boundary band of ``mask`` (same shape)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    if not mask.any():
        return np.zeros_like(mask)
    d = boundary_width(mask.shape[0], mask.shape[1], dilation_ratio)
    # border_value=0: pixels outside the image are background, so the band follows the border.
    eroded = ndimage.binary_erosion(mask, structure=_KERNEL, iterations=d, border_value=0)
    return mask & ~eroded


def boundary_iou(a: np.ndarray, b: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU of two boolean masks of one shape: ``|Ba & Bb| / |Ba | Bb|``.

    Two empty masks have no boundary to compare; the result is then 0.0, as pycocotools
    gives 0.0 for the IoU of two empty masks.
    """
    a = np.asarray(a, dtype=bool)
    b = np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    ba = mask_boundary(a, dilation_ratio)
    bb = mask_boundary(b, dilation_ratio)
    union = int(np.count_nonzero(ba | bb))
    if union == 0:
        return 0.0
    return int(np.count_nonzero(ba & bb)) / union
