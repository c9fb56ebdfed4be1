import pytest

from licensing.models import License
from licensing.selectors import license_resolver

pytestmark = pytest.mark.django_db

REQUIRED = [
    "CC0-1.0", "CC-BY-2.0", "CC-BY-4.0", "CC-BY-SA-2.0", "CC-BY-SA-4.0", "CC-BY-NC-2.0", "CC-BY-NC-4.0",
    "CC-BY-NC-SA-2.0", "CC-BY-NC-SA-4.0", "CC-BY-ND-4.0", "CDLA-Permissive-2.0", "CDLA-Sharing-1.0",
    "ODC-By-1.0", "ODbL-1.0", "LicenseRef-Proprietary", "LicenseRef-Research-Only", "CC-BY-NC-ND-2.0", "CC-BY-ND-2.0",
]


def test_catalogue_loaded_by_migration_with_terms():
    ids = set(License.objects.values_list("spdx_id", flat=True))
    assert set(REQUIRED) <= ids
    nc = License.objects.get(spdx_id="CC-BY-NC-SA-2.0")
    assert (nc.commercial_use, nc.derivatives, nc.share_alike, nc.attribution) == (False, True, True, True)
    assert nc.url == "https://creativecommons.org/licenses/by-nc-sa/2.0/"
    assert not License.objects.get(spdx_id="CC-BY-ND-4.0").derivatives


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"name": "Attribution-NonCommercial-ShareAlike License", "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/"}, "CC-BY-NC-SA-2.0"),
        ({"name": "Attribution-NoDerivs License", "url": "http://creativecommons.org/licenses/by-nd/2.0/"}, "CC-BY-ND-2.0"),
        ({"name": "Attribution-NonCommercial-NoDerivs License", "url": "http://creativecommons.org/licenses/by-nc-nd/2.0/"}, "CC-BY-NC-ND-2.0"),
        ({"name": "No known copyright restrictions", "url": "http://flickr.com/commons/usage/"}, "LicenseRef-No-Known-Copyright-Restrictions"),
        ({"name": "United States Government Work", "url": "http://www.usa.gov/copyright.shtml"}, "LicenseRef-US-Government-Work"),
        ({"url": "https://creativecommons.org/licenses/by/4.0/legalcode"}, "CC-BY-4.0"),
        ({"url": "https://creativecommons.org/publicdomain/zero/1.0/"}, "CC0-1.0"),
        ({"identifier": "CC-BY-SA-4.0"}, "CC-BY-SA-4.0"),
        ({"identifier": "cc-by-4.0"}, "CC-BY-4.0"),
        ({"identifier": "CC BY-NC-SA 4.0"}, "CC-BY-NC-SA-4.0"),
        ({"identifier": "CC BY 4"}, "CC-BY-4.0"),
        ({"name": "Creative Commons Attribution 4.0 International"}, "CC-BY-4.0"),
        ({"identifier": "ODbL"}, "ODbL-1.0"),
        ({"identifier": "research only"}, "LicenseRef-Research-Only"),
    ],
)
def test_resolver_maps_coco_urls_spdx_and_spellings(kwargs, expected):
    assert license_resolver().resolve(**kwargs).spdx_id == expected


def test_resolver_reports_what_it_cannot_map():
    r = license_resolver().resolve(name="My Lab's Custom Terms", url="https://example.org/terms")
    assert r.spdx_id is None and r.matched_by == "unresolved"


def test_license_list_is_public(api_client):
    resp = api_client.get("/api/v1/licenses/")
    assert resp.status_code == 200
    by_id = {row["spdx_id"]: row for row in resp.json()}
    assert by_id["CC-BY-NC-4.0"]["commercial_use"] is False
    assert set(by_id["CC0-1.0"]) == {"spdx_id", "name", "url", "commercial_use", "derivatives", "share_alike", "attribution", "redistribution"}
