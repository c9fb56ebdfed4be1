"""A query-count baseline for every list and detail endpoint (as NetBox keeps one per app).

Each endpoint is called as a role that may see the answer; its number of SQL queries must
equal the pinned figure in ``query_counts.json``. List endpoints are measured with a few
rows in their answer, then again after it grew by a few more: the count must not move, so
an N+1 fails here with the endpoint named. After a deliberate change, re-pin with ``UPDATE_QUERY_COUNTS=1``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests import factories
from tests.security.routes import api_routes
from tests.security.scenario import Obj, Scenario

BASELINE = Path(__file__).with_name("query_counts.json")
GROWTH = 3
_unique = itertools.count(1)


def _publish(sc: Scenario, owner: str = "seller_a"):
    from datasets import services as ds
    from marketplace.listings import services as ls

    seller = sc.actors[owner]
    dataset = factories.make_dataset(seller=seller, price="5.00")
    version = ds.version_create(dataset=dataset, actor=seller.user)
    for state in ("submitted", "processing", "in_review", "published"):
        ds.version_transition(version=version, to_state=state, actor=sc.actors["moderator"].user)
    ls.listing_sync(dataset=dataset)
    return version


def _in_review(sc: Scenario):
    from datasets import services as ds

    seller = sc.actors["seller_b"]
    version = ds.version_create(dataset=factories.make_dataset(seller=seller), actor=seller.user)
    for state in ("submitted", "processing", "in_review"):
        ds.version_transition(version=version, to_state=state, actor=None)
    return version


def grow_datasets(sc, obj):
    for _ in range(GROWTH):
        factories.make_dataset(seller=sc.actors["seller_a"])


def grow_versions(sc, obj):
    from datasets import services as ds

    for _ in range(GROWTH):
        version = ds.version_create(dataset=obj.row.dataset, actor=sc.actors["seller_a"].user)
        for state in ("submitted", "processing", "in_review", "rejected"):
            ds.version_transition(version=version, to_state=state, actor=None, reason="growth")


def grow_files(sc, obj):
    from datasets.models import DatasetFile

    version = obj.row if obj.kind == "version" else obj.row.version
    for _ in range(GROWTH):
        n = next(_unique)
        DatasetFile.objects.create(
            version=version, role="images", path=f"growth/{n}.png", size=3, sha256=hashlib.sha256(b"g").hexdigest(), storage_key=f"growth/{version.pk}/{n}"
        )


def grow_audit_samples(sc, obj):
    from datasets.models import AuditSample

    for _ in range(GROWTH):
        AuditSample.objects.create(version=_in_review(sc), seed=1, size=1, image_ids=[1])


def grow_reports(sc, obj):
    from quality.models import QualityReport

    for kind in ("audit", "agreement", "temporal"):
        QualityReport.objects.create(version=obj.row, kind=kind, engine_version="test", inputs_checksum=f"{next(_unique):064d}", summary={}, artifacts={})


def grow_listings(sc, obj):
    for _ in range(GROWTH):
        _publish(sc)


def _buy(sc, *, paid: bool):
    from marketplace.listings import services as ls

    buyer = sc.actors["buyer_ent"]
    for _ in range(GROWTH):
        version = _publish(sc)
        order, _ = ls.order_create(
            listing=version.dataset.listing, buyer=buyer.org, user=buyer.user, license="CC-BY-4.0", version_number=version.number, idempotency_key=f"growth-{version.pk}"
        )
        if paid:
            ls.order_mark_paid(order=order, actor=sc.actors["moderator"].user)


def grow_orders(sc, obj):
    _buy(sc, paid=False)


def grow_entitlements(sc, obj):
    _buy(sc, paid=True)


def grow_jobs(sc, obj):
    from workers.models import Job

    for step in ("audit_sample", "quality_intrinsic", "checks"):
        Job.objects.create(version=obj.row, step=step, state="succeeded", input_checksum=f"{next(_unique)}")


def grow_checks(sc, obj):
    from licensing.models import CheckResult

    for _ in range(GROWTH):
        CheckResult.objects.create(version=obj.row, code=f"growth_{next(_unique)}", status="passed", severity="info", message="growth", evidence={})


def grow_provenance(sc, obj):
    from licensing.models import ProvenanceField, ProvenanceRecord

    record, _ = ProvenanceRecord.objects.get_or_create(version=obj.row)
    for _ in range(GROWTH):
        ProvenanceField.objects.create(record=record, name=f"growth_{next(_unique)}", value="growth")


def grow_in_review(sc, obj):
    for _ in range(GROWTH):
        _in_review(sc)


def grow_audit_events(sc, obj):
    from marketplace.audit.services import audit_event_record

    for i in range(GROWTH):
        audit_event_record(actor=sc.actors["moderator"].user, action="growth", obj=sc.get("version", "a-published").row, after={"i": i})


def grow_members(sc, obj):
    from marketplace.accounts.services import membership_add

    for _ in range(GROWTH):
        membership_add(user=factories.make_actor().user, organization=sc.actors["buyer_ent"].org, role="buyer")


def grow_invitations(sc, obj):
    from marketplace.members.services import invitation_create

    for _ in range(GROWTH):
        invitation_create(organization=sc.actors["buyer_ent"].org, actor=sc.actors["buyer_ent"].user, email=f"growth{next(_unique)}@example.test", roles=["buyer"])


def grow_notifications(sc, obj):
    from marketplace.notifications.services import notify

    for _ in range(GROWTH):
        notify(organization_id=sc.actors["buyer_ent"].org.pk, kind="order.state_changed", key=f"growth-{next(_unique)}", title="growth", payload={}, roles=("buyer",))


def grow_webhooks(sc, obj):
    from marketplace.notifications.models import Webhook

    for _ in range(GROWTH):
        Webhook.objects.create(organization=sc.actors["buyer_ent"].org, url=f"https://hooks.example.test/{next(_unique)}", secret="whsec_growth")


def grow_deliveries(sc, obj):
    from marketplace.notifications.models import WebhookDelivery
    from marketplace.notifications.services import event_id_for

    for _ in range(GROWTH):
        WebhookDelivery.objects.create(webhook=obj.row, event_id=event_id_for("order.state_changed", f"growth-{next(_unique)}"), kind="order.state_changed", payload={}, state="failed")


def grow_consent_notices(sc, obj):
    from marketplace.listings.models import ConsentNotice

    version = sc.get("version", "a-published").row
    for _ in range(GROWTH):
        ConsentNotice.objects.create(
            revocation_id=next(_unique), buyer=sc.actors["buyer_ent"].org, listing=version.dataset.listing, version=version,
            files=[{"path": "images/growth.png", "sha256": "0" * 64}], requested_on=timezone.localdate(),
        )


def grow_revocations(sc, obj):
    from licensing.models import ConsentRevocation

    for _ in range(GROWTH):
        ConsentRevocation.objects.create(
            version=obj.row, requested_on=timezone.localdate(), reason="growth", deadline=timezone.now(), recorded_by=sc.actors["seller_a"].user,
            files=[{"id": 0, "path": "images/growth.png", "role": "images", "sha256": "0" * 64}],
        )


# route name -> (role, (object kind, label) in the URL or None, what grows its answer or None)
ENDPOINTS: dict[str, tuple[str, tuple[str, str] | None, Callable[[Scenario, Obj | None], None] | None]] = {
    "me": ("seller_a", None, None),
    "datasets": ("seller_a", None, grow_datasets),
    "dataset-detail": ("seller_a", ("dataset", "a-published"), None),
    "dataset-versions": ("seller_a", ("version", "a-published"), grow_versions),
    "version-detail": ("seller_a", ("version", "a-published"), grow_files),
    "upload-detail": ("seller_a", ("upload", "a-draft"), None),
    "audit-samples": ("auditor", None, grow_audit_samples),
    "audit-sample": ("auditor", ("version", "a-inreview"), None),
    "quality-report-list": ("buyer_none", ("version", "a-published"), grow_reports),
    "quality-report-detail": ("buyer_none", ("version", "a-published"), None),
    "quality-report-plot": ("buyer_none", ("version", "a-published"), None),
    "listing-evaluation-split": ("buyer_ent", ("dataset", "a-published"), None),
    "version-provenance-summary": ("buyer_none", ("version", "a-published"), grow_provenance),
    "evaluation-detail": ("buyer_ent", ("evaluation", "buyer_ent-a-published"), None),
    "listing-search": ("anonymous", None, grow_listings),
    "listing-detail": ("anonymous", ("dataset", "a-published"), None),
    "listing-croissant": ("anonymous", ("dataset", "a-published"), None),
    "order-list": ("buyer_ent", None, grow_orders),
    "entitlement-list": ("buyer_ent", None, grow_entitlements),
    "entitlement-files": ("buyer_ent", ("entitlement", "a-published"), grow_files),
    "version-jobs": ("seller_a", ("version", "a-published"), grow_jobs),
    "license-list": ("anonymous", None, None),
    "vocabulary-list": ("anonymous", None, None),
    "version-effective-terms": ("buyer_none", ("version", "a-published"), None),
    "version-checks": ("buyer_none", ("version", "a-published"), grow_checks),
    "version-provenance": ("buyer_none", ("version", "a-published"), grow_provenance),
    "moderation-queue": ("moderator", None, grow_in_review),
    "moderation-version": ("moderator", ("version", "a-inreview"), grow_checks),
    "audit-event-list": ("moderator", None, grow_audit_events),
    "organization-members": ("buyer_ent", ("organization", "buyer_ent"), grow_members),
    "organization-invitations": ("buyer_ent", ("organization", "buyer_ent"), grow_invitations),
    "notification-list": ("buyer_ent", None, grow_notifications),
    "seller-order-list": ("seller_a", None, grow_orders),
    "dataset-sales-terms": ("seller_a", ("dataset", "a-published"), None),
    "organization-webhooks": ("buyer_ent", ("organization", "buyer_ent"), grow_webhooks),
    "webhook-deliveries": ("buyer_ent", ("webhook", "buyer_ent"), grow_deliveries),
    "version-consent-revocations": ("seller_a", ("version", "a-published"), grow_revocations),
    "consent-notice-list": ("buyer_ent", None, grow_consent_notices),
    "seller-consent-notice-list": ("seller_a", None, grow_consent_notices),
}
# GET routes without a database answer worth pinning.
EXEMPT = {"schema": "the generated OpenAPI document", "docs": "a static page"}


def _url(name: str, obj: Obj | None) -> str:
    route = next(r for r in api_routes() if r.name == name)
    kwargs = {p: obj.params[p] for p in route.params} if obj else {}
    return reverse(name, kwargs=kwargs)


def _count(sc: Scenario, name: str) -> tuple[int, int]:
    role, target, _ = ENDPOINTS[name]
    obj = sc.get(*target) if target else None
    url = _url(name, obj)
    client = sc.actors[role].client
    client.get(url)  # warm: the token's first use of the day writes last_used_at once
    with CaptureQueriesContext(connection) as queries:
        resp = client.get(url)
    assert resp.status_code == 200, f"{name} as {role}: {resp.status_code} {resp.content[:300]!r}"
    return len(queries), resp.status_code


def _baseline() -> dict[str, int]:
    return json.loads(BASELINE.read_text()) if BASELINE.exists() else {}


def test_every_get_route_has_a_query_baseline_entry():
    gets = {r.name for r in api_routes() if "GET" in r.methods}
    missing = sorted(gets - set(ENDPOINTS) - set(EXEMPT))
    assert not missing, f"GET routes without a query-count entry: {missing}"
    assert not sorted(set(ENDPOINTS) - gets), "entries for routes that no longer exist"


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_query_count_is_pinned_and_does_not_grow_with_the_answer(scenario, db, name):
    role, target, grow = ENDPOINTS[name]
    obj = scenario.get(*target) if target else None
    if grow is not None:  # measured with rows in the answer: an empty page skips its queries
        grow(scenario, obj)
    count, _ = _count(scenario, name)
    baseline = _baseline()
    if os.environ.get("UPDATE_QUERY_COUNTS") == "1":
        baseline[name] = count
        BASELINE.write_text(json.dumps(dict(sorted(baseline.items())), indent=2) + "\n")
    assert baseline.get(name) == count, f"{name}: {count} queries, pinned {baseline.get(name)} (re-pin with UPDATE_QUERY_COUNTS=1 if deliberate)"
    if grow is not None:
        grow(scenario, obj)
        grown, _ = _count(scenario, name)
        assert grown == count, f"{name}: {grown} queries after {GROWTH} more rows, {count} before (an N+1)"
