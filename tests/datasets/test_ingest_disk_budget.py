"""The ingest disk budget is per version, across all its archives and files: archives that
each pass the per-archive caps are refused together when they exceed it, with a located
error, and the run leaves nothing behind (no row, no object, no scratch file)."""

import io
import random
import zipfile

import pytest
from PIL import Image

from datasets.ingest import scratch_root, version_ingest
from datasets.models import DatasetFile, FileOrigin, VersionIngest
from datasets.services import version_transition
from datasets.states import VersionState
from marketplace.core.storage import get_storage
from tests.datasets.helpers import add_file, coco, json_bytes
from tests.factories import make_version

pytestmark = pytest.mark.django_db
KB = 1024


def _noise_png(seed: int, size: int = 160) -> bytes:
    rng = random.Random(seed)
    img = Image.frombytes("RGB", (size, size), bytes(rng.getrandbits(8) for _ in range(size * size * 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _version(seller, archives: dict[str, dict[str, bytes]]):
    names = [name for members in archives.values() for name in members]
    data = coco(n_images=len(names), w=160, h=160)
    for img, name in zip(data["images"], names, strict=True):
        img["file_name"] = name
    version = make_version(seller=seller)
    add_file(version, role="annotations", path="annotations.json", data=json_bytes(data))
    for path, members in archives.items():
        add_file(version, role="images", path=path, data=_zip(members))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    return version


def _left_behind(version) -> list:
    rows = list(DatasetFile.objects.filter(version=version, origin=FileOrigin.INGEST).values_list("path", flat=True))
    objects = list(get_storage().list_keys(f"versions/{version.pk}/ingest/"))
    scratch = list(scratch_root().glob(f"ingest-{version.pk}-*"))
    return rows + objects + [str(p) for p in scratch] + list(VersionIngest.objects.filter(version=version))


ARCHIVE_A = {f"a/{i}.png": _noise_png(i) for i in range(4)}
ARCHIVE_B = {f"b/{i}.png": _noise_png(10 + i) for i in range(4)}


def test_archives_within_their_own_caps_are_refused_together_past_the_version_budget(seller, settings):
    one_archive = sum(len(d) for d in ARCHIVE_A.values())
    # Each archive alone is far below the per-archive cap and fits the version's budget
    # (downloaded and extracted), both together do not.
    settings.DATASETS_LIMITS = {"archive_max_total": 10 * one_archive, "ingest_disk_max": int(3.2 * one_archive)}

    alone = _version(seller, {"a.zip": ARCHIVE_A})
    assert version_ingest(version_id=alone.pk) == "ok"

    version = _version(seller, {"a.zip": ARCHIVE_A, "b.zip": ARCHIVE_B})
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert version.state == VersionState.FAILED_VALIDATION
    errors = version.validation_report["errors"]
    assert [(e["code"], e["file"]) for e in errors] == [("version_disk_budget", "b.zip")]
    assert errors[0]["location"].startswith("b/")  # the member whose bytes went past it
    assert str(settings.DATASETS_LIMITS["ingest_disk_max"]) in errors[0]["message"]
    assert _left_behind(version) == []


def test_files_declared_past_the_budget_are_refused_before_any_download(seller, settings):
    settings.DATASETS_LIMITS = {"ingest_disk_max": 64 * KB}
    version = _version(seller, {"a.zip": ARCHIVE_A, "b.zip": ARCHIVE_B})
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert [(e["code"], e["location"]) for e in version.validation_report["errors"]] == [("version_disk_budget", "files")]
    assert _left_behind(version) == []


def test_a_large_annotation_file_counts_against_the_same_budget(seller, settings):
    one_archive = sum(len(d) for d in ARCHIVE_A.values())
    version = _version(seller, {"a.zip": ARCHIVE_A})
    # the archive, downloaded then extracted, fits; the annotation file after it does not
    annotations = DatasetFile.objects.get(version=version, role="annotations")
    declared = sum(DatasetFile.objects.filter(version=version).values_list("size", flat=True))
    settings.DATASETS_LIMITS = {"ingest_disk_max": max(declared, 2 * one_archive + annotations.size // 2)}
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert [(e["code"], e["location"], e["file"]) for e in version.validation_report["errors"]] == [
        ("version_disk_budget", "annotations.json", "annotations.json")
    ]
    assert _left_behind(version) == []
