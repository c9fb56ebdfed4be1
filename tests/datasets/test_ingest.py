"""version_ingest end to end (in process, real PostgreSQL and S3 endpoint), and the
auditor flow on an ingested version."""

import io
import json
import zipfile

import pytest

from datasets.ingest import version_ingest
from datasets.models import DatasetFile, DatasetVersion, FileOrigin, FileRole
from datasets.selectors import version_audit_reference, version_coco, version_files, version_reference_cache_key
from datasets.services import audit_sample_draw, version_transition
from datasets.states import VersionState
from marketplace.core.storage import get_storage
from tests.datasets.helpers import add_file, coco, json_bytes, png_bytes
from tests.factories import make_version

pytestmark = pytest.mark.django_db


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _processing(seller, data: dict, images: dict | None = None):
    version = make_version(seller=seller)
    add_file(version, role="annotations", path="annotations/train.json", data=json_bytes(data))
    if images is not None:
        add_file(version, role="images", path="images.zip", data=_zip(images))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    return version


def _keys(version):
    return sorted(get_storage().list_keys(f"versions/{version.pk}/"))


def test_valid_version_ingests(seller):
    data = coco(n_images=3)
    version = _processing(seller, data, {f"imgs/img{i}.png": png_bytes() for i in range(1, 4)})
    assert version_ingest(version_id=version.pk) == "ok"
    version.refresh_from_db()
    assert version.state == VersionState.PROCESSING  # the pipeline moves it on
    assert version.validation_report["valid"] and version.statistics["images"] == 3 and version.statistics["instances"] == 6
    extracted = version_files(version=version, role=FileRole.IMAGES).filter(origin=FileOrigin.INGEST)
    assert sorted(extracted.values_list("path", flat=True)) == ["imgs/img1.png", "imgs/img2.png", "imgs/img3.png"]
    assert all(len(f.sha256) == 64 and get_storage().exists(f.storage_key) for f in extracted)
    cache_key = version_reference_cache_key(version=version)
    assert cache_key and get_storage().exists(cache_key)
    assert version_files(version=version, role=FileRole.PREVIEW).count() >= 1
    assert version_coco(version=version)["images"] == data["images"]
    # idempotent: a second run changes nothing
    count = DatasetFile.objects.filter(version=version).count()
    assert version_ingest(version_id=version.pk) == "ok"
    assert DatasetFile.objects.filter(version=version).count() == count


@pytest.mark.parametrize(
    ("images", "mutate", "code", "location"),
    [
        ({"imgs/img1.png": png_bytes(), "imgs/img2.png": png_bytes()}, None, "image_file_missing", "images[2].file_name"),
        ({"../img1.png": png_bytes()}, None, "path_escape", "../img1.png"),
        ({f"imgs/img{i}.png": png_bytes() for i in (1, 2)} | {"imgs/img3.png": b"not an image"}, None, "not_an_image", "imgs/img3.png"),
        (
            {f"imgs/img{i}.png": png_bytes() for i in (1, 2, 3)},
            lambda d: d["annotations"][0].__setitem__("segmentation", [[1, 2, 3, 4]]),
            "polygon_too_short",
            "annotations[0].segmentation[0]",
        ),
        # the header of img2.png says 48x64 (height x width); the JSON declares 24x32
        ({"imgs/img1.png": png_bytes(), "imgs/img2.png": png_bytes(64, 48), "imgs/img3.png": png_bytes()}, None, "image_size_mismatch", "images[1]"),
        (
            {f"imgs/img{i}.png": png_bytes() for i in (1, 2, 3)},
            lambda d: d["annotations"][3].__setitem__("segmentation", {"size": [24, 32], "counts": "0Xo0"}),
            "rle_sum_mismatch",
            "annotations[3].segmentation.counts",
        ),
    ],
)
def test_invalid_version_fails_validation_and_writes_nothing(seller, images, mutate, code, location):
    data = coco(n_images=3)
    if mutate:
        mutate(data)
    version = _processing(seller, data, images)
    keys_before = _keys(version)
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert version.state == VersionState.FAILED_VALIDATION
    err = version.validation_report["errors"][0]
    assert (err["code"], err["location"]) == (code, location), version.validation_report
    assert version.statistics == {}
    assert not DatasetFile.objects.filter(version=version, origin=FileOrigin.INGEST).exists()
    assert _keys(version) == keys_before  # nothing else in storage
    assert version_ingest(version_id=version.pk) == "invalid"  # idempotent


def test_audit_sample_and_reference_flow(seller, seller_b, auditor, moderator):
    data = coco(n_images=12, cats=3)
    version = _processing(seller, data, {f"imgs/img{i}.png": png_bytes() for i in range(1, 13)})
    assert version_ingest(version_id=version.pk) == "ok"
    first = audit_sample_draw(version=version, size=5, seed=7)
    assert len(first) == 5 and first == audit_sample_draw(version=version, size=5, seed=7)
    assert first == audit_sample_draw(version=DatasetVersion.objects.get(pk=version.pk), size=5, seed=7)
    sample = audit_sample_draw(version=version, size=5)  # default seed: the version
    assert auditor.client.get("/api/v1/audit/samples/").json()["results"][0]["version"] == version.pk
    for outsider in (seller, seller_b):
        assert outsider.client.get("/api/v1/audit/samples/").status_code == 403
        assert outsider.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").status_code == 404
    r = moderator.client.get(f"/api/v1/versions/{version.pk}/audit/sample/")
    assert r.status_code == 200
    r = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/")
    body = r.json()
    assert body["image_ids"] == first or body["image_ids"] == sample  # the first stored draw
    assert all(img["url"] for img in body["images"])
    ids = set(body["image_ids"])
    reference = {
        "images": [i for i in data["images"] if i["id"] in ids],
        "categories": data["categories"],
        "annotations": [a for a in data["annotations"] if a["image_id"] in ids],
    }
    bad = json.loads(json.dumps(reference))
    bad["annotations"][0]["segmentation"] = [[1, 2, 3, 4, 5]]
    r = auditor.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", bad, format="json")
    assert r.status_code == 400 and r.json()["code"] == "invalid_reference"
    assert r.json()["details"][0]["location"] == "annotations[0].segmentation[0]"
    assert moderator.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", reference, format="json").status_code == 403
    r = auditor.client.post(f"/api/v1/versions/{version.pk}/audit/reference/", reference, format="json")
    assert r.status_code == 201, r.content
    assert version_audit_reference(version=version)["annotations"] == reference["annotations"]
    assert auditor.client.get("/api/v1/audit/samples/").json()["results"] == []


def test_names_written_as_escaped_surrogate_pairs_ingest(seller, auditor):
    # json.dumps (ensure_ascii, its default) writes a character above U+FFFF as a pair of
    # \uXXXX surrogate escapes: one code point, read so by every step
    emoji = "\U0001f600"
    data = coco(n_images=3)
    data["categories"][0]["name"] = f"{emoji} bolt"
    data["images"][0]["file_name"] = f"imgs/{emoji}1.png"
    assert "\\ud83d\\ude00" in json_bytes(data).decode("ascii")
    members = {f"imgs/img{i}.png": png_bytes() for i in (2, 3)} | {f"imgs/{emoji}1.png": png_bytes()}
    version = _processing(seller, data, members)
    assert version_ingest(version_id=version.pk) == "ok"
    version.refresh_from_db()
    assert version.validation_report["valid"], version.validation_report
    assert [c["name"] for c in version.statistics["categories"]] == [f"{emoji} bolt", "cat2"]
    assert version.statistics["instances"] == 6
    assert f"imgs/{emoji}1.png" in version_files(version=version, role=FileRole.IMAGES).values_list("path", flat=True)
    assert get_storage().exists(version_reference_cache_key(version=version))
    assert version_files(version=version, role=FileRole.PREVIEW).count() >= 1
    assert version_coco(version=version)["images"] == data["images"]
    assert version_coco(version=version)["categories"] == data["categories"]
    assert sorted(audit_sample_draw(version=version, size=3, seed=1)) == [1, 2, 3]
    body = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()
    assert sorted(body["image_ids"]) == [1, 2, 3] and all(img["url"] for img in body["images"])
