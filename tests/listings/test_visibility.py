"""A seller's unpublished versions never appear in any buyer-facing response."""

import json

import pytest

from datasets.services import version_transition
from datasets.states import VersionState
from marketplace.listings.services import listing_sync
from tests.listings.catalogue import VISIBLE

pytestmark = pytest.mark.django_db

URL = "/api/v1/listings/"


def test_hidden_versions_never_reach_buyers(api_client, buyer, catalogue):
    for client in (api_client, buyer.client):
        body = client.get(URL, {"page_size": 100}).json()
        assert sorted(r["slug"] for r in body["results"]) == sorted(VISIBLE)
        text = json.dumps(body)
        # Nothing of the draft, rejected, suspended versions or the draft v2 leaks, facets included.
        assert "zebra" not in text.lower() and "secretcat" not in text
        for slug in catalogue.hidden:
            assert client.get(f"{URL}{slug}/").status_code == 404
        for q in ("zebra", "secretcat"):
            assert client.get(URL, {"q": q}).json()["count"] == 0
        assert client.get(URL, {"category": "secretcat"}).json()["count"] == 0
        detail = client.get(f"{URL}kitchen-grasp/").json()
        assert detail["version"] == 1 and detail["frames"] == 1000 and "secretcat" not in json.dumps(detail)


def test_suspension_hides_and_reinstatement_restores(api_client, catalogue, moderator):
    listing = catalogue.listings["lab-benchtop"]
    version_transition(version=listing.version, to_state=VersionState.SUSPENDED, actor=moderator.user)
    # Hidden at once, even before listing_sync runs: search joins the version's state.
    assert "lab-benchtop" not in [r["slug"] for r in api_client.get(URL).json()["results"]]
    listing_sync(dataset=listing.dataset)
    assert api_client.get(f"{URL}lab-benchtop/").status_code == 404
    assert {f["value"]: f["count"] for f in api_client.get(URL).json()["facets"]["annotation_kind"]}.get("panoptic") is None
    version_transition(version=listing.version, to_state=VersionState.PUBLISHED, actor=moderator.user)
    listing_sync(dataset=listing.dataset)
    assert api_client.get(f"{URL}lab-benchtop/").status_code == 200
