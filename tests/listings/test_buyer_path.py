"""The buyer's path from a search result to every piece of evidence and to the public
evaluation split, over HTTP only, on versions the real pipeline (worker processes,
PostgreSQL, Redis, the S3 endpoint) computed and a moderator approved through the API.

The buyer follows only the links and ids in the JSON it receives; the test knows the
seller's data only to check what the buyer got."""

from __future__ import annotations

import io
import json
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient

from datasets.states import VersionState
from marketplace.core.storage import S3Storage, get_storage
from marketplace.demo import DemoSpec, auditor_reference_upload, dataset_submit_generated, sample_drawn, version_state, wait_for
from tests.listings import pipeline

pytestmark = pytest.mark.worker

API = "/api/v1"
WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "2", "PIPELINE_RETRY_BACKOFF_MAX": "2"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def download(actor, url: str) -> bytes:
    """A short-lived storage link: the S3 endpoint's presigned URL, or the API's signed one."""
    if isinstance(get_storage(), S3Storage):
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the test S3 endpoint
            return resp.read()
    return b"".join(actor.client.get(url).streaming_content)


def get_json(actor, url: str, **params) -> dict | list:
    resp = actor.client.get(url, params)
    assert resp.status_code == 200, (url, resp.status_code, resp.content[:500])
    return resp.json()


def approve(moderator, version) -> None:
    resp = moderator.client.post(f"{API}/moderation/versions/{version.pk}/decision/", {"decision": "approve", "reason": "evidence holds"}, format="json")
    assert resp.status_code == 200, resp.content


def test_from_a_search_result_the_buyer_reaches_every_report_plot_provenance_checks_and_terms(worker_factory, seller, auditor, moderator, buyer):
    worker_factory(extra_env=WORKER_ENV)
    reference: dict = {}
    spec = DemoSpec("evidence-bins", "Evidence bins", "bins of bolts for the buyer's path", images=20, seed=21, noise=0.12, price="40.00")
    version = dataset_submit_generated(seller_user=seller.user, org=seller.org, spec=spec, ref_out=reference)
    wait_for(lambda: sample_drawn(version.pk) or version_state(version.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING), timeout=180, what="ingest and the audit sample")
    auditor_reference_upload(version=version, auditor_user=auditor.user, reference=reference)
    wait_for(lambda: version_state(version.pk) not in (VersionState.SUBMITTED, VersionState.PROCESSING), timeout=240, what="quality and checks")
    assert version_state(version.pk) == VersionState.IN_REVIEW
    approve(moderator, version)

    # A search result: the listing's version id and its evidence links, no other knowledge.
    page = get_json(buyer, f"{API}/listings/", q="bolts")
    hit = next(r for r in page["results"] if r["title"] == "Evidence bins")
    assert hit["version_id"] == version.pk
    detail = get_json(buyer, hit["url"])
    assert detail["slug"] == hit["slug"] and detail["version_id"] == hit["version_id"]
    assert detail["evidence"] == hit["evidence"] and detail["per_class"] == hit["per_class"]
    evidence = hit["evidence"]

    # Every report, every plot through the listing's link (the same bytes as the report's
    # own short-lived link), and the full report JSON.
    reports = {r["kind"]: r for r in evidence["reports"]}
    assert {"intrinsic", "audit"} <= set(reports), reports
    full_reports = {}
    for kind, link in reports.items():
        report = get_json(buyer, link["url"])
        assert report["kind"] == kind and report["version_id"] == hit["version_id"] and report["status"] == "ok"
        assert set(report["plots"]) == set(link["plots"]) and link["plots"], kind
        for name, url in link["plots"].items():
            resp = buyer.client.get(url)
            assert resp.status_code == 200 and resp["Content-Type"] == "image/png", (kind, name, resp.status_code)
            assert resp.content.startswith(PNG_MAGIC) and resp.content == download(buyer, report["plots"][name]), (kind, name)
        full_reports[kind] = json.loads(download(buyer, report["report_url"]))
        assert full_reports[kind]["kind"] == kind
    audit_plots = set(reports["audit"]["plots"])
    assert {n.split("_")[1] for n in audit_plots if n.startswith("overlay_")} == {"best", "median", "worst"}, audit_plots

    # The overlays are the sample's images with both mask sets: the best one's picture
    # has the reference's blue and the seller's orange.
    best = next(n for n in audit_plots if n.startswith("overlay_best_"))
    with Image.open(io.BytesIO(buyer.client.get(reports["audit"]["plots"][best]).content)) as img:
        colours = {tuple(p) for p in np.asarray(img.convert("RGB")).reshape(-1, 3)}
    assert (31, 119, 255) in colours and (255, 127, 14) in colours

    # Per-class figures: instances per class add up to the listing's, AP where verified is
    # the audit's own per-class AP.
    per_class = {c["name"]: c for c in hit["per_class"]}
    assert set(per_class) == {"gripper", "bolt", "cable"}
    assert sum(c["instances"] for c in per_class.values()) == hit["instances"] == len(reference["annotations"])
    audit_ap = full_reports["audit"]["report"]["per_category_ap"]
    with_ap = [c for c in per_class.values() if c["ap"] is not None]
    assert with_ap
    for c in with_ap:
        assert c["ap"]["status"] == "verified" and c["ap"]["value"] == pytest.approx(audit_ap[str(c["category_id"])])

    # The public provenance summary: values and statuses, consent records counted, nothing
    # that names a person.
    provenance = get_json(buyer, evidence["provenance"])
    assert provenance["version_id"] == hit["version_id"]
    assert provenance["fields"]["locations"]["status"] == "self-declared" and provenance["fields"]["locations"]["value"]
    assert set(provenance["consent_records"]) == {"records", "sessions", "legal_bases", "with_document"}
    text = json.dumps(provenance)
    assert "session_id" not in text and "consent_id" not in text and "note" not in text
    assert provenance["completeness"] == hit["provenance_completeness"]

    # The checks, as the listing's summary counts them; the effective terms, as it states them.
    checks = get_json(buyer, evidence["checks"])
    summary = evidence["checks_summary"]
    assert len(checks) == summary["total"] > 0
    assert sum(1 for c in checks if c["status"] == "passed") == summary["passed"]
    assert sum(1 for c in checks if c["status"] == "failed") == summary["failed"]
    terms = get_json(buyer, evidence["effective_terms"])
    assert terms["commercial_use"] == hit["commercial_use"] and terms["derivatives"] == hit["derivatives"]
    assert terms["images"] == hit["frames"]


def test_a_buyer_evaluates_a_model_on_the_split_through_the_api_alone(worker_factory, seller, moderator, buyer, seller_b):
    worker_factory(extra_env=pipeline.WORKER_ENV)
    images, anns, pngs = [], [], {}
    for i in range(1, 21):
        name = f"frames/{i:03d}.png"
        images.append({"id": i, "file_name": name, "width": 48, "height": 48, "license": 1})
        anns.append(pipeline.square(len(anns) + 1, i, 1 + i % 2, 4.0 + i % 5))
        pngs[name] = pipeline.png(i)
    coco = {
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "bolt"}, {"id": 2, "name": "gripper"}],
    }
    files = {("images", "frames.zip"): pipeline.zipped(pngs), ("annotations", "annotations.json"): pipeline.json_bytes(coco)}
    pipeline.publish(seller, moderator, slug="split-bins", files=files)

    hit = next(r for r in get_json(buyer, f"{API}/listings/")["results"] if r["slug"] == "split-bins")
    split_url = hit["evidence"]["evaluation_split"]
    assert APIClient().get(split_url).status_code == 401  # signed-in buyers only
    assert seller_b.client.get(split_url).status_code == 403  # not a buyer

    split = get_json(buyer, split_url)
    assert split["version_id"] == hit["version_id"] and split["count"] == len(split["results"]) >= 1
    assert {c["name"] for c in split["categories"]} == {"bolt", "gripper"}
    text = json.dumps(split)
    assert "segmentation" not in text and "bbox" not in text and "annotations" not in text  # never the answers
    first = split["results"][0]
    assert first["file_name"] in pngs and (first["width"], first["height"]) == (48, 48)
    image = download(buyer, first["url"])
    assert image == pngs[first["file_name"]] and first["size"] == len(image)

    # The buyer's "model": masks for the split's images and categories, in COCO results form.
    split_ids = [img["id"] for img in split["results"]]
    mine = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "segmentation": a["segmentation"], "score": 0.9}
        for a in anns
        if a["image_id"] in split_ids
    ]
    resp = buyer.client.post(split["evaluations"], mine, format="json")
    assert resp.status_code == 202, resp.content
    poll = resp.json()["url"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = get_json(buyer, poll)
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done", job
    assert job["version_id"] == hit["version_id"]
    assert job["report"]["stats"]["AP"] == pytest.approx(1.0)  # the split's own masks
    assert job["report"]["split"]["images"] == split["count"]

    # Results for an image outside the split: 400, located, nothing stored.
    outside = next(i for i in range(1, 21) if i not in split_ids)
    wrong = [dict(mine[0], image_id=outside)] + mine[1:]
    resp = buyer.client.post(split["evaluations"], wrong, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "results_outside_split" and {d["location"] for d in body["details"]} == {"[0].image_id"}
