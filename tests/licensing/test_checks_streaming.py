"""The checks step streams images: an uploaded archive is never read (its members are
files of their own after ingest), and each image is copied through a bounded spool, so
the step's memory does not grow with the size of the files it reads."""

import io
import os
import random
import tracemalloc

import pytest
from PIL import Image

from licensing import checks
from licensing.models import ImageFingerprint
from licensing.services import SPOOL_BYTES, image_fingerprints_compute
from tests.datasets.helpers import add_file
from tests.factories import make_version

pytestmark = pytest.mark.django_db
MB = 1024 * 1024


def _png(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=0)
    return buf.getvalue()


def test_the_checks_step_reads_no_archive_whole_and_streams_each_image(seller):
    version = make_version(seller=seller)
    archive = add_file(version, role="images", path="images.zip", data=b"PK\x03\x04" + os.urandom(40 * MB))
    big = _png(1, 2000)  # about 12 MB on disk, larger than the spool
    assert len(big) > 2 * SPOOL_BYTES
    rows = [add_file(version, role="images", path="frames/big.png", data=big)]
    rows += [add_file(version, role="images", path=f"frames/{i}.png", data=_png(10 + i, 64)) for i in range(3)]
    del big

    checks.image_inspect(_png(0, 8))  # the hashing library's first import is no part of the measure
    tracemalloc.start()
    try:
        fingerprints = image_fingerprints_compute(version=version)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(f.file_id for f in fingerprints) == sorted(r.pk for r in rows)
    assert not ImageFingerprint.objects.filter(file_id=archive.pk).exists()
    # Python's own allocations (what reading a file whole would show): at most one small
    # image or one chunk at a time, not the 40 MB archive nor the 12 MB image.
    assert peak < SPOOL_BYTES + 3 * MB, f"peak {peak / MB:.1f} MB"
