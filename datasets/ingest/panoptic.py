"""Panoptic PNGs against their JSON: each PNG an RGB image of its image's size whose segment
ids (R + 256 G + 256^2 B, 0 is VOID) are exactly those its annotation's ``segments_info``
lists. Checked at ingest for the seller's files and before storing an auditor's reference,
so the quality steps never meet a PNG that disagrees with its JSON."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PngSegments:
    shape: tuple[int, int]  # (height, width)
    ids: frozenset[int]  # segment ids present, VOID left out


def png_segments(path: Path) -> PngSegments | tuple[str, str]:
    """The PNG's size and segment ids, or (code, message) when it is not an RGB image."""
    import numpy as np
    from PIL import Image

    from quality.engine.panoptic import rgb2id

    with Image.open(path) as png:
        if png.mode != "RGB":
            return "png_not_rgb", f"a panoptic PNG is RGB; this one is {png.mode}"
        ids = rgb2id(np.array(png, dtype=np.uint32))
    return PngSegments(shape=(int(ids.shape[0]), int(ids.shape[1])), ids=frozenset(int(v) for v in np.unique(ids)) - {0})


def annotation_errors(ann: dict, loc: str, png: PngSegments, size: tuple[int, int] | None) -> list[tuple[str, str, str]]:
    """(code, location, message) for each way ``png`` disagrees with the annotation ``ann``
    (at JSON path ``loc``) whose image is ``size`` (height, width)."""
    if size is not None and png.shape != tuple(size):
        return [("image_size_mismatch", f"{loc}.file_name", f"the PNG is {png.shape[0]}x{png.shape[1]}; its image is {size[0]}x{size[1]}")]
    declared = {int(seg["id"]) for seg in ann.get("segments_info") or [] if isinstance(seg, dict) and isinstance(seg.get("id"), int)}
    if png.ids != declared:
        message = f"segments only in the PNG: {sorted(png.ids - declared)[:10]}; only in segments_info: {sorted(declared - png.ids)[:10]}"
        return [("segments_differ", f"{loc}.segments_info", message)]
    return []
