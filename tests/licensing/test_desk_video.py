"""The moderators' desk on a video version: its review page shows the video audit's
figures (mask IoU with its interval, ID switches, fragmentations, video AP) labelled
verified, temporal IoU labelled measured, and the video audit's plots, all computed by
``report_compute`` from the drawn clips and an auditor's reference tracks."""

from __future__ import annotations

import json
import re

import pytest
from django.test import override_settings

from datasets.services import audit_sample_draw, version_transition
from datasets.states import VersionState
from marketplace.demo import video_reference_for_clips
from quality.services import report_compute
from tests.datasets.test_video_audit import LIMITS, _video_version
from tests.licensing.test_moderation_desk import review_url, signed_in, text

pytestmark = pytest.mark.django_db


@override_settings(DATASETS_LIMITS=LIMITS)
def test_the_review_page_of_a_video_version_shows_its_verified_and_measured_figures_and_plots(seller, auditor, moderator):
    version, data = _video_version(seller, fmt="ytvis")
    audit_sample_draw(version=version)
    clips = auditor.client.get(f"/api/v1/versions/{version.pk}/audit/sample/").json()["clips"]
    resp = auditor.client.post(
        f"/api/v1/versions/{version.pk}/audit/reference/",
        data=json.dumps(video_reference_for_clips(reference=data["reference"], clips=clips)),
        content_type="application/json",
    )
    assert resp.status_code == 201
    for kind in ("intrinsic", "audit", "temporal"):
        assert report_compute(version_id=version.pk, kind=kind, device="cpu").status == "ok"
    version_transition(version=version, to_state=VersionState.IN_REVIEW, actor=None, reason="pipeline complete")

    page = signed_in(moderator).get(review_url(version))
    assert page.status_code == 200
    words = text(page)
    # each figure's row: name, value, 95 % interval (or none), n, label, report
    number, interval = r"\d+\.\d{3}", r"\[\d+\.\d{3}, \d+\.\d{3}\]"
    for name, ci, label, report in (
        ("mask iou", interval, "verified", "audit"),
        ("boundary iou", interval, "verified", "audit"),
        ("instance recall", interval, "verified", "audit"),
        ("id switches", "none", "verified", "audit"),
        ("fragmentations", "none", "verified", "audit"),
        ("video ap", "none", "verified", "audit"),
        ("temporal iou", "none", "measured", "temporal"),
    ):
        assert re.search(rf"{name} {number} {ci} \d+ {label} {report}", words), name
    html = page.content.decode()
    assert "iou_histogram.png" in html and "per_class_video_ap.png" in html
