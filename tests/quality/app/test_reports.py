"""Quality reports: stored once per (version, kind, engine version, inputs), artifacts in storage."""

from __future__ import annotations

import pytest

from marketplace.core.storage import get_storage
from quality import selectors, services
from quality.engine import ENGINE_VERSION
from quality.models import QualityReport, ReportStatus
from tests import factories
from tests.quality.app.data import put_file, seed_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(seller):
    v = factories.make_version(seller=seller)
    seed_version(v, second_pass=True)
    return v


def stored_keys(version_id: int) -> set[str]:
    return set(get_storage().list_keys(f"versions/{version_id}/quality/"))


def test_audit_report_is_verified_stored_once_with_artifacts(version):
    steps = []
    first = services.report_compute(version_id=version.pk, kind="audit", device="cpu", progress=lambda d, t: steps.append((d, t)))
    assert first.status == ReportStatus.OK and first.engine_version == ENGINE_VERSION
    assert steps[-1] == (4, 4)
    mask_iou = first.summary["mask_iou"]
    assert mask_iou["status"] == "verified" and 0.5 <= mask_iou["value"] <= 1
    assert mask_iou["ci"][0] <= mask_iou["value"] <= mask_iou["ci"][1] and mask_iou["n"] > 0
    assert first.summary["tier"] in ("rough", "standard", "fine", "premium")
    keys = stored_keys(version.pk)
    assert first.artifacts["report"] in keys and first.artifacts["plots"]
    assert set(first.artifacts["plots"].values()) <= keys
    prefix = f"versions/{version.pk}/quality/audit/{ENGINE_VERSION}/{first.inputs_checksum}/"
    assert all(k.startswith(prefix) for k in keys)
    png = get_storage().read_bytes(first.artifacts["plots"]["iou_histogram"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"

    again = services.report_compute(version_id=version.pk, kind="audit", device="cpu")
    assert again.pk == first.pk
    assert QualityReport.objects.filter(version=version, kind="audit").count() == 1
    assert stored_keys(version.pk) == keys  # nothing uploaded by the second call


def test_new_inputs_make_a_new_report(version):
    first = services.report_compute(version_id=version.pk, kind="intrinsic")
    assert first.summary["n_images"] == 20
    from datasets.models import DatasetFile
    from tests.quality.app.data import make_coco

    DatasetFile.objects.filter(version=version, role="annotations").delete()
    put_file(version=version, role="annotations", path="annotations-v2.json", data=make_coco(n_images=10))
    second = services.report_compute(version_id=version.pk, kind="intrinsic")
    assert second.pk != first.pk and second.inputs_checksum != first.inputs_checksum
    assert second.summary["n_images"] == 10
    assert selectors.latest_reports(version=version)["intrinsic"].pk == second.pk


def test_concurrent_duplicate_keeps_winner_and_deletes_loser_objects(version):
    """Simulate the race: another worker's row for the same key lands while we compute."""
    winner = services.report_compute(version_id=version.pk, kind="intrinsic")
    winner_keys = stored_keys(version.pk)
    key = {f: getattr(winner, f) for f in ("version_id", "kind", "engine_version", "inputs_checksum")}
    # Hide the winner from the pre-check only: the loser computes, uploads, then hits the constraint.
    original_filter = QualityReport.objects.filter
    calls = {"n": 0}

    def filter_once_empty(*args, **kwargs):
        calls["n"] += 1
        qs = original_filter(*args, **kwargs)
        return qs.none() if calls["n"] == 1 else qs

    QualityReport.objects.filter = filter_once_empty
    try:
        loser = services.report_compute(version_id=version.pk, kind="intrinsic")
    finally:
        QualityReport.objects.filter = original_filter
    assert loser.pk == winner.pk
    assert QualityReport.objects.filter(**key).count() == 1
    assert stored_keys(version.pk) == winner_keys  # the loser's objects are gone


def test_missing_inputs_give_a_no_input_report(seller):
    version = factories.make_version(seller=seller)
    seed_version(version, reference=False)
    report = services.report_compute(version_id=version.pk, kind="audit")
    assert report.status == ReportStatus.NO_INPUT and report.artifacts == {}
    assert "mask_iou" not in selectors.version_quality_summary(version=version)


def test_summary_and_applicable_kinds(version):
    assert selectors.applicable_report_kinds(version=version) == ["intrinsic", "audit", "agreement"]
    assert selectors.version_quality_summary(version=version) == {"tier": None, "inconsistent_labeling": None, "engine_version": ENGINE_VERSION}
    services.report_compute(version_id=version.pk, kind="audit")
    services.report_compute(version_id=version.pk, kind="agreement")
    summary = selectors.version_quality_summary(version=version)
    assert summary["mask_iou"]["status"] == "verified"
    assert summary["agreement"]["status"] == "measured"  # the seller's two passes: no reference behind it
    assert summary["inconsistent_labeling"] is False
    assert {"ap", "ap50", "ap75"} <= summary.keys()
    from quality.engine.tiers import tier_for

    assert summary["tier"] == tier_for(summary["mask_iou"]["value"])
    assert summary["engine_version"] == ENGINE_VERSION


def test_unknown_kind_is_rejected(version):
    from marketplace.core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        services.report_compute(version_id=version.pk, kind="nonsense")


def _figures(tree, path=""):
    """Every figure (a dict with a ``value``) in a report summary, with where it is."""
    if isinstance(tree, dict):
        if "value" in tree:
            yield path, tree
        else:
            for key, sub in tree.items():
                yield from _figures(sub, f"{path}.{key}")


def test_every_figure_in_every_report_says_what_backs_it(seller):
    from tests.quality.app.data import make_video_coco

    version = factories.make_version(seller=seller)
    seed_version(version, second_pass=True)
    video = factories.make_version(seller=seller)
    put_file(version=video, role="annotations", path="annotations.json", data=make_video_coco())
    expected = {"audit": "verified", "agreement": "measured", "intrinsic": "measured"}
    for kind in expected:
        services.report_compute(version_id=version.pk, kind=kind)
    services.report_compute(version_id=video.pk, kind="temporal")
    expected["temporal"] = "measured"
    seen = set()
    for vid in (version.pk, video.pk):
        for report in seller.client.get(f"/api/v1/versions/{vid}/quality/").json()["results"]:
            seen.add(report["kind"])
            figures = list(_figures(report["summary"]))
            assert figures, report["kind"]
            for path, fig in figures:
                assert set(fig) == {"value", "ci", "n", "status"}, (report["kind"], path)
                assert fig["status"] == expected[report["kind"]], (report["kind"], path, fig)
            detail = seller.client.get(f"/api/v1/versions/{vid}/quality/{report['kind']}/").json()
            assert detail["summary"] == report["summary"]
    assert seen == set(expected)
    summary = selectors.version_quality_summary(version=version)
    assert {k: v["status"] for k, v in summary.items() if isinstance(v, dict)} == {
        **{k: "verified" for k in ("mask_iou", "ap", "ap50", "ap75", "boundary_iou", "instance_recall", "instance_precision")},
        "agreement": "measured",
    }


def _union_mask(coco: dict, image_id: int, height: int, width: int):
    import numpy as np
    from pycocotools import mask as mask_utils

    union = np.zeros((height, width), bool)
    for ann in coco["annotations"]:
        if ann["image_id"] == image_id:
            rle = mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))
            union |= mask_utils.decode(rle).astype(bool)
    return union


def test_audit_overlays_are_the_sample_images_with_both_mask_sets_best_median_and_worst(seller):
    """The overlays are drawn on the audit sample's own image files (fetched from storage),
    for the best, median and worst image by IoU: outside the masks every pixel is the
    image's; inside, the reference (blue) and seller (orange) colours."""
    import io

    import numpy as np
    from PIL import Image

    from quality.engine.plots import REFERENCE_RGB, SELLER_RGB

    version = factories.make_version(seller=seller)
    data = seed_version(version, images=True)
    report = services.report_compute(version_id=version.pk, kind="audit", device="cpu")
    overlays = {name: key for name, key in report.artifacts["plots"].items() if name.startswith("overlay_")}
    ranks = {name.split("_")[1]: int(name.rsplit("_", 1)[1]) for name in overlays}
    assert set(ranks) == {"best", "median", "worst"}, overlays
    assert set(ranks.values()) <= set(data["sample"])  # the audit sample, not the file's first images
    for name, key in overlays.items():
        image_id = int(name.rsplit("_", 1)[1])
        with Image.open(io.BytesIO(get_storage().read_bytes(key))) as img:
            pixels = np.asarray(img.convert("RGB"))
        source = data["pixels"][image_id]
        h, w = source.shape[:2]
        drawn = pixels[:h, :w]
        outside = ~(_union_mask(data["reference"], image_id, h, w) | _union_mask(data["annotations"], image_id, h, w))
        assert outside.any() and np.array_equal(drawn[outside], source[outside]), name
        assert not np.array_equal(drawn[~outside], source[~outside]), name
        colours = {tuple(p) for p in drawn[~outside].reshape(-1, 3)}
        assert REFERENCE_RGB in colours and SELLER_RGB in colours, name
        assert pixels.shape[0] > h  # the legend strip below the image


def _ytvis_box(x: int, y: int, side: int = 12, size: int = 48) -> dict:
    import numpy as np
    from pycocotools import mask as mask_utils

    m = np.zeros((size, size), np.uint8)
    m[y : y + side, x : x + side] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": r["size"], "counts": r["counts"].decode()}


def test_video_audit_overlays_are_the_sampled_frames_with_both_track_sets(seller):
    """A video version's audit draws the middle sampled frame of its best, median and worst
    clip: the frame image itself outside the masks, the reference and seller tracks' masks
    at that frame in their two colours."""
    import io

    import numpy as np
    from PIL import Image

    from datasets.models import AuditSample, VersionIngest
    from quality.engine.plots import REFERENCE_RGB, SELLER_RGB
    from tests.quality.app.data import put_images

    size, length = 48, 8
    videos = [{"id": v, "width": size, "height": size, "length": length, "file_names": [f"JPEGImages/v{v}/{f:05d}.png" for f in range(length)]} for v in (1, 2, 3)]
    shift = {1: 0, 2: 1, 3: 3}  # the seller's masks move down this much: clip IoUs 1 > ~0.85 > ~0.6

    def tracks(seller_side: bool) -> list[dict]:
        return [
            {"id": v, "video_id": v, "category_id": 1, "iscrowd": 0, "segmentations": [_ytvis_box(4 + f, 6 + (shift[v] if seller_side else 0)) for f in range(length)]}
            for v in (1, 2, 3)
        ]

    seller_doc = {"videos": videos, "categories": [{"id": 1, "name": "mug"}], "annotations": tracks(True)}
    clips = [{"video_id": v, "length": length, "height": size, "width": size, "frame_indices": [2, 3, 4, 5], "file_names": videos[v - 1]["file_names"]} for v in (1, 2, 3)]
    truth = tracks(False)
    reference = {
        "videos": videos,
        "categories": [{"id": 1, "name": "mug"}],
        "annotations": [{**t, "segmentations": [s if f in (2, 3, 4, 5) else None for f, s in enumerate(t["segmentations"])]} for t in truth],
    }
    version = factories.make_version(seller=seller)
    put_file(version=version, role="annotations", path="annotations.json", data=seller_doc)
    put_file(version=version, role="reference", path="reference.json", data=reference, origin="audit")
    VersionIngest.objects.create(version=version, format="youtube_vis")
    AuditSample.objects.create(version=version, seed=version.pk, size=12, image_ids=[], clips=clips)
    frames = [{"id": v * 100 + f, "file_name": name, "width": size, "height": size} for v in (1, 2, 3) for f, name in enumerate(videos[v - 1]["file_names"])]
    pixels = put_images(version=version, coco={"images": frames})

    report = services.report_compute(version_id=version.pk, kind="audit", device="cpu")
    assert report.status == ReportStatus.OK, report.summary
    assert set(report.summary["per_class_ap"]) == {"1"} and 0 < report.summary["per_class_ap"]["1"] <= 1
    overlays = {name: key for name, key in report.artifacts["plots"].items() if name.startswith("overlay_")}
    assert set(overlays) == {"overlay_best_1-3", "overlay_median_2-3", "overlay_worst_3-3"}, overlays  # middle of frames 2..5
    for name, key in overlays.items():
        vid, f = (int(x) for x in name.rsplit("_", 1)[1].split("-"))
        source = pixels[vid * 100 + f]
        with Image.open(io.BytesIO(get_storage().read_bytes(key))) as img:
            drawn = np.asarray(img.convert("RGB"))[:size, :size]
        masked = np.zeros((size, size), bool)
        masked[6 : 6 + 12, 4 + f : 16 + f] = True  # the reference's square at frame f
        masked[6 + shift[vid] : 18 + shift[vid], 4 + f : 16 + f] = True  # the seller's
        assert np.array_equal(drawn[~masked], source[~masked]), name
        colours = {tuple(p) for p in drawn[masked].reshape(-1, 3)}
        assert SELLER_RGB in colours and (REFERENCE_RGB in colours or shift[vid] == 0), name


def test_tracks_found_at_ingest_make_the_temporal_report_apply_whatever_the_declared_kind(seller):
    from datasets.models import VersionIngest
    from tests.quality.app.data import make_video_coco, put_file

    version = factories.make_version(seller=seller)  # annotation kind: instances (the default)
    put_file(version=version, role="annotations", path="annotations.json", data=make_video_coco())
    assert selectors.applicable_report_kinds(version=version) == ["intrinsic", "audit"]
    VersionIngest.objects.create(version=version, format="coco_video")
    assert selectors.applicable_report_kinds(version=version) == ["intrinsic", "audit", "temporal"]
