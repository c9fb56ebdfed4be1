"""Preview overlays: a few images with their masks drawn over them, as PNGs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230]],
    dtype=np.float32,
)


def render_previews(*, cache, images: list[dict], local_images: dict[str, Path], count: int, out_dir: Path) -> Iterator[tuple[str, Path]]:
    from PIL import Image

    from quality.engine import masks

    out_dir.mkdir(parents=True, exist_ok=True)
    by_base = {p.rsplit("/", 1)[-1]: loc for p, loc in local_images.items()}
    made = 0
    ann_img = cache.ann_image_ids
    for img in images:
        if made >= count:
            return
        local = local_images.get(img["file_name"]) or by_base.get(img["file_name"].rsplit("/", 1)[-1])
        if local is None:
            continue  # before the annotations are searched: a scan per image without a file adds up
        index = np.flatnonzero(ann_img == img["id"])
        if not len(index):
            continue
        with Image.open(local) as im:
            base = np.asarray(im.convert("RGB"), dtype=np.float32)
        if base.shape[:2] != (img["height"], img["width"]):
            continue
        for k, rle in enumerate(cache.rles(index[:64])):
            m = masks.decode(rle).astype(bool)
            base[m] = base[m] * 0.5 + PALETTE[k % len(PALETTE)] * 0.5
        name = f"{img['id']}.png"
        path = out_dir / name
        Image.fromarray(base.astype(np.uint8)).save(path, format="PNG")
        made += 1
        yield name, path
