"""The demo seed (what ``make run`` shows) through the real pipeline with a worker: the
image listings and the video listing are published (with the others the demo holds), the video listing's figures computed
by the pipeline from its clips and the demo auditor's reference tracks."""

from __future__ import annotations

import pytest

from marketplace.demo import DEMO_DATASETS, DEMO_VIDEO, DEMO_VIDEO_FRAMES, seed_demo

pytestmark = [pytest.mark.worker, pytest.mark.timeout(900)]


def test_seed_demo_publishes_the_image_listings_and_a_video_listing_with_pipeline_figures(worker_factory, api_client):
    from quality.models import QualityReport

    worker_factory(extra_env={"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "1", "PIPELINE_RETRY_BACKOFF_MAX": "2"})
    lines: list[str] = []
    result = seed_demo(log=lines.append, timeout=600)
    assert {spec.slug for spec in DEMO_DATASETS} | {DEMO_VIDEO.slug} <= set(result["published"])

    listing = api_client.get(f"/api/v1/listings/{DEMO_VIDEO.slug}/").json()
    assert listing["annotation_kind"] == "video"
    quality = listing["quality"]
    for name in ("mask_iou", "video_ap", "id_switches", "fragmentations"):
        assert quality[name]["status"] == "verified", name
    assert 0.3 < quality["mask_iou"]["value"] < 1.0  # jittered masks: real, imperfect
    assert quality["temporal_iou"]["status"] == "measured"
    audit = QualityReport.objects.get(version__dataset__slug=DEMO_VIDEO.slug, kind="audit")
    assert audit.summary["n_videos"] == DEMO_VIDEO.images and audit.summary["n_frames"] == DEMO_VIDEO.images * 10
    assert any("teleop-episodes: auditor's reference uploaded" in line for line in lines)
    # sensors as declared, scene complexity as ingest measured it
    bins = api_client.get("/api/v1/listings/bin-picking-stars/").json()
    assert bins["sensors"] == ["rgb", "depth"] and bins["scene"]["frames"] == 30 and bins["instances_per_frame"] > 0
    assert listing["scene"]["frames"] == DEMO_VIDEO.images * DEMO_VIDEO_FRAMES and listing["sensors"] == ["rgb"]
    found = api_client.get("/api/v1/listings/", {"sensor": "point_cloud"}).json()["results"]
    assert [r["slug"] for r in found] == ["warehouse-stars"]
    # the panoptic listing: PQ against the demo auditor's panoptic reference, by the pipeline
    from marketplace.demo_panoptic import PANOPTIC_DEMO

    assert PANOPTIC_DEMO["slug"] in result["published"]
    panoptic = api_client.get(f"/api/v1/listings/{PANOPTIC_DEMO['slug']}/").json()
    assert panoptic["annotation_kind"] == "panoptic" and panoptic["quality"]["pq"]["status"] == "verified"
    assert 0.5 < panoptic["quality"]["pq"]["value"] < 1.0
    # seeding again keeps what is published
    assert seed_demo(log=lines.append, timeout=60)["published"] == []
