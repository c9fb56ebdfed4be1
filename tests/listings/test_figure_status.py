"""Figures that can only be measured (agreement, temporal IoU) on the listing and in search:
computed by the real engine from each seller's own data, labelled ``measured``, matched by
``min_agreement`` / ``min_temporal_iou``; a seller's typed-in figure is ``self-declared`` and
never matched."""

import pytest

from licensing.services import provenance_update
from marketplace.listings.models import FigureStatus, Listing
from marketplace.listings.services import listing_sync
from quality.services import report_compute
from tests.factories import make_dataset, make_version
from tests.listings.catalogue import publish
from tests.quality.app.data import make_coco, make_video_coco, put_file

pytestmark = pytest.mark.django_db
URL = "/api/v1/listings/"


def _listing(seller, moderator, slug, *, files: dict[str, dict], kinds: tuple[str, ...] = (), declared: dict | None = None) -> Listing:
    dataset = make_dataset(seller=seller, slug=slug, annotation_kind="video" if "temporal" in kinds else "instances")
    version = make_version(seller=seller, dataset=dataset)
    for role, data in files.items():
        put_file(version=version, role=role, path=f"{role}.json", data=data)
    if declared:
        provenance_update(version=version, actor=seller.user, fields=declared)
    for kind in kinds:
        assert report_compute(version_id=version.pk, kind=kind, device="cpu").status == "ok"
    publish(version, moderator.user)
    return listing_sync(dataset=dataset)


@pytest.fixture
def listings(seller, moderator):
    return {
        # second passes 1 and 4 pixels off on some instances: mean IoU ~0.94 and ~0.78
        "close-passes": _listing(seller, moderator, "close-passes", files={"annotations": make_coco(), "second_pass": make_coco(jitter=1)}, kinds=("agreement",)),
        "far-passes": _listing(seller, moderator, "far-passes", files={"annotations": make_coco(), "second_pass": make_coco(jitter=4)}, kinds=("agreement",)),
        "declared-only": _listing(seller, moderator, "declared-only", files={"annotations": make_coco()}, declared={"declared_agreement": 0.99}),
        "nothing": _listing(seller, moderator, "nothing", files={"annotations": make_coco()}),
        # tracks moving 1 and 6 pixels a frame: temporal IoU 19/21 and 14/26
        "steady-tracks": _listing(seller, moderator, "steady-tracks", files={"annotations": make_video_coco(step=1)}, kinds=("temporal",)),
        "jumpy-tracks": _listing(seller, moderator, "jumpy-tracks", files={"annotations": make_video_coco(step=6)}, kinds=("temporal",)),
    }


def slugs(api_client, **params) -> set[str]:
    resp = api_client.get(URL, params)
    assert resp.status_code == 200, resp.content
    return {r["slug"] for r in resp.json()["results"]}


def test_measured_figures_are_labelled_measured_and_declared_ones_self_declared(api_client, listings):
    results = {r["slug"]: r for r in api_client.get(URL).json()["results"]}
    assert results["close-passes"]["quality"]["agreement"]["status"] == "measured"
    assert results["close-passes"]["quality"]["agreement"]["value"] > 0.9
    assert results["declared-only"]["quality"]["agreement"] == {"value": 0.99, "ci": None, "n": None, "status": "self-declared"}
    assert "agreement" not in results["nothing"]["quality"]
    assert results["steady-tracks"]["quality"]["temporal_iou"]["status"] == "measured"
    assert results["steady-tracks"]["quality"]["temporal_iou"]["value"] == pytest.approx(19 / 21)
    assert results["jumpy-tracks"]["quality"]["temporal_iou"]["value"] == pytest.approx(14 / 26)
    stored = {listing.slug: listing for listing in Listing.objects.all()}
    assert stored["close-passes"].agreement_status == FigureStatus.MEASURED
    assert stored["declared-only"].agreement_status == FigureStatus.SELF_DECLARED
    assert stored["nothing"].agreement_status == FigureStatus.NONE and stored["nothing"].agreement is None


def test_min_agreement_matches_measured_figures_above_the_bound_only(api_client, listings):
    assert slugs(api_client, min_agreement="0.85") == {"close-passes"}
    assert slugs(api_client, min_agreement="0.7") == {"close-passes", "far-passes"}
    # the seller's declared 0.99 is above every bound and never matches
    assert slugs(api_client, min_agreement="0.0") == {"close-passes", "far-passes"}
    assert slugs(api_client, min_agreement="0.99") == set()


def test_min_temporal_iou_matches_measured_figures_above_the_bound_only(api_client, listings):
    assert slugs(api_client, min_temporal_iou="0.8") == {"steady-tracks"}
    assert slugs(api_client, min_temporal_iou="0.5") == {"steady-tracks", "jumpy-tracks"}
    assert slugs(api_client, min_temporal_iou="0.0") == {"steady-tracks", "jumpy-tracks"}


def test_min_mask_iou_and_verified_only_ignore_measured_and_declared_figures(api_client, listings, seller, moderator):
    declared = _listing(seller, moderator, "declared-iou", files={"annotations": make_coco()}, declared={"declared_mask_iou": 0.97})
    assert declared.quality["mask_iou"]["status"] == "self-declared" and declared.mask_iou_status == FigureStatus.SELF_DECLARED
    assert slugs(api_client, min_mask_iou="0.5") == set()
    assert slugs(api_client, verified_only="true") == set()


def test_inconsistent_labeling_is_a_listing_field(api_client, listings):
    results = {r["slug"]: r for r in api_client.get(URL).json()["results"]}
    assert results["close-passes"]["inconsistent_labeling"] is False
    assert results["far-passes"]["inconsistent_labeling"] is True
    assert results["nothing"]["inconsistent_labeling"] is None
    detail = api_client.get(f"{URL}far-passes/").json()
    assert detail["inconsistent_labeling"] is True and detail["quality"]["agreement"]["value"] < 0.85
