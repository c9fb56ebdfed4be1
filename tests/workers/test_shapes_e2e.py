"""Every shape of a seller's data end to end, with real worker processes, PostgreSQL, Redis
and the S3 endpoint, through the API over HTTP only: the seller uploads and submits, the
auditor reads the drawn sample and posts a reference, the moderator approves, the buyer
reads the listing. Each version ends with the reports of its kind once, figures that fit
the generated truth, and the right verified / measured labels."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from marketplace.demo_panoptic import panoptic_dataset, panoptic_reference_archive, panoptic_seller_files
from quality.engine.panoptic import panoptic_quality
from tests.workers.shapes_api import Person, jobs, seller_submit, upload, wait_sample, wait_state

pytestmark = [pytest.mark.worker, pytest.mark.timeout(600)]

WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "1", "PIPELINE_RETRY_BACKOFF_MAX": "2"}
IN_PIPELINE = ("submitted", "processing")


@pytest.fixture
def people(live_server, seller, auditor, moderator, buyer):
    return {name: Person(live_server.url, actor) for name, actor in (("seller", seller), ("auditor", auditor), ("moderator", moderator), ("buyer", buyer))}


def _reports(person: Person, version_id: int) -> dict[str, dict]:
    results = person.ok("GET", f"versions/{version_id}/quality/")["results"]
    kinds = [r["kind"] for r in results]
    assert len(kinds) == len(set(kinds)), kinds  # each kind once
    return {r["kind"]: r for r in results}


def _checks(person: Person, version_id: int) -> dict[str, dict]:
    body = person.ok("GET", f"versions/{version_id}/checks/")
    return {c["code"]: c for c in (body["results"] if isinstance(body, dict) else body)}


def _engine_pq(data: dict, sample: list[int]) -> dict:
    """What the engine computes on the generated truth and the seller's PNGs of the sample."""
    truth, pngs = data["truth"]
    seller, seller_pngs = data["seller"]
    with tempfile.TemporaryDirectory() as tmp:
        for name, folder in (("gt", pngs), ("pred", seller_pngs)):
            (Path(tmp) / name).mkdir()
            for file_name, blob in folder.items():
                (Path(tmp) / name / file_name).write_bytes(blob)
        keep = set(sample)
        gt = {**truth, "annotations": [a for a in truth["annotations"] if a["image_id"] in keep]}
        return panoptic_quality(gt, seller, gt_dir=Path(tmp) / "gt", pred_dir=Path(tmp) / "pred").results_dict()


def test_panoptic_version_from_upload_to_the_buyer(worker_factory, people, tmp_path):
    seller, auditor, moderator, buyer = people["seller"], people["auditor"], people["moderator"], people["buyer"]
    worker_factory(extra_env=WORKER_ENV)
    data = panoptic_dataset(images=12, seed=21, jitter=1, merged_every=4)  # images 4, 8, 12: two bolts as one segment
    version_id = seller_submit(seller, slug="e2e-panoptic", annotation_kind="panoptic", files=panoptic_seller_files(data), tmp=tmp_path)

    sample = wait_sample(auditor, version_id)
    assert sample["image_ids"] and set(sample["image_ids"]) <= set(range(1, 13))
    assert all(img["url"] for img in sample["images"])  # the auditor can fetch each sampled image
    assert jobs(seller, version_id)["quality_panoptic"]["state"] == "waiting"
    assert seller.ok("GET", f"versions/{version_id}/")["state"] == "processing"

    # A reference whose PNG and segments_info disagree is refused, located, and changes nothing.
    truth_doc, truth_pngs = data["truth"]
    bad_doc = json.loads(json.dumps(truth_doc))
    first = next(i for i, a in enumerate(bad_doc["annotations"]) if a["image_id"] == sample["image_ids"][0])
    bad_doc["annotations"][first]["segments_info"].pop()
    bad = panoptic_reference_archive(truth=(bad_doc, truth_pngs), sample=sample["image_ids"])
    status, body = auditor.call("POST", f"versions/{version_id}/audit/reference/", raw=bad, content_type="application/zip")
    assert status == 400 and body["code"] == "invalid_reference", body
    assert any(d["location"] == f"annotations[{_index_in_sample(bad_doc, sample, first)}].segments_info" and d["code"] == "segments_differ" for d in body["details"]), body
    # A file name that tries to leave the archive is found nowhere (never joined to a path).
    escape_doc = json.loads(json.dumps(truth_doc))
    name = escape_doc["annotations"][first]["file_name"]
    escape_doc["annotations"][first]["file_name"] = "../../../etc/passwd"
    escape = panoptic_reference_archive(truth=(escape_doc, truth_pngs | {"../../../etc/passwd": truth_pngs[name]}), sample=sample["image_ids"])
    status, body = auditor.call("POST", f"versions/{version_id}/audit/reference/", raw=escape, content_type="application/zip")
    assert status == 400 and body["code"] == "invalid_reference", body
    assert {d["code"] for d in body["details"]} <= {"image_file_missing", "unreferenced_file", "path_escape"}, body
    assert seller.ok("GET", f"versions/{version_id}/")["state"] == "processing"
    assert "panoptic" not in _reports(seller, version_id) or _reports(seller, version_id)["panoptic"]["status"] != "ok"

    # The same archive through the sellers' multipart upload path: checked alike, refused alike.
    rejected = upload(auditor, version_id, role="reference", name="reference-bad.zip", data=bad, expect="rejected")
    assert rejected["error"]["code"] == "invalid_reference"
    assert any(d["code"] == "segments_differ" for d in rejected["error"]["details"]), rejected
    assert seller.call("GET", f"uploads/{rejected['id']}/")[0] == 404  # the seller never sees the auditor's upload
    assert seller.call("POST", f"versions/{version_id}/uploads/", {"role": "reference", "name": "r.zip", "size": 1, "sha256": "0" * 64})[0] == 404
    good = panoptic_reference_archive(truth=data["truth"], sample=sample["image_ids"])
    done = upload(auditor, version_id, role="reference", name="reference.zip", data=good)
    assert done["state"] == "complete"
    assert wait_state(seller, version_id, leave=IN_PIPELINE)["state"] == "in_review"

    reports = _reports(seller, version_id)
    assert set(reports) == {"panoptic"}  # a panoptic-only version: no instance audit, no intrinsic
    summary = reports["panoptic"]["summary"]
    expected = _engine_pq(data, sample["image_ids"])
    for key, group in (("pq", "All"), ("pq_things", "Things"), ("pq_stuff", "Stuff")):
        fig = summary[key]
        assert fig["status"] == "verified" and fig["n"] == len(sample["image_ids"])
        assert fig["value"] == pytest.approx(expected[group]["pq"], abs=1e-12)
        assert fig["ci"][0] <= fig["value"] <= fig["ci"][1]
    assert 0.5 < summary["pq"]["value"] < 1.0  # outlines a pixel off: good, not perfect
    assert summary["pq_stuff"]["value"] > summary["pq_things"]["value"]  # the merged bolts cost the things
    merged = summary["merged_instances"]
    assert merged["status"] == "measured" and merged["value"] == 3.0  # every merged image, found in all the seller's data
    assert {e["image_id"] for e in summary["merged_instances_examples"]} == {4, 8, 12}

    check = _checks(moderator, version_id)["merged_instances"]
    assert check["status"] == "failed" and check["severity"] == "warning"
    assert {e["image_id"] for e in check["evidence"]["examples"]} == {4, 8, 12}

    status, body = moderator.call("POST", f"moderation/versions/{version_id}/decision/", {"decision": "approve", "reason": "figures fit"})
    assert status == 200, body
    listing = buyer.ok("GET", "listings/e2e-panoptic/")
    assert listing["quality"]["pq"]["status"] == "verified"
    assert listing["quality"]["pq"]["value"] == pytest.approx(summary["pq"]["value"])


def _index_in_sample(doc: dict, sample: dict, index: int) -> int:
    """The position of ``doc``'s annotation ``index`` in the reference built for ``sample``."""
    keep = set(sample["image_ids"])
    kept = [i for i, a in enumerate(doc["annotations"]) if a["image_id"] in keep]
    return kept.index(index)


def test_demo_publishes_its_panoptic_listing_with_figures_from_the_pipeline(worker_factory, seller, auditor, moderator, people):
    from marketplace.demo_panoptic import PANOPTIC_DEMO, seed_panoptic

    worker_factory(extra_env=WORKER_ENV)
    users = {"demo-seller": seller.user, "demo-auditor": auditor.user, "demo-moderator": moderator.user}
    lines: list[str] = []
    assert seed_panoptic(users=users, seller_org=seller.org, log=lines.append, timeout=300) == PANOPTIC_DEMO["slug"]
    listing = people["buyer"].ok("GET", f"listings/{PANOPTIC_DEMO['slug']}/")
    pq = listing["quality"]["pq"]
    assert pq["status"] == "verified" and 0.5 < pq["value"] < 1.0 and pq["ci"][0] <= pq["value"] <= pq["ci"][1]
    assert seed_panoptic(users=users, seller_org=seller.org, log=lines.append, timeout=300) is None  # already published
    assert lines[-1].endswith("already published")


# ---------------------------------------------------------------- splits and second passes


def _split(coco: dict, ids: range, *, license_id: int = 1) -> dict:
    keep = set(ids)
    images = [{**img, "license": license_id} for img in coco["images"] if img["id"] in keep]
    licenses = coco["licenses"] + [{"id": 2, "name": "CC BY-NC 4.0", "url": "https://creativecommons.org/licenses/by-nc/4.0/"}]
    return {**coco, "licenses": licenses, "images": images, "annotations": [a for a in coco["annotations"] if a["image_id"] in keep]}


def _audit(auditor: Person, version_id: int, truth: dict) -> list[int]:
    from marketplace.demo import reference_for_sample

    sample = wait_sample(auditor, version_id)["image_ids"]
    status, body = auditor.call("POST", f"versions/{version_id}/audit/reference/", reference_for_sample(reference=truth, sample=sample))
    assert status == 201, body
    return sample


def _wait_evaluation(buyer: Person, evaluation_id: int, timeout: float = 120) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = buyer.ok("GET", f"evaluations/{evaluation_id}/")
        if body.get("status", body.get("state")) in ("done", "failed"):
            return body
        time.sleep(1)
    raise TimeoutError("evaluation did not finish")


def test_three_split_image_version_from_upload_to_the_buyer(worker_factory, people, tmp_path):
    from marketplace.demo import images_zip, star_dataset
    from quality.engine.audit import audit_compare

    seller, auditor, moderator, buyer = people["seller"], people["auditor"], people["moderator"], people["buyer"]
    worker_factory(extra_env=WORKER_ENV)
    truth, coco, pngs = star_dataset(images=20, seed=8, noise=0.1)
    splits = {"instances_train.json": _split(coco, range(1, 13)), "instances_val.json": _split(coco, range(13, 17)), "instances_test.json": _split(coco, range(17, 21), license_id=2)}
    files = {("images", "images.zip"): images_zip(pngs)} | {("annotations", name): json.dumps(doc).encode() for name, doc in splits.items()}
    version_id = seller_submit(seller, slug="e2e-splits", annotation_kind="instances", files=files, tmp=tmp_path)

    sample = _audit(auditor, version_id, truth)
    assert set(sample) == set(range(1, 21))  # drawn over every split (20 images: all of them)
    assert wait_state(seller, version_id, leave=IN_PIPELINE)["state"] == "in_review"

    detail = seller.ok("GET", f"versions/{version_id}/")
    stats = detail["statistics"]
    assert {name: (s["kind"], s["images"]) for name, s in stats["splits"].items()} == {
        "instances_train": ("train", 12), "instances_val": ("val", 4), "instances_test": ("test", 4)
    }
    assert stats["images"] == 20 and stats["instances"] == len(coco["annotations"])
    assert sum(c["count"] for c in stats["categories"]) == len(coco["annotations"])
    assert len(detail["validation_report"]["files"]) == 3
    from datasets.models import DatasetFile

    caches = sorted(DatasetFile.objects.filter(version_id=version_id, role="cache").values_list("path", flat=True))  # internal: not in the manifest
    assert caches == ["_ingest/cache/instances_test/reference.npz", "_ingest/cache/instances_train/reference.npz", "_ingest/cache/instances_val/reference.npz"]

    reports = _reports(seller, version_id)
    assert {"intrinsic", "audit"} <= set(reports)
    assert reports["intrinsic"]["summary"]["n_images"] == 20  # every split's images
    audit = reports["audit"]["summary"]
    expected = audit_compare(truth, coco, seed=version_id, n_boot=10, n_boot_ap=2, image_ids=sorted(sample))
    assert audit["n_images"] == 20 and audit["mask_iou"]["status"] == "verified"
    assert audit["mask_iou"]["value"] == pytest.approx(expected.mask_iou, abs=1e-9) and 0.6 < audit["mask_iou"]["value"] < 1.0

    terms = seller.ok("GET", f"versions/{version_id}/effective-terms/")
    assert {t["spdx"]: t["images"] for t in terms["licenses"]} == {"CC-BY-4.0": 16, "CC-BY-NC-4.0": 4}  # the terms of every split
    assert terms["commercial_use"] is False and terms["commercial_images"] == 16

    status, body = moderator.call("POST", f"moderation/versions/{version_id}/decision/", {"decision": "approve", "reason": "three splits"})
    assert status == 200, body
    listing = buyer.ok("GET", "listings/e2e-splits/")
    assert listing["quality"]["mask_iou"]["status"] == "verified"

    # The public evaluation split is the declared test split: its images are scored, a train image is refused.
    test_images = [a for a in coco["annotations"] if a["image_id"] >= 17]
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 1.0} for a in test_images]
    status, body = buyer.call("POST", "listings/e2e-splits/evaluations/", results[:1] + [{**results[0], "image_id": 1}])
    assert status == 400 and any(d["location"] == "[1].image_id" and d["code"] == "not_in_split" for d in body["details"]), body
    status, body = buyer.call("POST", "listings/e2e-splits/evaluations/", results)
    assert status == 202, body
    evaluation = _wait_evaluation(buyer, body["id"])
    assert evaluation["report"]["split"] == {"rule": "split", "images": 4}
    assert evaluation["status"] == "done" and evaluation["report"]["stats"]["AP"] == pytest.approx(1.0)  # the seller's own masks on the test split


def test_second_pass_version_measures_agreement_and_flags_it_to_everyone(worker_factory, people, tmp_path):
    from marketplace.demo import images_zip, star_dataset
    from quality.engine.agreement import agreement_compare

    seller, auditor, moderator, buyer = people["seller"], people["auditor"], people["moderator"], people["buyer"]
    worker_factory(extra_env=WORKER_ENV)
    truth, first, pngs = star_dataset(images=12, seed=4, noise=0.05)
    _, second, _ = star_dataset(images=12, seed=4, noise=0.35)  # the same objects drawn by a sloppier annotator
    files = {("images", "images.zip"): images_zip(pngs), ("annotations", "annotations.json"): json.dumps(first).encode(), ("second_pass", "second_pass.json"): json.dumps(second).encode()}
    version_id = seller_submit(seller, slug="e2e-second-pass", annotation_kind="instances", files=files, tmp=tmp_path)
    _audit(auditor, version_id, truth)
    assert wait_state(seller, version_id, leave=IN_PIPELINE)["state"] == "in_review"

    reports = _reports(seller, version_id)
    assert {"intrinsic", "audit", "agreement"} <= set(reports)
    agreement = reports["agreement"]["summary"]
    expected = agreement_compare(first, second, seed=version_id, n_boot=10)
    assert agreement["agreement"]["status"] == "measured"
    assert agreement["agreement"]["value"] == pytest.approx(expected.mean_iou, abs=1e-9) and 0.5 < agreement["agreement"]["value"] < 0.85
    assert agreement["inconsistent_labeling"] is True
    assert reports["audit"]["summary"]["mask_iou"]["status"] == "verified"

    check = _checks(moderator, version_id)["inconsistent_labeling"]
    assert check["status"] == "failed" and check["evidence"]["agreement"]["value"] == agreement["agreement"]["value"]
    desk = moderator.ok("GET", f"moderation/versions/{version_id}/")
    assert desk["inconsistent_labeling"] is True

    status, body = moderator.call("POST", f"moderation/versions/{version_id}/decision/", {"decision": "approve", "reason": "flagged, sold as is"})
    assert status == 200, body
    listing = buyer.ok("GET", "listings/e2e-second-pass/")
    assert listing["inconsistent_labeling"] is True
    assert listing["quality"]["agreement"]["status"] == "measured" and listing["quality"]["mask_iou"]["status"] == "verified"
    found = {r["slug"] for r in buyer.ok("GET", "listings/?min_agreement=0.5")["results"]}
    assert "e2e-second-pass" in found
    assert "e2e-second-pass" not in {r["slug"] for r in buyer.ok("GET", "listings/?min_agreement=0.9")["results"]}
