"""Buyer evaluations read the version's mask cache, never the annotation JSON whole, and
per-organization limits hold besides the per-user rate."""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest

from datasets.models import DatasetFile, FileOrigin, FileRole
from marketplace.core.storage import get_storage
from quality import services
from quality.engine.cache import build_reference_cache
from quality.models import BuyerEvaluation, EvaluationState
from tests import factories
from tests.quality.app.data import put_file, seed_version, set_state
from tests.quality.app.evaldata import results_for
from tests.workers.synthetic import coco_pair

MB = 1024 * 1024


def _url(version) -> str:
    return f"/api/v1/listings/{version.dataset.slug}/evaluations/"


def _store_cache(version, annotations: DatasetFile, tmp_path) -> DatasetFile:
    """The mask cache of ``annotations`` as ingest stores it (a file of role cache, its source the JSON)."""
    local = tmp_path / "src.json"
    with get_storage().open(annotations.storage_key) as src:
        local.write_bytes(src.read())
    out = tmp_path / "reference.npz"
    build_reference_cache(str(local)).save(out)
    key = f"versions/{version.pk}/ingest/cache/reference.npz"
    get_storage().put_file(key, out)
    return DatasetFile.objects.create(
        version=version, role=FileRole.CACHE, path="_ingest/cache/reference.npz", size=out.stat().st_size, sha256="0" * 64,
        storage_key=key, origin=FileOrigin.INGEST, source=annotations, content_type="application/octet-stream",
    )


def _large_version(seller, tmp_path, *, images: int):
    ref, _noisy, _dets = coco_pair(images=images, seed=3)
    version = factories.make_version(seller=seller)
    annotations = put_file(version=version, role="annotations", path="annotations.json", data=ref)
    set_state(version, "published")
    return version, ref, annotations


def _run(evaluation_id: int) -> tuple[BuyerEvaluation, int]:
    tracemalloc.start()
    try:
        evaluation = services.evaluation_run(evaluation_id=evaluation_id, device="cpu")
        return evaluation, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.django_db
def test_a_buyer_evaluation_reads_the_mask_cache_and_its_memory_stays_bounded(seller, buyer, tmp_path):
    version, ref, annotations = _large_version(seller, tmp_path, images=3000)
    split = services.evaluation_split_get(version=version)
    results = results_for(ref, split.image_ids)
    # Through the stored cache (what ingest leaves), and the same figures when the cache
    # is built by streaming the file (a version ingested before caches were kept).
    first = services.evaluation_create(user=buyer.user, slug=version.dataset.slug, results=results)
    built, _ = _run(first.pk)
    assert built.state == EvaluationState.DONE, built.error
    _store_cache(version, annotations, tmp_path)
    second = services.evaluation_create(user=buyer.user, slug=version.dataset.slug, results=results)
    cached, peak = _run(second.pk)
    assert cached.state == EvaluationState.DONE, cached.error
    assert cached.report["stats"] == built.report["stats"]
    assert cached.report["stats"]["AP"] == pytest.approx(1.0)  # the results are the reference's own masks
    assert {c["name"] for c in cached.report["per_category_ap"]} == {c["name"] for c in ref["categories"]}
    # Parsing the annotation file takes many times its size in Python objects; the
    # evaluation holds the cache's compact arrays and the split's results.
    json_bytes = annotations.size
    assert json_bytes > 2 * MB
    raw = json.dumps(ref).encode()
    tracemalloc.start()
    try:
        parsed = orjson.loads(raw)  # as the annotation files were read before
        parse_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del parsed
    assert peak < 2 * json_bytes, f"peak {peak / MB:.1f} MB for a {json_bytes / MB:.1f} MB annotation file"
    assert 5 * peak < parse_peak, f"peak {peak / MB:.1f} MB; parsing the file alone {parse_peak / MB:.1f} MB"


@pytest.mark.django_db
def test_an_organizations_users_share_its_hourly_evaluation_limit(seller, buyer, settings):
    settings.QUALITY_EVALUATION_ORG_PER_HOUR = 3
    settings.QUALITY_EVALUATION_ORG_ACTIVE = 100
    version = factories.make_version(seller=seller)
    data = seed_version(version)
    set_state(version, "published")
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    colleague = factories.make_buyer(org=buyer.org, username="buyer-colleague")
    other = factories.make_buyer(username="buyer-elsewhere")
    codes = [actor.client.post(_url(version), results, format="json").status_code for actor in (buyer, colleague, buyer)]
    assert codes == [202, 202, 202]
    refused = colleague.client.post(_url(version), results, format="json")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "organization_evaluation_limit" and body["details"][0]["location"] == "organization"
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert other.client.post(_url(version), results, format="json").status_code == 202  # another organization's budget
    assert BuyerEvaluation.objects.filter(organization=buyer.org).count() == 3


@pytest.mark.django_db
def test_an_organization_has_at_most_so_many_evaluations_queued_or_running(seller, buyer, settings):
    settings.QUALITY_EVALUATION_ORG_ACTIVE = 2
    version = factories.make_version(seller=seller)
    data = seed_version(version)
    set_state(version, "published")
    split = services.evaluation_split_get(version=version)
    results = results_for(data["annotations"], split.image_ids)
    colleague = factories.make_buyer(org=buyer.org, username="buyer-colleague")
    assert [a.client.post(_url(version), results, format="json").status_code for a in (buyer, colleague)] == [202, 202]
    refused = buyer.client.post(_url(version), results, format="json")
    assert refused.status_code == 429 and refused.json()["code"] == "organization_evaluations_active"
    # one finishes: the next is admitted
    services.evaluation_run(evaluation_id=BuyerEvaluation.objects.order_by("pk").first().pk, device="cpu")
    assert colleague.client.post(_url(version), results, format="json").status_code == 202
    assert json.loads(refused.content)["details"][0]["location"] == "organization"
