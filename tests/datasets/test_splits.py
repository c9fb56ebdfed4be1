"""A version with one annotation file per split: ingest checks and counts every split, the
audit sample is drawn over all of them, and the public evaluation split is the declared one."""

import io
import json
import zipfile

import pytest

from datasets.ingest import version_ingest
from datasets.models import AuditSample, DatasetFile, FileRole
from datasets.selectors import version_annotations, version_evaluation_annotations, version_reference_cache_key
from datasets.services import audit_sample_draw, version_transition
from datasets.splits import evaluation_file, split_kind, split_name
from datasets.states import VersionState
from tests.datasets.helpers import add_file, coco, json_bytes, png_bytes
from tests.factories import make_version

pytestmark = pytest.mark.django_db


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _part(doc: dict, first: int, last: int) -> dict:
    keep = set(range(first, last + 1))
    return {**doc, "images": [i for i in doc["images"] if i["id"] in keep], "annotations": [a for a in doc["annotations"] if a["image_id"] in keep]}


def _processing(seller, files: dict[str, dict], n_images: int):
    version = make_version(seller=seller)
    for path, doc in files.items():
        add_file(version, role="annotations", path=path, data=json_bytes(doc))
    add_file(version, role="images", path="images.zip", data=_zip({f"img{i}.png": png_bytes() for i in range(1, n_images + 1)}))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    return version


@pytest.mark.parametrize(
    ("path", "kind"),
    [("train.json", "train"), ("annotations/instances_val2017.json", "val"), ("coco-test-dev.json", "test"), ("validation.json", "val"), ("extra.json", "other"), ("train_val.json", "other")],
)
def test_a_split_is_named_by_its_file(path, kind):
    assert split_kind(split_name(path)) == kind


def test_the_evaluation_split_is_the_declared_test_else_val_else_the_first():
    class F:
        def __init__(self, path):
            self.path = path

    assert evaluation_file([F("a/train.json"), F("a/val.json"), F("a/test.json")]).path == "a/test.json"
    assert evaluation_file([F("train.json"), F("val.json")]).path == "val.json"
    assert evaluation_file([F("b.json"), F("a.json")]).path == "a.json"
    assert evaluation_file([]) is None


def test_three_splits_ingest_with_statistics_per_split_and_in_total_and_a_cache_each(seller):
    data = coco(n_images=10, cats=3)
    files = {"ann/train.json": _part(data, 1, 6), "ann/val.json": _part(data, 7, 8), "ann/test.json": _part(data, 9, 10)}
    version = _processing(seller, files, 10)
    assert version_ingest(version_id=version.pk) == "ok"
    version.refresh_from_db()
    stats = version.statistics
    assert stats["images"] == 10 and stats["instances"] == 20
    assert {k: (v["kind"], v["images"], v["instances"]) for k, v in stats["splits"].items()} == {"train": ("train", 6, 12), "val": ("val", 2, 4), "test": ("test", 2, 4)}
    assert sum(c["count"] for c in stats["categories"]) == 20
    assert stats["licenses"] == [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/", "images": 10}]
    caches = {f.path: f for f in DatasetFile.objects.filter(version=version, role=FileRole.CACHE)}
    assert sorted(caches) == ["_ingest/cache/test/reference.npz", "_ingest/cache/train/reference.npz", "_ingest/cache/val/reference.npz"]
    assert version_reference_cache_key(version=version) == caches["_ingest/cache/test/reference.npz"].storage_key  # the evaluation split's
    merged = version_annotations(version=version)
    assert sorted(i["id"] for i in merged["images"]) == list(range(1, 11)) and len(merged["annotations"]) == 20
    assert {i["split"] for i in merged["images"]} == {"train", "val", "test"}
    coco_eval, name, kind = version_evaluation_annotations(version=version)
    assert (name, kind, sorted(i["id"] for i in coco_eval["images"])) == ("test", "test", [9, 10])


def test_an_image_id_in_two_splits_fails_validation_located(seller):
    data = coco(n_images=4)
    version = _processing(seller, {"train.json": _part(data, 1, 3), "val.json": _part(data, 3, 4)}, 4)
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert version.state == VersionState.FAILED_VALIDATION
    (error,) = [e for e in version.validation_report["errors"] if e["code"] == "duplicate_image_id"]
    assert error["file"] == "val.json" and error["location"] == "images" and "train.json" in error["message"]


def test_splits_with_different_categories_fail_validation(seller):
    data = coco(n_images=4)
    other = _part(data, 3, 4) | {"categories": data["categories"] + [{"id": 9, "name": "extra"}]}
    version = _processing(seller, {"train.json": _part(data, 1, 2), "val.json": other}, 4)
    assert version_ingest(version_id=version.pk) == "invalid"
    version.refresh_from_db()
    assert [e["file"] for e in version.validation_report["errors"] if e["code"] == "split_categories_differ"] == ["val.json"]


def test_the_audit_sample_is_drawn_over_every_split_stratified(seller):
    data = coco(n_images=40, cats=2)
    version = _processing(seller, {"train.json": _part(data, 1, 30), "val.json": _part(data, 31, 35), "test.json": _part(data, 36, 40)}, 40)
    assert version_ingest(version_id=version.pk) == "ok"
    sample = audit_sample_draw(version=version, size=8)
    assert len(sample) == 8
    by_split = {"train": [i for i in sample if i <= 30], "val": [i for i in sample if 31 <= i <= 35], "test": [i for i in sample if i >= 36]}
    assert all(by_split.values()), by_split  # every split is in it, the small ones too
    assert len(by_split["train"]) > len(by_split["val"])  # shares follow the splits' sizes
    assert audit_sample_draw(version=version, size=8) == sample and AuditSample.objects.filter(version=version).count() == 1


def test_a_single_annotation_file_keeps_its_cache_where_it_was(seller):
    version = _processing(seller, {"annotations.json": coco(n_images=3)}, 3)
    assert version_ingest(version_id=version.pk) == "ok"
    version.refresh_from_db()
    assert list(DatasetFile.objects.filter(version=version, role=FileRole.CACHE).values_list("path", flat=True)) == ["_ingest/cache/reference.npz"]
    assert list(version.statistics["splits"]) == ["annotations"] and version.statistics["images"] == 3
    assert json.loads(json.dumps(version.statistics)) == version.statistics


def test_the_audit_strata_from_the_mask_caches_are_those_of_the_annotation_files(seller):
    """Read from each split's mask cache (ids only), the strata are what streaming the JSON
    files gives: images in file order, each image's split and categories (crowd regions and
    images without annotations included)."""
    import random

    from datasets.selectors import ImageStrata, _sample_sources, _strata_from_json, version_image_strata

    data = coco(n_images=30, cats=4)
    rng = random.Random(3)
    for a in data["annotations"]:
        a["category_id"] = rng.randint(1, 4)
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] not in (4, 17)]
    data["images"] = list(reversed(data["images"]))  # file order is not id order
    version = _processing(seller, {"train.json": _part(data, 1, 20), "val.json": _part(data, 21, 30)}, 30)
    assert version_ingest(version_id=version.pk) == "ok"
    assert DatasetFile.objects.filter(version=version, role=FileRole.CACHE).count() == 2
    streamed = ImageStrata()
    for dfile in _sample_sources(version=version)[0]:
        _strata_from_json(streamed, dfile, split_name(dfile.path), False)
    for cats in streamed.categories.values():
        for c in cats:
            streamed.category_images[c] = streamed.category_images.get(c, 0) + 1
    found = version_image_strata(version=version)
    assert found.image_ids == streamed.image_ids and found.split == streamed.split
    assert found.categories == streamed.categories and found.category_images == streamed.category_images
    assert 4 not in found.categories and len(found.categories) == 28 and max(len(c) for c in found.categories.values()) > 1
