"""The audit of a panoptic-only version: a sample drawn from its panoptic JSON, and the
auditor's panoptic reference archive, checked whole before anything is stored."""

import io
import json

import pytest
from PIL import Image

from datasets.ingest import version_ingest
from datasets.models import DatasetFile, FileRole
from datasets.selectors import version_audit_sample, version_png_index, version_reference_is_panoptic
from datasets.services import audit_reference_submit, audit_sample_draw, version_transition
from datasets.states import VersionState
from marketplace.core.errors import InvalidInput
from marketplace.demo_panoptic import panoptic_dataset, panoptic_reference_archive, panoptic_seller_files, zipped
from tests.datasets.helpers import add_file
from tests.factories import make_dataset, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def panoptic_version(seller):
    data = panoptic_dataset(images=8, seed=3)
    dataset = make_dataset(seller=seller, slug="pan-ref", annotation_kind="panoptic")
    version = make_version(seller=seller, dataset=dataset)
    for (role, name), blob in panoptic_seller_files(data).items():
        add_file(version, role=role, path=name, data=blob)
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "ok"
    sample = audit_sample_draw(version=version, size=4)
    return version, data, sample


def _submit(version, auditor, blob: bytes, tmp_path):
    path = tmp_path / "reference.zip"
    path.write_bytes(blob)
    return audit_reference_submit(version=version, actor=auditor.user, path=path, archive=True)


def _refused(version, auditor, blob: bytes, tmp_path) -> list[dict]:
    with pytest.raises(InvalidInput) as err:
        _submit(version, auditor, blob, tmp_path)
    version.refresh_from_db()
    assert version.state == VersionState.PROCESSING  # the seller's version is untouched
    assert not DatasetFile.objects.filter(version=version, role=FileRole.REFERENCE).exists()
    return err.value.details


def _archive(data, sample, *, doc=None, pngs=None, extra=None) -> bytes:
    truth_doc, truth_pngs = data["truth"]
    doc = doc or truth_doc
    keep = set(sample)
    anns = [a for a in doc["annotations"] if a["image_id"] in keep]
    ref = {**doc, "images": [i for i in doc["images"] if i["id"] in keep], "annotations": anns}
    pngs = pngs if pngs is not None else truth_pngs
    files = {"ref.json": json.dumps(ref).encode()} | {f"png/{a['file_name']}": pngs[a["file_name"]] for a in anns if a["file_name"] in pngs}
    return zipped(files | (extra or {}))


def test_a_panoptic_only_version_gets_a_sample_drawn_from_its_panoptic_json(panoptic_version):
    version, _data, sample = panoptic_version
    assert len(sample) == 4 and set(sample) <= set(range(1, 9))
    assert version_audit_sample(version=version) == sample


def test_a_good_reference_is_stored_with_its_pngs_in_the_file_index(panoptic_version, auditor, tmp_path):
    version, data, sample = panoptic_version
    dfile = _submit(version, auditor, panoptic_reference_archive(truth=data["truth"], sample=sample), tmp_path)
    assert dfile.role == FileRole.REFERENCE and dfile.path.endswith("/reference.json")
    assert version_reference_is_panoptic(version=version)
    index = version_png_index(version=version, role=FileRole.REFERENCE)
    assert sorted(index) == sorted(f"pan{i:03d}.png" for i in sample)
    assert all(row.source_id == dfile.pk for row in index.values())


def test_an_image_outside_the_sample_is_refused(panoptic_version, auditor, tmp_path):
    version, data, sample = panoptic_version
    outside = next(i for i in range(1, 9) if i not in sample)
    with pytest.raises(InvalidInput) as err:
        _submit(version, auditor, _archive(data, [*sample, outside]), tmp_path)
    assert err.value.code == "not_in_sample" and err.value.details[0]["message"] == f"image id {outside} is not in the sample"


@pytest.mark.parametrize("case", ["two_jsons", "instances_json", "grey_png", "missing_png", "extra_png", "segments_differ", "categories_differ", "no_area"])
def test_a_bad_archive_is_refused_located_and_changes_nothing(panoptic_version, auditor, tmp_path, case):
    version, data, sample = panoptic_version
    truth_doc, truth_pngs = data["truth"]
    doc = json.loads(json.dumps(truth_doc))
    first = next(a for a in doc["annotations"] if a["image_id"] == sample[0])
    kw, code, location = {}, None, None
    if case == "two_jsons":
        kw, code, location = {"extra": {"other.json": b"{}"}}, "reference_json_count", "archive"
    elif case == "instances_json":
        instances = {"images": doc["images"][:1], "categories": [{"id": 1, "name": "bolt"}], "annotations": []}
        blob, code, location = zipped({"ref.json": json.dumps(instances).encode()}), "wrong_format", "ref.json"
    elif case == "grey_png":
        buf = io.BytesIO()
        Image.new("L", (56, 40)).save(buf, format="PNG")
        kw, code = {"pngs": truth_pngs | {first["file_name"]: buf.getvalue()}}, "png_not_rgb"
    elif case == "missing_png":
        kw, code = {"pngs": {k: v for k, v in truth_pngs.items() if k != first["file_name"]}}, "image_file_missing"
    elif case == "extra_png":
        kw, code, location = {"extra": {"png/stray.png": truth_pngs[first["file_name"]]}}, "unreferenced_file", "png/stray.png"
    elif case == "segments_differ":
        first["segments_info"].pop()
        kw, code = {"doc": doc}, "segments_differ"
    elif case == "categories_differ":
        doc["categories"] = doc["categories"][:-1]
        for a in doc["annotations"]:
            a["segments_info"] = [s for s in a["segments_info"] if s["category_id"] != 4]
        kw, code, location = {"doc": doc}, None, None  # the wall's pixels stay in the PNGs: located either way
    elif case == "no_area":
        del first["segments_info"][0]["area"]
        kw, code = {"doc": doc}, "missing_field"
    if case != "instances_json":
        blob = _archive(data, sample, **kw)
    details = _refused(version, auditor, blob, tmp_path)
    if case == "categories_differ":
        assert {"categories_differ", "segments_differ"} <= {d["code"] for d in details}
        return
    assert any(d["code"] == code for d in details), details
    found = next(d for d in details if d["code"] == code)
    if location:
        assert found["location"] == location
    else:
        index = sorted(sample).index(sample[0])
        assert found["location"].startswith(f"annotations[{index}]"), found


def test_a_seller_png_that_disagrees_with_its_json_fails_ingest_located(seller):
    data = panoptic_dataset(images=4, seed=5)
    doc, pngs = data["seller"]
    doc = json.loads(json.dumps(doc))
    doc["annotations"][2]["segments_info"].pop(0)  # segment 1 is painted but not listed
    dataset = make_dataset(seller=seller, slug="pan-bad", annotation_kind="panoptic")
    version = make_version(seller=seller, dataset=dataset)
    add_file(version, role="images", path="images.zip", data=zipped(data["photos"]))
    add_file(version, role="panoptic", path="panoptic.json", data=json.dumps(doc).encode())
    add_file(version, role="panoptic", path="pngs.zip", data=zipped(pngs))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    (error,) = version.validation_report["errors"]
    assert (error["code"], error["location"], error["file"]) == ("segments_differ", "annotations[2].segments_info", "panoptic.json")
    assert "only in the PNG: [1]" in error["message"]
