"""The authorization matrix: every /api/v1/ route and method x every role x objects of
each owner and state, compared with the declared policy (tests/security/policy.py).

A route the resolver knows without a policy entry fails here, so a new route cannot land
without someone deciding who may call it.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.security.conftest import call
from tests.security.policy import POLICY, allowed
from tests.security.routes import api_operations, api_routes
from tests.security.scenario import ROLES

pytestmark = pytest.mark.django_db
DENIED = (401, 403, 404)
SIGNED_URL = re.compile(r"X-Amz-Signature|X-Amz-Credential|/files/[A-Za-z0-9_\-:.]{20,}")


def _storage_keys() -> list[str]:
    from datasets.models import DatasetFile, UploadSession

    keys = list(DatasetFile.objects.values_list("storage_key", flat=True))
    keys += list(UploadSession.objects.values_list("storage_key", flat=True))
    return [k for k in keys if k]


def url_for(route, obj, rule) -> str:
    kwargs = {}
    for name in route.params:
        source = {**(obj.params if obj else {}), **rule.extra}
        assert name in source, f"{route.name}: no value for URL parameter {name!r} from {obj!r}"
        kwargs[name] = source[name]
    return reverse(route.name, kwargs=kwargs)


def check_cell(scenario, route, method, rule, role, obj, storage_keys) -> str | None:
    """None when the answer matches the policy, else a one-line description of the mismatch."""
    client = scenario.actors[role].client
    url = url_for(route, obj, rule)
    body = rule.body(obj) if rule.body else None
    resp = call(client, method, url, body, **rule.headers)
    text = resp.content.decode(errors="replace")
    want = allowed(rule.roles[role], role, obj)
    where = f"{method} {url} as {role} on {obj!r}: {resp.status_code}"
    if resp.status_code >= 500:
        return f"{where} (server error)"
    if want:
        if resp.status_code in DENIED:
            return f"{where}, policy says allowed"
        if method == "GET" and rule.get_2xx and not 200 <= resp.status_code < 300:
            return f"{where}, an allowed GET must answer 2xx"
    else:
        if resp.status_code not in DENIED or (resp.status_code == 401 and role != "anonymous"):
            return f"{where}, policy says denied (403/404)"
        if SIGNED_URL.search(text):
            return f"{where}: a denied answer carries a signed URL"
        for key in storage_keys:
            if key in text:
                return f"{where}: a denied answer names storage key {key!r}"
        if obj is not None:
            for marker in obj.markers:
                if marker in text:
                    return f"{where}: a denied answer shows {marker!r}"
    if '"storage_key"' in text:
        return f"{where}: the body exposes a storage_key field"
    for other, marker in scenario.all_markers():
        if marker in text and not scenario.may_see(role, other):
            return f"{where}: the body shows {other!r} ({marker!r}), which {role} may not see"
    return None


def test_every_route_has_a_policy():
    missing = sorted(f"{m} {r.name} ({r.route})" for r, m in api_operations() if (r.name, m) not in POLICY)
    assert not missing, "routes without a policy entry in tests/security/policy.py:\n" + "\n".join(missing)


def test_policy_has_no_stale_entries():
    known = {(r.name, m) for r, m in api_operations()}
    stale = sorted(f"{m} {name}" for name, m in POLICY if (name, m) not in known)
    assert not stale, "policy entries for routes that do not exist:\n" + "\n".join(stale)


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r.name)
def test_route_matches_policy(route, scenario):
    storage_keys = _storage_keys()
    problems = []
    for method in route.methods:
        rule = POLICY.get((route.name, method))
        assert rule is not None, f"{method} {route.name} has no policy entry (tests/security/policy.py)"
        targets = scenario.of(rule.target) if rule.target else [None]
        assert targets, f"the scenario has no {rule.target!r} objects for {route.name}"
        for role in ROLES:
            for obj in targets:
                problem = check_cell(scenario, route, method, rule, role, obj, storage_keys)
                if problem:
                    problems.append(problem)
    assert not problems, f"{len(problems)} cell(s) differ from the policy:\n" + "\n".join(problems[:40])


def test_search_never_lists_drafts_or_hidden_versions(scenario):
    """Search as every role: only published listings, whoever asks."""
    for role in ROLES:
        resp = call(scenario.actors[role].client, "GET", "/api/v1/listings/?page_size=100")
        assert resp.status_code == 200, (role, resp.status_code)
        text = resp.content.decode()
        for obj in scenario.of("dataset"):
            for marker in obj.markers:
                assert (marker in text) == (obj.state == "published"), f"{role}: {obj!r} {'missing from' if obj.state == 'published' else 'leaks into'} search"


# ---------------------------------------------------------------- duties and what each role reads
#
# Rules the route table cannot state on its own: who is deciding (a moderator of the
# seller's own organization), what a signed link still opens once its entitlement is
# revoked, and what the evidence a role may read says of other organizations. Each runs
# on the module's scenario inside a savepoint rolled back at the end.


def _rolled_back():
    from django.db import transaction

    class _Savepoint:
        def __enter__(self):
            self.atomic = transaction.atomic()
            self.atomic.__enter__()

        def __exit__(self, *exc):
            transaction.set_rollback(True)
            self.atomic.__exit__(None, None, None)

    return _Savepoint()


MODERATION_WRITES = {
    "moderation-decision": ("in_review", {"decision": "approve", "reason": "matrix"}),
    "moderation-fields": ("in_review", {"fields": [{"name": "locations", "status": "verified", "note": ""}]}),
    "moderation-suspend": ("published", {"reason": "matrix"}),
    "moderation-reinstate": ("suspended", {"reason": "matrix"}),
}


@pytest.mark.parametrize("route_name", list(MODERATION_WRITES))
def test_own_organization_moderation_is_refused(scenario, route_name):
    from marketplace.accounts.services import membership_add

    state, body = MODERATION_WRITES[route_name]
    moderator = scenario.actors["moderator"]
    with _rolled_back():
        # The moderator joins seller A's organization (any role will do).
        membership_add(user=moderator.user, organization=scenario.actors["seller_a"].org, role="buyer")
        for owner, refused in (("seller_a", True), ("seller_b", False)):
            version = scenario.get("version", f"{owner[-1]}-{state.replace('_', '')}")
            url = reverse(route_name, kwargs={"version_id": version.params["version_id"]})
            resp = call(moderator.client, "POST", url, body)
            if refused:
                assert resp.status_code == 403, (owner, resp.status_code, resp.content[:300])
                assert resp.json()["code"] == "own_organization"
            else:
                assert resp.status_code not in DENIED and resp.status_code < 500, (owner, resp.status_code, resp.content[:300])
            # Reading stays allowed: the refusal is of the decision, not of the version.
            assert call(moderator.client, "GET", reverse("moderation-version", kwargs={"version_id": version.params["version_id"]})).status_code == 200


# Recording a payment and refunding: (route, the order, its state before, the state the
# allowed call leaves). The order's buyer organization is the one the staff member joins.
PAYMENT_WRITES = {
    "order-mark-paid": ("b-published-pending", "pending_payment", "paid"),
    "order-refund": ("a-published", "paid", "refunded"),
}


@pytest.mark.parametrize("route_name", list(PAYMENT_WRITES))
def test_own_organization_payment_and_refund_are_refused(scenario, route_name):
    """A staff member who also belongs to the order's buyer organization may neither mark it
    paid (an entitlement without payment) nor refund it (money back to themselves): 403
    ``own_organization`` and the order, its entitlement and the audit log stay as they were.
    Another staff member still can."""
    from marketplace.accounts.services import membership_add
    from marketplace.audit.models import AuditEvent
    from marketplace.listings.models import Entitlement, Order

    label, before, after = PAYMENT_WRITES[route_name]
    order = scenario.get("order", label)
    url = reverse(route_name, kwargs={"order_id": order.params["order_id"]})
    insider, other = scenario.actors["moderator"], scenario.actors["auditor"]
    buyer_org = scenario.actors[order.owner].org
    with _rolled_back():
        membership_add(user=insider.user, organization=buyer_org, role="buyer")
        entitlements = list(Entitlement.objects.filter(order_id=order.params["order_id"]).values_list("pk", "revoked_at"))
        events = AuditEvent.objects.count()
        resp = call(insider.client, "POST", url, {"reason": "matrix"})
        assert resp.status_code == 403, resp.content[:300]
        body = resp.json()
        assert body["code"] == "own_organization" and body["details"][0]["location"] == "order", body
        # Not through call(): a refusal must leave nothing behind even when its request commits.
        assert insider.client.post(url, {"reason": "matrix"}, format="json").status_code == 403
        assert Order.objects.get(pk=order.params["order_id"]).state == before
        assert list(Entitlement.objects.filter(order_id=order.params["order_id"]).values_list("pk", "revoked_at")) == entitlements
        assert AuditEvent.objects.count() == events
        # A staff member outside the buyer organization settles it.
        resp = other.client.post(url, {"reason": "matrix"}, format="json")
        assert resp.status_code == 200, resp.content[:300]
        assert resp.json()["state"] == after


def test_revoked_entitlements_signed_links_are_refused(scenario, tmp_path):
    import hashlib

    from django.test import override_settings

    from datasets.models import DatasetFile
    from marketplace.core.storage import get_storage

    ent = scenario.get("entitlement", "a-published")
    version = scenario.get("version", "a-published").row
    with _rolled_back(), override_settings(OBJECT_STORAGE={"backend": "local", "root": str(tmp_path)}, PRESIGNED_URL_TTL_SECONDS=3600):
        data = b"matrix image bytes"
        key = f"test-security/{version.pk}/images/0001.png"
        get_storage().put_bytes(key, data)
        DatasetFile.objects.create(version=version, role="images", path="images/0001.png", size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_key=key)
        files = call(scenario.actors["buyer_ent"].client, "GET", reverse("entitlement-files", kwargs={"entitlement_id": ent.params["entitlement_id"]}))
        assert files.status_code == 200
        links = [f["url"] for f in files.json()["results"]]
        assert links and all(link.startswith("/files/") for link in links)
        assert all(scenario.actors["buyer_ent"].client.get(link).status_code == 200 for link in links)
        # Not through call(): the revocation must outlive the request (this test's savepoint undoes it).
        revoke_url = reverse("entitlement-revoke", kwargs={"entitlement_id": ent.params["entitlement_id"]})
        assert scenario.actors["moderator"].client.post(revoke_url, {"reason": "matrix"}, format="json").status_code == 200
        for role in ROLES:
            for link in links:
                assert scenario.actors[role].client.get(link).status_code == 404, (role, link)


def test_buyer_views_of_checks_and_provenance_carry_no_other_organizations_names_nor_consent_ids(scenario):
    from licensing.checks import CheckContext, check_exif_personal_data, check_near_duplicates
    from licensing.models import CheckResult, ConsentRecord

    a = scenario.get("version", "a-published")
    b = scenario.get("dataset", "b-published")
    b_files = ("images/zq-b-original-0001.png",)
    consent_id = "zq-consent-0042"
    with _rolled_back():
        # What the checks write when A's images re-encode B's published ones and one carries GPS data.
        fingerprint = type("Fingerprint", (), {"path": "images/zq-a-own-0001.png", "exif_personal": ["GPSInfo"]})
        ctx = CheckContext(
            version=a.row, fields={}, consent_sessions=set(), statistics={}, effective_terms={}, quality_summary=None,
            fingerprints=[fingerprint],
            duplicates={b.params["slug"]: {"listing": b.params["slug"], "images": 1, "examples": [{"path": fingerprint.path, "matches": b_files[0]}]}},
        )
        for produced in (check_near_duplicates(ctx), check_exif_personal_data(ctx)):
            CheckResult.objects.create(version=a.row, **produced)
        ConsentRecord.objects.create(version=a.row, session_id="zq-session-7", consent_id=consent_id, legal_basis="consent")

        other_organization = (*b.markers, scenario.actors["seller_b"].org.slug, scenario.actors["seller_b"].org.name, *b_files)
        for role in ROLES:
            if role == "anonymous":
                continue
            checks = call(scenario.actors[role].client, "GET", reverse("version-checks", kwargs={"version_id": a.params["version_id"]}))
            provenance = call(scenario.actors[role].client, "GET", reverse("version-provenance", kwargs={"version_id": a.params["version_id"]}))
            assert checks.status_code == provenance.status_code == 200, role
            text = checks.content.decode() + provenance.content.decode()
            staff = role in ("auditor", "moderator")
            seller = role == "seller_a"
            if staff:  # the moderators see whose listing and which files were matched
                assert b.params["slug"] in text and b_files[0] in text, role
            else:
                for marker in other_organization:
                    assert marker not in text, (role, marker)
            assert (consent_id in text) == (staff or seller), role
            assert ("zq-session-7" in text) == (staff or seller), role
            assert ("images/zq-a-own-0001.png" in text) == (staff or seller), role
            if not (staff or seller):
                body = {c["code"]: c["evidence"] for c in checks.json()}
                assert body["near_duplicate_listing"]["listings"] == 1 and body["near_duplicate_listing"]["images"] == 1
                assert provenance.json()["consent_summary"]["records"] == 1
