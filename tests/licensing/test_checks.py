"""Each provenance check: one case that triggers it, one that does not."""

import io
import time

import numpy as np
import pytest
from PIL import Image

from datasets.models import DatasetFile
from datasets.states import VersionState
from licensing.checks import CHECKS, CheckContext, check_declared_quality
from licensing.models import CheckResult, ConsentRecord, ImageFingerprint
from licensing.services import checks_run, provenance_update
from marketplace.core.storage import get_storage
from tests.licensing.conftest import make_version, move, stats
from tests.licensing.test_provenance import GOOD

pytestmark = pytest.mark.django_db


def run(version) -> dict:
    return {r.code: r for r in checks_run(version_id=version.pk)}


def noise_jpeg(seed: int, exif: dict | None = None) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    buf = io.BytesIO()
    kwargs = {}
    if exif:
        e = Image.Exif()
        for k, v in exif.items():
            e[k] = v
        kwargs["exif"] = e.tobytes()
    img.save(buf, "JPEG", quality=95, **kwargs)
    return buf.getvalue()


def add_image(version, path: str, data: bytes) -> DatasetFile:
    key = f"test-licensing/{version.pk}/{path}-{time.monotonic_ns()}"
    get_storage().put_bytes(key, data)
    return DatasetFile.objects.create(version=version, role="images", path=path, size=len(data), sha256="0" * 64, content_type="image/jpeg", storage_key=key)


def with_fields(seller, version, **changes):
    provenance_update(version=version, actor=seller.user, fields={**GOOD, **changes})
    return version


# ---------------------------------------------------------------- missing required fields


def test_missing_required_fields_triggers(seller):
    v = make_version(seller)
    provenance_update(version=v, actor=seller.user, fields={"rai:dataCollection": "teleop"})
    r = run(v)["provenance_missing_fields"]
    assert r.status == "failed" and r.severity == "error"
    assert "locations" in r.evidence["missing"] and "rai:dataCollection" not in r.evidence["missing"]


def test_missing_required_fields_passes_when_complete(seller):
    r = run(with_fields(seller, make_version(seller)))["provenance_missing_fields"]
    assert r.status == "passed" and r.evidence["missing"] == []


# ---------------------------------------------------------------- consent


def test_eu_human_subjects_without_consent_for_every_session_triggers(seller):
    v = with_fields(seller, make_version(seller), human_subjects=True, locations=["FR"], sessions=["s1", "s2", "s3"], anonymisation_method="faces blurred", **{"rai:personalSensitiveInformation": "faces"})
    ConsentRecord.objects.create(version=v, session_id="s1", legal_basis="consent")
    r = run(v)["consent_not_covering_sessions"]
    assert r.status == "failed" and r.evidence["uncovered"] == ["s2", "s3"] and r.evidence["locations"] == ["FR"]


def test_eu_human_subjects_with_consent_for_every_session_passes(seller):
    v = with_fields(seller, make_version(seller), human_subjects=True, locations=["FR"], sessions=["s1", "s2"])
    for s in ("s1", "s2"):
        ConsentRecord.objects.create(version=v, session_id=s, legal_basis="consent")
    assert run(v)["consent_not_covering_sessions"].status == "passed"


def test_consent_check_not_applicable_outside_the_eu(seller):
    v = with_fields(seller, make_version(seller), human_subjects=True, locations=["US"], sessions=["s1"])
    assert run(v)["consent_not_covering_sessions"].status == "not_applicable"


# ---------------------------------------------------------------- declared vs measured


def _ctx(fields, summary):
    return CheckContext(version=None, fields=fields, consent_sessions=set(), statistics={}, effective_terms={}, quality_summary=summary)


def test_declared_agreement_above_measured_triggers():
    summary = {"agreement": {"value": 0.70, "ci": [0.65, 0.75], "n": 200, "status": "verified"}}
    r = check_declared_quality(_ctx({"declared_agreement": 0.80}, summary))
    assert r["status"] == "failed" and r["evidence"]["overstated"] == [{"metric": "agreement", "declared": 0.80, "measured": 0.70}]


def test_declared_agreement_within_tolerance_passes():
    summary = {"agreement": {"value": 0.78, "ci": [0.7, 0.8], "n": 200, "status": "verified"}, "mask_iou": {"value": 0.9, "ci": [0.88, 0.92], "n": 200, "status": "verified"}}
    r = check_declared_quality(_ctx({"declared_agreement": 0.82, "declared_mask_iou": 0.93}, summary))
    assert r["status"] == "passed" and r["evidence"]["compared"] == ["agreement", "mask_iou"]


def test_declared_quality_not_applicable_without_reports(seller):
    # The real quality app answers with an empty summary when no report exists.
    assert run(with_fields(seller, make_version(seller)))["declared_quality_overstated"].status == "not_applicable"


# ---------------------------------------------------------------- foundation models


def test_foundation_model_without_review_share_triggers(seller):
    v = with_fields(seller, make_version(seller), **{"rai:machineAnnotationTools": [{"name": "SAM", "version": "2", "proposed_share": 0.9}]})
    r = run(v)["foundation_model_unreviewed"]
    assert r.status == "failed" and r.evidence["models"] == ["SAM"]


def test_foundation_model_with_review_share_passes(seller):
    assert run(with_fields(seller, make_version(seller)))["foundation_model_unreviewed"].status == "passed"


# ---------------------------------------------------------------- licenses


def test_images_without_license_triggers(seller):
    r = run(make_version(seller, statistics=stats(("by-2", 4), without=2)))["images_without_license"]
    assert r.status == "failed" and r.evidence["images_without_license"] == 2


def test_images_all_licensed_passes(seller):
    assert run(make_version(seller, statistics=stats(("by-2", 4))))["images_without_license"].status == "passed"


# ---------------------------------------------------------------- EXIF


def test_exif_gps_triggers(seller):
    v = make_version(seller)
    add_image(v, "img/a.jpg", noise_jpeg(1, {0x8825: {1: "N", 2: (48.0, 8.0, 0.0)}, 0x013B: "Jane Doe"}))
    add_image(v, "img/b.jpg", noise_jpeg(2))
    r = run(v)["image_personal_metadata"]
    assert r.status == "failed" and r.evidence["images"] == [{"path": "img/a.jpg", "tags": ["GPSInfo", "Artist"]}]


def test_clean_images_pass(seller):
    v = make_version(seller)
    add_image(v, "img/a.jpg", noise_jpeg(3, {0x0110: "RobotCam 3"}))  # camera model is not personal
    assert run(v)["image_personal_metadata"].status == "passed"


# ---------------------------------------------------------------- near-duplicates


def _published_with_images(seller, seeds, slug):
    v = make_version(seller, license="CC0-1.0", statistics=stats(("by-2", len(seeds))), slug=slug)
    for s in seeds:
        add_image(v, f"img/{s}.jpg", noise_jpeg(s))
    checks_run(version_id=v.pk)  # fingerprints stored
    return move(v, VersionState.PUBLISHED, seller.user)


def test_near_duplicate_of_another_sellers_listing_triggers(seller, seller_b):
    _published_with_images(seller_b, [10, 11, 12], "original-listing")
    v = make_version(seller)
    # The same pictures, re-encoded at another quality: not byte-equal, perceptually equal.
    for s in (10, 11):
        img = Image.open(io.BytesIO(noise_jpeg(s)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=70)
        add_image(v, f"mine/{s}.jpg", buf.getvalue())
    add_image(v, "mine/new.jpg", noise_jpeg(99))
    r = run(v)["near_duplicate_listing"]
    assert r.status == "failed"
    assert r.evidence["listings"][0]["listing"] == "original-listing" and r.evidence["listings"][0]["images"] == 2
    assert ImageFingerprint.objects.filter(version=v).count() == 3


def test_near_duplicate_of_own_listing_or_new_images_passes(seller):
    _published_with_images(seller, [20, 21], "my-earlier-listing")
    v = make_version(seller)
    add_image(v, "img/20.jpg", noise_jpeg(20))  # reusing one's own images is not resale
    add_image(v, "img/30.jpg", noise_jpeg(30))
    assert run(v)["near_duplicate_listing"].status == "passed"


# ---------------------------------------------------------------- running


def test_checks_run_is_idempotent_and_served(seller, seller_b):
    v = make_version(seller, statistics=stats(("by-2", 1)))
    checks_run(version_id=v.pk)
    checks_run(version_id=v.pk)
    assert CheckResult.objects.filter(version=v).count() == len(CHECKS)
    body = seller.client.get(f"/api/v1/versions/{v.pk}/checks/").json()
    assert {r["code"] for r in body} >= {"provenance_missing_fields", "images_without_license"}
    assert set(body[0]) == {"code", "status", "severity", "message", "evidence", "created_at"}
    assert seller_b.client.get(f"/api/v1/versions/{v.pk}/checks/").status_code == 404


# ---------------------------------------------------------------- labeling consistency (from the agreement report)


def _with_second_pass(seller, *, jitter: int):
    """A version whose seller delivered a second annotation pass drawn ``jitter`` pixels off
    on every other instance, with its agreement report computed by the real engine."""
    from quality.services import report_compute
    from tests.quality.app.data import make_coco, put_file

    v = make_version(seller)
    put_file(version=v, role="annotations", path="annotations.json", data=make_coco())
    put_file(version=v, role="second_pass", path="second_pass.json", data=make_coco(jitter=jitter))
    report_compute(version_id=v.pk, kind="agreement", device="cpu")
    return v


def test_inconsistent_labeling_triggers_below_the_threshold(seller):
    r = run(_with_second_pass(seller, jitter=6))["inconsistent_labeling"]
    assert r.status == "failed" and r.severity == "warning"
    assert r.evidence["threshold"] == 0.85
    assert r.evidence["agreement"]["status"] == "measured" and r.evidence["agreement"]["value"] < 0.85


def test_consistent_labeling_passes(seller):
    r = run(_with_second_pass(seller, jitter=1))["inconsistent_labeling"]
    assert r.status == "passed" and r.evidence["agreement"]["value"] >= 0.85


def test_labeling_check_not_applicable_without_a_second_pass(seller):
    assert run(make_version(seller))["inconsistent_labeling"].status == "not_applicable"
