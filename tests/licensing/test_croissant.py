"""The Croissant export of a published listing validates with mlcroissant."""

import mlcroissant as mlc
import pytest

from datasets.states import VersionState
from licensing.services import provenance_update
from tests.licensing.conftest import make_version, move, stats
from tests.licensing.test_provenance import GOOD

pytestmark = pytest.mark.django_db


def test_croissant_export_of_a_demo_listing_is_valid(seller, api_client):
    v = make_version(seller, license="CC-BY-4.0", statistics=stats(("by-2", 3)), slug="demo-pick-place")
    provenance_update(version=v, actor=seller.user, fields=GOOD)
    move(v, VersionState.PUBLISHED, seller.user)
    resp = api_client.get("/api/v1/listings/demo-pick-place/croissant.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["rai:dataCollection"] == GOOD["rai:dataCollection"]
    assert doc["rai:dataCollectionTimeFrame"] == ["2024-01-01", "2024-03-31"]
    assert doc["license"] == "https://creativecommons.org/licenses/by/4.0/"
    dataset = mlc.Dataset(jsonld=doc)
    issues = dataset.metadata.ctx.issues
    assert not issues.errors, issues.errors
    assert dataset.metadata.name == "demo-pick-place"
    assert dataset.metadata.data_collection == GOOD["rai:dataCollection"]
    assert dataset.metadata.annotations_per_item == "2"


def test_croissant_export_404_unless_published(seller, api_client):
    make_version(seller, slug="draft-only")
    assert api_client.get("/api/v1/listings/draft-only/croissant.json").status_code == 404
    assert api_client.get("/api/v1/listings/no-such/croissant.json").status_code == 404
