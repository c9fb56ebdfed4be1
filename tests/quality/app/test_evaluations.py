"""Buyer evaluations: the public split, limits and errors (in-process), and the whole job
through a real worker process."""

from __future__ import annotations

import time

import pytest

from quality import services
from quality.models import BuyerEvaluation, EvaluationSplit
from tests import factories
from tests.quality.app.data import make_coco, seed_version, set_state
from tests.quality.app.evaldata import results_for


def published_listing(seller, *, val_folder: bool = False):
    version = factories.make_version(seller=seller)
    data = seed_version(version, val_folder=val_folder)
    set_state(version, "published")
    return version, data


def url(version) -> str:
    return f"/api/v1/listings/{version.dataset.slug}/evaluations/"


@pytest.mark.django_db
def test_split_is_seeded_ten_percent_outside_the_audit_sample(seller):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    assert split.rule == "seeded" and len(split.image_ids) == 2  # ceil(10 % of 14)
    assert not set(split.image_ids) & set(data["sample"])
    assert services.evaluation_split_get(version=version).pk == split.pk
    again, _ = services.split_image_ids(coco=data["annotations"], audit_sample=data["sample"], seed=version.pk)
    assert again == split.image_ids  # deterministic
    assert split.category_ids == [1, 2]


@pytest.mark.django_db
def test_split_prefers_the_sellers_val_folder(seller):
    version, _ = published_listing(seller, val_folder=True)
    split = services.evaluation_split_get(version=version)
    assert split.rule == "folder" and split.image_ids == [4, 8, 12, 16, 20]


@pytest.mark.django_db
def test_results_outside_the_split_are_400_with_location(seller, buyer):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    outside = next(i for i in range(1, 21) if i not in split.image_ids)
    results[1]["image_id"] = outside
    results[0]["category_id"] = 99
    resp = buyer.client.post(url(version), results, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "results_outside_split"
    locations = {d["location"] for d in body["details"]}
    assert {"[1].image_id", "[0].category_id"} <= locations
    assert BuyerEvaluation.objects.count() == 0

    assert buyer.client.post(url(version), {"not": "a list"}, format="json").status_code == 400
    assert buyer.client.post(url(version), [], format="json").status_code == 400


@pytest.mark.django_db
def test_size_limit_gives_413(seller, buyer, settings):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    settings.QUALITY_EVALUATION_MAX_BYTES = 200
    resp = buyer.client.post(url(version), results_for(data["annotations"], split.image_ids), format="json")
    assert resp.status_code == 413 and resp.json()["code"] == "results_too_large"
    assert BuyerEvaluation.objects.count() == 0


@pytest.mark.django_db
def test_detection_count_limit_gives_413(seller, buyer, monkeypatch):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    monkeypatch.setattr(services, "MAX_DETECTIONS", 1)
    resp = buyer.client.post(url(version), results_for(data["annotations"], split.image_ids), format="json")
    assert resp.status_code == 413 and resp.json()["code"] == "too_many_detections"


@pytest.mark.django_db
def test_rate_limit_gives_429(seller, buyer, settings):
    version, _ = published_listing(seller)
    settings.QUALITY_EVALUATION_RATE = "2/hour"
    codes = [buyer.client.post(url(version), [{"image_id": -1}], format="json").status_code for _ in range(3)]
    assert codes == [400, 400, 429]


@pytest.mark.django_db
def test_who_may_post(seller, seller_b, buyer, api_client):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    assert api_client.post(url(version), results, format="json").status_code == 401
    assert seller_b.client.post(url(version), results, format="json").status_code == 403  # not a buyer
    draft = factories.make_version(seller=seller)
    seed_version(draft)
    assert buyer.client.post(url(draft), results, format="json").status_code == 404  # not published
    assert buyer.client.post("/api/v1/listings/no-such-listing/evaluations/", results, format="json").status_code == 404


@pytest.mark.worker
def test_buyer_evaluation_end_to_end_through_a_real_worker(celery_worker, seller, buyer):
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)  # the split's own masks: perfect
    resp = buyer.client.post(url(version), results, format="json")
    assert resp.status_code == 202, resp.content
    body = resp.json()
    assert set(body) == {"id", "status", "url"} and body["status"] == "queued"
    assert body["url"].endswith(f"/api/v1/evaluations/{body['id']}/")

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job = buyer.client.get(f"/api/v1/evaluations/{body['id']}/").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.5)
    assert job["status"] == "done", job
    report = job["report"]
    assert report["stats"]["AP"] == pytest.approx(1.0) and report["stats"]["AP50"] == pytest.approx(1.0)
    assert len(report["stats_list"]) == 12
    assert {c["category_id"] for c in report["per_category_ap"]} == {1, 2}
    assert report["split"] == {"rule": "seeded", "images": len(split.image_ids)}

    # Only the requesting buyer organization sees the job.
    other_buyer = factories.make_buyer(username="buyer-b")
    assert other_buyer.client.get(f"/api/v1/evaluations/{body['id']}/").status_code == 404
    assert seller.client.get(f"/api/v1/evaluations/{body['id']}/").status_code == 404

    # Wrong masks for the split's images: a real, lower AP through the same worker.
    shifted = results_for(make_coco(jitter=6), split.image_ids)
    resp = buyer.client.post(url(version), shifted, format="json")
    eid = resp.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and BuyerEvaluation.objects.get(pk=eid).state not in ("done", "failed"):
        time.sleep(0.5)
    worse = buyer.client.get(f"/api/v1/evaluations/{eid}/").json()
    assert worse["status"] == "done" and worse["report"]["stats"]["AP"] < 1.0
    assert EvaluationSplit.objects.filter(version=version).count() == 1


@pytest.mark.worker
def test_report_task_twice_through_a_real_worker_stores_one_report(celery_worker, seller):
    from quality.models import QualityReport
    from quality.tasks import report_compute_task

    version = factories.make_version(seller=seller)
    seed_version(version)
    first = report_compute_task.delay(version.pk, "intrinsic")
    second = report_compute_task.delay(version.pk, "intrinsic")
    assert first.get(timeout=90) == second.get(timeout=90)
    assert QualityReport.objects.filter(version=version, kind="intrinsic").count() == 1
    third = report_compute_task.delay(version.pk, "intrinsic").get(timeout=90)
    assert third == first.get()


@pytest.mark.django_db
def test_results_whose_masks_the_gate_refuses_are_400_located_and_nothing_is_stored(seller, buyer):
    """An RLE whose size does not match its image, or whose runs do not cover it, is refused
    when posted, by the engine's own gate: its code and JSON path, no evaluation queued."""
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    results[0]["segmentation"] = {"size": [10, 10], "counts": results[0]["segmentation"]["counts"]}
    results[1]["segmentation"] = {"size": results[1]["segmentation"]["size"], "counts": "!!!not-rle"}
    resp = buyer.client.post(url(version), results, format="json")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "invalid_results"
    assert [(d["code"], d["location"]) for d in body["details"]] == [
        ("rle_size_mismatch", "[0].segmentation.size"),
        ("rle_bad_character", "[1].segmentation.counts"),
    ]
    assert BuyerEvaluation.objects.count() == 0


@pytest.mark.django_db
def test_bodies_above_the_global_10mb_cap_reach_the_evaluation_limit(seller, buyer, settings):
    """The evaluation's own cap (50 MB by default) applies, not DATA_UPLOAD_MAX_MEMORY_SIZE."""
    version, _ = published_listing(seller)
    padding = "x" * 1000
    results = [{"image_id": -1, "category_id": 1, "score": 1.0, "segmentation": [[0, 0, 1, 0, 1, 1]], "note": padding} for _ in range(11_000)]
    resp = buyer.client.post(url(version), results, format="json")
    assert resp.status_code == 400 and resp.json()["code"] == "results_outside_split"
    assert resp.json()["details"][0]["location"] == "[0].image_id"


@pytest.mark.django_db
def test_a_buyer_organization_has_an_hourly_evaluation_budget_shared_by_its_members(seller, buyer, settings):
    """Per-user throttling cannot stop an organization whose many members each post a few:
    the organization's own budget does, counted in the database; other organizations keep theirs."""
    settings.QUALITY_EVALUATION_ORG_PER_HOUR = 2
    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    colleague = factories.make_buyer(username="buyer-a-colleague", org=buyer.org)
    assert buyer.client.post(url(version), results, format="json").status_code == 202
    assert colleague.client.post(url(version), results, format="json").status_code == 202
    resp = buyer.client.post(url(version), results, format="json")
    assert resp.status_code == 429, resp.content
    body = resp.json()
    assert body["code"] == "organization_evaluation_limit" and body["details"][0]["location"] == "organization"
    assert 3500 <= int(resp["Retry-After"]) <= 3600
    assert BuyerEvaluation.objects.filter(organization=buyer.org).count() == 2  # the refused one stored nothing
    other = factories.make_buyer(username="buyer-other-org")
    assert other.client.post(url(version), results, format="json").status_code == 202


@pytest.mark.django_db
def test_the_stored_results_are_the_body_as_it_came_and_an_empty_body_is_400(seller, buyer):
    import hashlib
    import json

    from marketplace.core.storage import get_storage

    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    body = json.dumps(results, indent=1).encode()  # not how the server would write it
    resp = buyer.client.generic("POST", url(version), body, content_type="application/json")
    assert resp.status_code == 202, resp.content
    evaluation = BuyerEvaluation.objects.get(pk=resp.json()["id"])
    with get_storage().open(evaluation.results_key) as f:
        stored = f.read()
    assert stored == body and evaluation.results_sha256 == hashlib.sha256(body).hexdigest()
    assert evaluation.n_detections == len(results)

    before = BuyerEvaluation.objects.count()
    empty = buyer.client.generic("POST", url(version), b"", content_type="application/json")
    assert empty.status_code == 400 and empty.json()["code"] == "invalid_results", empty.content
    assert BuyerEvaluation.objects.count() == before


def _bodies(results: list[dict]) -> dict[str, bytes]:
    """Result bodies the compiled check and the Python check must decide alike: good ones
    (also with escapes, extra members, a box) and each way of getting one detection wrong."""
    import json

    from tests.hostile_masks import MASK_CASES

    good = json.dumps(results).encode()
    first = results[0]
    h, w = first["segmentation"]["size"]

    def with_first(text: str) -> bytes:
        return b"[" + text.encode() + b"," + json.dumps(results[1:]).encode()[1:]

    seg = json.dumps(first["segmentation"])
    bodies = {
        "good": good,
        "good-indented": json.dumps(results, indent=2).encode(),
        "good-escaped-slash": with_first(json.dumps({**first, "segmentation": {"size": [h, w], "counts": first["segmentation"]["counts"]}}).replace("/", "\\/")),
        "good-extra-members": with_first(json.dumps({**first, "note": {"a": [1, 2.5, None, True]}, "id": 7})),
        "good-int-score": with_first(json.dumps({**first, "score": 1})),
        "image-outside": with_first(json.dumps({**first, "image_id": 10_000})),
        "image-as-float": with_first(json.dumps({**first, "image_id": float(first["image_id"])})),
        "image-as-bool": with_first(json.dumps({**first, "image_id": True})),
        "category-outside": with_first(json.dumps({**first, "category_id": 99})),
        "score-nan": with_first(json.dumps({**first, "score": float("nan")})),
        "score-huge": with_first(json.dumps(first).replace('"score": 0.9', '"score": 1e999')),
        "score-missing": with_first(json.dumps({k: v for k, v in first.items() if k != "score"})),
        "duplicate-image": with_first(json.dumps(first)[:-1] + ', "image_id": 10000}'),
        "duplicate-image-last-good": with_first('{"image_id": 10000, ' + json.dumps(first)[1:]),
        "size-swapped": with_first(json.dumps({**first, "segmentation": {"size": [w + 1, h], "counts": first["segmentation"]["counts"]}})),
        "polygon": with_first(json.dumps({**first, "segmentation": [[1, 1, 20, 1, 20, 20]]})),
        "segmentation-extra-key": with_first(json.dumps({**first, "segmentation": {**first["segmentation"], "x": 1}})),
        "not-a-list": json.dumps({"results": results}).encode(),
        "a-number": with_first("7"),
        "seg-first": with_first(json.dumps({"segmentation": json.loads(seg), **{k: v for k, v in first.items() if k != "segmentation"}})),
    }
    for name, case in MASK_CASES.items():
        bodies[f"mask-{name}"] = with_first(json.dumps({k: v for k, v in first.items() if k != "segmentation"})[:-1] + f', "segmentation": {case.segmentation}}}')
        # the same hostile counts on a mask of the image's own size
        at_size = case.segmentation.replace("[10, 10]", f"[{h}, {w}]")
        bodies[f"mask-at-size-{name}"] = with_first(json.dumps({k: v for k, v in first.items() if k != "segmentation"})[:-1] + f', "segmentation": {at_size}}}')
    return bodies


@pytest.mark.django_db
def test_the_compiled_check_accepts_exactly_what_the_python_check_accepts(seller):
    """Results the compiled reader reads are accepted without Python objects per detection
    only when the Python check (which locates errors) accepts them too; every body it
    declines gets the Python check's answer."""
    import json

    from marketplace.core.errors import InvalidInput

    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    assert len(results) >= 2
    accepted = []
    for name, body in _bodies(results).items():
        compiled = services._accepted_compiled(body, split=split)
        try:
            python = services._validate_results(json.loads(body), split=split)
        except InvalidInput:
            python = None
        except ValueError:  # not JSON: the parser answers 400 before any check
            python = None
            assert services.results_read_compiled(body) is None, name
        assert compiled in (None, python), name  # never accepts what Python refuses
        if compiled is not None:
            accepted.append(name)
    assert {"good", "good-indented", "good-escaped-slash", "good-extra-members", "good-int-score", "seg-first"} <= set(accepted)
    assert not [a for a in accepted if not a.startswith("good") and a != "seg-first"]


@pytest.mark.django_db
def test_a_body_the_compiled_check_refuses_gets_the_located_errors_and_nothing_is_stored(seller, buyer):
    import json

    version, data = published_listing(seller)
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    bodies = _bodies(results)
    resp = buyer.client.generic("POST", url(version), bodies["size-swapped"], content_type="application/json")
    assert resp.status_code == 400 and [(d["code"], d["location"]) for d in resp.json()["details"]] == [("rle_size_mismatch", "[0].segmentation.size")]
    resp = buyer.client.generic("POST", url(version), bodies["image-outside"], content_type="application/json")
    assert resp.status_code == 400 and resp.json()["code"] == "results_outside_split"
    assert BuyerEvaluation.objects.count() == 0
    resp = buyer.client.generic("POST", url(version), bodies["good-escaped-slash"], content_type="application/json")
    assert resp.status_code == 202, resp.content
    assert BuyerEvaluation.objects.get().n_detections == len(json.loads(bodies["good"]))
