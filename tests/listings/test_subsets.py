"""Subset entitlements end to end (real worker, through the API): a buyer orders the
commercially usable subset of a split-licensed version; the manifest and the annotation
file generated for it hold exactly the commercially licensed images (checked against the
effective terms), each with a matching sha256; the subset is built once and shared."""

from __future__ import annotations

import hashlib
import json
import urllib.request

import pytest

from marketplace.core.storage import S3Storage, get_storage
from marketplace.demo import wait_for
from marketplace.listings.models import Selection
from tests import factories
from tests.listings.pipeline import WORKER_ENV, json_bytes, png, publish, square, zipped

pytestmark = pytest.mark.worker
API = "/api/v1"
# COCO's own license entries: CC BY 2.0 allows commercial use, CC BY-NC 2.0 does not.
LICENSES = [
    {"id": 2, "name": "Attribution-NonCommercial License", "url": "http://creativecommons.org/licenses/by-nc/2.0/"},
    {"id": 4, "name": "Attribution License", "url": "http://creativecommons.org/licenses/by/2.0/"},
]
COMMERCIAL_IDS = {1, 2, 4, 5, 7}  # images under license 4; the others under license 2


def split_licensed() -> dict[tuple[str, str], bytes]:
    images, anns, pngs = [], [], {}
    for i in range(1, 9):
        name = f"images/{i:04d}.png"
        images.append({"id": i, "file_name": name, "width": 48, "height": 48, "license": 4 if i in COMMERCIAL_IDS else 2})
        anns.append(square(len(anns) + 1, i, 1 + i % 2, 4.0))
        anns.append(square(len(anns) + 1, i, 2, 26.0))
        pngs[name] = png(i)
    coco = {"licenses": LICENSES, "images": images, "annotations": anns, "categories": [{"id": 1, "name": "bolt"}, {"id": 2, "name": "gripper"}]}
    return {("images", "images.zip"): zipped(pngs), ("annotations", "annotations.json"): json_bytes(coco)}


def download(actor, url: str) -> bytes:
    if isinstance(get_storage(), S3Storage):
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - the test S3 endpoint
            return resp.read()
    return b"".join(actor.client.get(url).streaming_content)


def manifest_when_ready(actor, entitlement: int) -> list[dict]:
    def ready():
        body = actor.client.get(f"{API}/entitlements/{entitlement}/files/", {"page_size": 100}).json()
        return None if body["pending"] else body["results"]

    return wait_for(ready, timeout=90, what="the subset's files")


def test_a_buyer_orders_the_commercially_usable_subset(worker_factory, settings):
    settings.PIPELINE_AUDIT_REQUIRED = False
    worker_factory(extra_env=WORKER_ENV)
    seller = factories.make_seller()
    moderator = factories.make_moderator()
    staff = factories.make_actor(is_staff=True)
    version = publish(seller, moderator, slug="split-licensed", files=split_licensed(), price="80.00")

    # The listing states the subset: frames, price pro rata by frames, its effective terms.
    listing = wait_for(
        lambda: (body := factories.APIClient().get(f"{API}/listings/split-licensed/").json())["subsets"]["ready"] and body,
        timeout=60, what="the version's index",
    )
    buyer = factories.make_buyer()
    terms = buyer.client.get(f"{API}/versions/{version.pk}/effective-terms/").json()
    assert terms["commercial_use"] is False and terms["commercial_images"] == len(COMMERCIAL_IDS)
    commercial = listing["subsets"]["commercial"]
    assert commercial["frames"] == len(COMMERCIAL_IDS) and commercial["price"] == "50.00"  # 80.00 * 5 / 8
    assert commercial["terms"]["commercial_use"] is True and commercial["terms"]["licenses"] == [{"spdx": "CC-BY-2.0", "images": 5}]
    assert {s["subset"]["split"]: s["frames"] for s in listing["subsets"]["splits"]} == {"annotations": 8}

    # Which images the effective terms say are commercially usable: those under a license the
    # catalogue marks commercial.
    catalogue = {lic["spdx_id"]: lic["commercial_use"] for lic in factories.APIClient().get(f"{API}/licenses/").json()}
    spdx_of = {4: "CC-BY-2.0", 2: "CC-BY-NC-2.0"}
    assert {entry["spdx"] for entry in terms["licenses"]} == set(spdx_of.values())
    coco = json.loads(split_licensed()[("annotations", "annotations.json")])
    expected = {img["file_name"] for img in coco["images"] if catalogue[spdx_of[img["license"]]]}
    assert len(expected) == terms["commercial_images"]

    bad = buyer.client.post(f"{API}/listings/split-licensed/orders/", {"license": "CC-BY-4.0", "version": 1, "subset": {"kind": "everything"}}, format="json", HTTP_IDEMPOTENCY_KEY="s0")
    assert bad.status_code == 400 and bad.json()["details"][0]["location"] == "subset.kind"
    placed = buyer.client.post(f"{API}/listings/split-licensed/orders/", {"license": "CC-BY-4.0", "version": 1, "subset": {"kind": "commercial"}}, format="json", HTTP_IDEMPOTENCY_KEY="s1")
    assert placed.status_code == 201, placed.content
    assert placed.json()["price"] == "50.00" and placed.json()["subset"] == {"kind": "commercial"}
    entitlement = staff.client.post(f"{API}/orders/{placed.json()['id']}/mark-paid/").json()["entitlement"]
    assert buyer.client.get(f"{API}/entitlements/").json()["results"][0]["subset"] == {"kind": "commercial"}

    files = manifest_when_ready(buyer, entitlement)
    media = {f["path"] for f in files if f["role"] == "images"}
    assert media == expected  # exactly the commercially licensed images, no archive
    (generated,) = [f for f in files if f["role"] == "annotations"]
    assert generated["path"] == "annotations.json"
    for f in files:
        body = download(buyer, f["url"])
        assert hashlib.sha256(body).hexdigest() == f["sha256"] and len(body) == f["size"], f["path"]
    doc = json.loads(download(buyer, generated["url"]))
    assert {img["file_name"] for img in doc["images"]} == expected
    kept_ids = {img["id"] for img in doc["images"]}
    assert kept_ids == COMMERCIAL_IDS and {a["image_id"] for a in doc["annotations"]} == kept_ids
    assert len(doc["annotations"]) == 2 * len(kept_ids) and doc["categories"] == coco["categories"]
    assert all(img["license"] == 4 for img in doc["images"])

    # Built once, by the worker; a second buyer of the same subset is served the same files.
    other = factories.make_buyer()
    again = other.client.post(f"{API}/listings/split-licensed/orders/", {"license": "CC-BY-4.0", "version": 1, "subset": {"kind": "commercial"}}, format="json", HTTP_IDEMPOTENCY_KEY="s2").json()
    second = staff.client.post(f"{API}/orders/{again['id']}/mark-paid/").json()["entitlement"]
    theirs = manifest_when_ready(other, second)
    assert {(f["path"], f["sha256"]) for f in theirs} == {(f["path"], f["sha256"]) for f in files}
    assert Selection.objects.filter(version=version).count() == 1

    # A category subset: the images holding a bolt, with only the bolts.
    bolts = buyer.client.post(f"{API}/listings/split-licensed/orders/", {"license": "CC-BY-4.0", "version": 1, "subset": {"kind": "categories", "categories": ["bolt"]}}, format="json", HTTP_IDEMPOTENCY_KEY="s3").json()
    assert bolts["price"] == "40.00"  # 4 of 8 frames hold a bolt
    ent = staff.client.post(f"{API}/orders/{bolts['id']}/mark-paid/").json()["entitlement"]
    cat_files = manifest_when_ready(buyer, ent)
    cat_doc = json.loads(download(buyer, next(f for f in cat_files if f["role"] == "annotations")["url"]))
    assert {i["id"] for i in cat_doc["images"]} == {i for i in range(1, 9) if i % 2 == 0}
    assert {a["category_id"] for a in cat_doc["annotations"]} == {1} and cat_doc["categories"] == [{"id": 1, "name": "bolt"}]
