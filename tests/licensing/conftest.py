"""Helpers for the licensing tests: versions with ingest statistics, moved along the life
cycle with the real state machine."""

from __future__ import annotations

import pytest

from datasets.services import version_transition
from datasets.states import VersionState
from tests import factories

COCO_LICENSES = {
    "by-nc-sa-2": {"id": 1, "name": "Attribution-NonCommercial-ShareAlike License", "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/"},
    "by-nc-2": {"id": 2, "name": "Attribution-NonCommercial License", "url": "http://creativecommons.org/licenses/by-nc/2.0/"},
    "by-2": {"id": 4, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"},
    "by-sa-2": {"id": 5, "name": "Attribution-ShareAlike License", "url": "http://creativecommons.org/licenses/by-sa/2.0/"},
    "by-nd-2": {"id": 6, "name": "Attribution-NoDerivs License", "url": "http://creativecommons.org/licenses/by-nd/2.0/"},
}
PATH = {
    VersionState.SUBMITTED: [VersionState.SUBMITTED],
    VersionState.IN_REVIEW: [VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW],
    VersionState.PUBLISHED: [VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW, VersionState.PUBLISHED],
}


def stats(*licenses: tuple[str, int], without: int = 0, **extra) -> dict:
    entries = [{**COCO_LICENSES[key], "images": n} if key in COCO_LICENSES else {"id": 99, "name": key, "url": "", "images": n} for key, n in licenses]
    return {"images": sum(n for _, n in licenses) + without, "licenses": entries, "images_without_license": without, **extra}


def move(version, state, actor=None):
    for s in PATH[state]:
        version_transition(version=version, to_state=s, actor=actor)
    version.refresh_from_db()
    return version


def make_version(seller, *, license="CC-BY-4.0", statistics=None, state=None, slug=None):
    dataset = factories.make_dataset(seller=seller, annotation_license=license, slug=slug)
    version = factories.make_version(seller=seller, dataset=dataset)
    if statistics is not None:
        version.statistics = statistics
        version.save(update_fields=["statistics"])
    if state:
        move(version, state, seller.user)
    return version


@pytest.fixture
def version_factory():
    return make_version
