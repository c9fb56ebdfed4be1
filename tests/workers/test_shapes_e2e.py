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
from tests.workers.shapes_api import Person, jobs, seller_submit, wait_sample, wait_state

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

    good = panoptic_reference_archive(truth=data["truth"], sample=sample["image_ids"])
    status, body = auditor.call("POST", f"versions/{version_id}/audit/reference/", raw=good, content_type="application/zip")
    assert status == 201, body
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
