"""Image file checks: the bytes must be an image Pillow can read, within the pixel cap
(decompression bombs are an error, not a warning)."""

from __future__ import annotations

import warnings
from pathlib import Path

from datasets.limits import Limits

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def check_image(path: Path, *, lim: Limits) -> tuple[str, str] | None:
    """None when ``path`` is a readable image within limits, else (code, message)."""
    from PIL import Image

    if not path.name.lower().endswith(IMAGE_SUFFIXES):
        return "not_an_image", f"{path.name!r} does not have an image extension"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > lim.image_max_pixels:
                    return "decompression_bomb", f"{w}x{h} pixels exceed the limit of {lim.image_max_pixels}"
                img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return "decompression_bomb", str(exc)
    except Exception as exc:  # noqa: BLE001 - anything Pillow cannot read is not an image
        return "not_an_image", f"not a readable image: {exc.__class__.__name__}"
    return None
