"""Image file checks: the bytes must be an image Pillow can read, within the pixel cap
(decompression bombs are an error, not a warning); its header's size is kept so that the
annotation files' declared sizes can be compared with it (``image_size_mismatch``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

from datasets.limits import Limits

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def check_image(
    path: Path, *, lim: Limits, sizes: dict[str, tuple[int, int]] | None = None, name: str | None = None
) -> tuple[str, str] | None:
    """None when ``path`` is a readable image within limits, else (code, message). With
    ``sizes``, a readable image's (height, width) from its header is stored under ``name``."""
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
                if w > lim.image_max_side or h > lim.image_max_side:
                    return "image_too_large", f"{w}x{h} pixels: a side exceeds the limit of {lim.image_max_side}"
                img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return "decompression_bomb", str(exc)
    except SoftTimeLimitExceeded:
        raise  # the step's time limit, not the file's fault
    except Exception as exc:  # noqa: BLE001 - anything Pillow cannot read is not an image
        return "not_an_image", f"not a readable image: {exc.__class__.__name__}"
    if sizes is not None:
        sizes[name if name is not None else path.name] = (h, w)
    return None
