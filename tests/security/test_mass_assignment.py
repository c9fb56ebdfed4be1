"""Mass assignment (OWASP API3): every writable endpoint, sent the fields the server owns
(state, verification statuses, quality figures, owner, checksums, storage keys, prices),
answers 400 or ignores them. Rows are compared before and after."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.django_db

# Fields no client may set, in the spellings a client might try.
SERVER_OWNED = {
    "id": 999999,
    "state": "published",
    "status": "verified",
    "verified": True,
    "verification_status": "verified",
    "quality": {"mask_iou": {"value": 0.99, "status": "verified"}},
    "mask_iou": 0.99,
    "mask_iou_verified": True,
    "ap": 0.99,
    "tier": "gold",
    "sha256": "f" * 64,
    "checksum": "f" * 64,
    "storage_key": "evil/elsewhere.bin",
    "multipart_id": "forged",
    "created_by": 1,
    "published_at": "2020-01-01T00:00:00Z",
    "submitted_at": "2020-01-01T00:00:00Z",
    "statistics": {"images": 10**9},
    "validation_report": {"ok": True},
    "is_public": True,
    "paid_at": "2020-01-01T00:00:00Z",
}


def rows(model, **filters) -> list[dict]:
    return sorted(model.objects.filter(**filters).values(), key=lambda r: str(r["id"]))


def without(rows_: list[dict], *names: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in names} for r in rows_]


def send(client, method, url, body, **headers):
    return getattr(client, method)(url, body, format="json", **headers)


def assert_refused_or_ignored(resp, before, after, *, note=""):
    assert resp.status_code < 500, resp.content
    if resp.status_code == 400:
        assert resp.json()["code"], resp.content
        assert before == after, f"a refused request changed rows {note}"
    else:
        assert 200 <= resp.status_code < 300, (resp.status_code, resp.content)
        assert before == after, f"server-owned fields took effect {note}: {resp.content[:500]}"


def test_dataset_patch_ignores_server_fields(scenario):
    from datasets.models import Dataset, DatasetVersion
    from marketplace.listings.models import Listing

    seller, b = scenario.actors["seller_a"], scenario.actors["seller_b"]
    for label in ("a-draft", "a-published"):
        ds = scenario.get("dataset", label).row
        before = (without(rows(Dataset), "summary", "updated_at"), rows(DatasetVersion), rows(Listing))
        resp = send(seller.client, "patch", f"/api/v1/datasets/{ds.slug}/", {"summary": "patched", **SERVER_OWNED, "owner": b.org.pk, "slug": "stolen-slug"})
        after = (without(rows(Dataset), "summary", "updated_at"), rows(DatasetVersion), rows(Listing))
        assert_refused_or_ignored(resp, before, after, note=label)


def test_dataset_create_is_owned_by_the_callers_org(scenario):
    from datasets.models import Dataset, DatasetVersion

    seller, b = scenario.actors["seller_a"], scenario.actors["seller_b"]
    versions = rows(DatasetVersion)
    resp = send(seller.client, "post", "/api/v1/datasets/", {"slug": "mass-new", "title": "Mass", "annotation_license": "CC-BY-4.0", **SERVER_OWNED, "owner": b.org.pk})
    assert resp.status_code in (201, 400), resp.content
    assert rows(DatasetVersion) == versions
    if resp.status_code == 201:
        ds = Dataset.objects.get(slug="mass-new")
        assert ds.owner_id == seller.org.pk and ds.created_by_id == seller.user.pk and ds.pk != 999999


def test_version_create_starts_as_an_empty_draft(scenario):
    from datasets.models import DatasetVersion

    seller = scenario.actors["seller_a"]
    ds = scenario.get("dataset", "a-published").row  # its only version is published: a new draft may open
    existing = rows(DatasetVersion)
    resp = send(seller.client, "post", f"/api/v1/datasets/{ds.slug}/versions/", {"notes": "n", **SERVER_OWNED, "number": 77})
    assert resp.status_code in (201, 400), resp.content
    assert rows(DatasetVersion, pk__in=[r["id"] for r in existing]) == existing
    if resp.status_code == 201:
        new = DatasetVersion.objects.exclude(pk__in=[r["id"] for r in existing]).get()
        assert (new.state, new.number, new.statistics, new.validation_report, new.published_at, new.submitted_at) == ("draft", 2, {}, {}, None, None)


def test_upload_start_chooses_its_own_key_and_state(scenario):
    from datasets.models import DatasetFile, UploadSession

    seller, b = scenario.actors["seller_a"], scenario.actors["seller_b"]
    version = scenario.get("version", "a-draft").row
    existing = rows(UploadSession)
    files = rows(DatasetFile)
    body = {"role": "annotations", "name": "mass.json", "size": 10, "sha256": "a" * 64, **SERVER_OWNED, "part_count": 1, "organization": b.org.pk, "state": "complete"}
    body["sha256"] = "a" * 64
    resp = send(seller.client, "post", f"/api/v1/versions/{version.pk}/uploads/", body)
    assert resp.status_code in (201, 400), resp.content
    assert rows(UploadSession, pk__in=[r["id"] for r in existing]) == existing and rows(DatasetFile) == files
    if resp.status_code == 201:
        up = UploadSession.objects.exclude(pk__in=[r["id"] for r in existing]).get()
        assert up.state == "open" and up.organization_id == seller.org.pk and up.version_id == version.pk
        assert up.storage_key.startswith(f"versions/{version.pk}/uploads/") and up.multipart_id != "forged"
        assert "evil" not in resp.content.decode() and "storage_key" not in resp.json()


def test_provenance_put_cannot_verify(scenario):
    from licensing.models import ProvenanceField

    seller = scenario.actors["seller_a"]
    version = scenario.get("version", "a-draft").row
    url = f"/api/v1/versions/{version.pk}/provenance/"
    for body in (
        {"fields": {}, "status": "verified", "verified": True},
        {"fields": {"rai:dataCollection": {"value": "robots", "status": "verified", "verified": True}}},
        {"fields": {"rai:dataCollection": "robots"}, **SERVER_OWNED},
    ):
        resp = send(seller.client, "put", url, body)
        assert resp.status_code in (200, 400), (body, resp.content)
        statuses = set(ProvenanceField.objects.filter(record__version=version).values_list("status", flat=True))
        assert statuses <= {"self_declared", "missing", ""}, (body, statuses)


def test_order_price_state_and_buyer_are_the_servers(scenario):
    from marketplace.listings.models import Entitlement, Order

    buyer, other = scenario.actors["buyer_none"], scenario.actors["buyer_ent"]
    version = scenario.get("version", "a-published").row
    orders, ents = rows(Order), rows(Entitlement)
    body = {"license": "CC-BY-4.0", "version": version.number, **SERVER_OWNED, "price": "0.01", "currency": "EUR", "state": "paid", "buyer": other.org.pk}
    resp = send(buyer.client, "post", f"/api/v1/listings/{version.dataset.slug}/orders/", body, HTTP_IDEMPOTENCY_KEY="mass-1")
    assert resp.status_code in (201, 400), resp.content
    assert rows(Order, pk__in=[r["id"] for r in orders]) == orders and rows(Entitlement) == ents
    if resp.status_code == 201:
        order = Order.objects.exclude(pk__in=[r["id"] for r in orders]).get()
        assert (order.price, order.currency, order.state, order.buyer_id) == (Decimal("10.00"), "USD", "pending_payment", buyer.org.pk)
    # Buying in the name of another buyer organization is refused.
    resp = send(buyer.client, "post", f"/api/v1/listings/{version.dataset.slug}/orders/", {"license": "CC-BY-4.0", "version": version.number, "organization": other.org.slug}, HTTP_IDEMPOTENCY_KEY="mass-2")
    assert resp.status_code in (400, 403, 404), resp.content
    assert not Order.objects.filter(buyer=other.org, idempotency_key="mass-2").exists()


def test_mark_paid_keeps_the_order_price(scenario):

    staff = scenario.actors["moderator"]
    order = scenario.get("order", "b-published-pending").row
    resp = send(staff.client, "post", f"/api/v1/orders/{order.pk}/mark-paid/", {"reason": "paid", "price": "0.01", "currency": "EUR", "license": "MIT"})
    assert resp.status_code in (200, 400), resp.content
    order.refresh_from_db()
    assert (order.price, order.currency, order.license) == (Decimal("10.00"), "USD", "CC-BY-4.0")
