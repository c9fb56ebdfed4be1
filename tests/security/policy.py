"""Who may call what: the declared policy the authorization matrix checks every route against.

One entry per (route name, method) the URL resolver knows under /api/v1/. A route the
resolver knows and this table does not FAILS the matrix test; so does an entry for a route
that no longer exists.

Each entry names the object kind whose URL parameters it takes (``target``; None for a
collection) and, per role, an expression saying when the role is let through:

  allow / deny           always / never
  own                    the object belongs to the role's organization
  entitled               the role's organization holds a live entitlement to the object
  member, admin          the role is a member / an admin of the organization the object concerns
  self                   the object is about the role itself (a member leaving, an invitee)
  sells                  the role's organization sells the order's listing
  draft, in_review, published, suspended
                         the object's (version's) state
  a|b   a&b              or / and (``&`` binds tighter)

Roles not named take ``default`` ("deny" unless said otherwise). Denied means 401/403/404
and nothing of the object in the body; allowed means the request got past authorization
(any status but 401/403/404, never 5xx; a GET answers 2xx).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.security.scenario import ROLES, organization_of


@dataclass(frozen=True)
class Rule:
    target: str | None
    roles: dict[str, str]
    body: Callable | None = None  # obj -> JSON body for writes (a valid one where that matters)
    extra: dict = field(default_factory=dict)  # fixed URL parameters
    get_2xx: bool = True  # an allowed GET must answer 2xx
    headers: dict = field(default_factory=dict)  # extra request headers (Django META names)


def P(target: str | None = None, *, default: str = "deny", body: Callable | None = None, get_2xx: bool = True, headers: dict | None = None, **roles: str) -> Rule:
    unknown = set(roles) - set(ROLES)
    assert not unknown, f"unknown roles {unknown}"
    table = {role: roles.get(role, default if role != "anonymous" else roles.get("anonymous", "deny")) for role in ROLES}
    return Rule(target=target, roles=table, body=body, get_2xx=get_2xx, headers=headers or {})


SELLERS = dict(seller_a="allow", seller_b="allow")
BUYERS = dict(buyer_ent="allow", buyer_none="allow", buyer_member="allow")
STAFF = dict(auditor="allow", moderator="allow")
SIGNED_IN = dict(**SELLERS, **BUYERS, **STAFF)
# Seller org members and staff always; everyone else only while published.
OWN_OR_PUBLISHED = dict(default="published", anonymous="published", seller_a="own|published", seller_b="own|published", **STAFF)
OWN_OR_STAFF = dict(seller_a="own", seller_b="own", **STAFF)

POLICY: dict[tuple[str, str], Rule] = {
    # accounts
    ("auth-login", "POST"): P(default="allow", anonymous="allow", body=lambda o: {"username": "nobody", "password": "wrong-password"}),
    ("auth-register", "POST"): P(default="allow", anonymous="allow", body=lambda o: {}),
    ("auth-logout", "POST"): P(**SIGNED_IN),
    ("auth-password", "POST"): P(**SIGNED_IN, body=lambda o: {"old_password": "wrong-password", "new_password": "x"}),
    ("me", "GET"): P(**SIGNED_IN),
    # quality reports: public while published (the listing shows them), else seller + staff
    ("quality-report-list", "GET"): P("version", **OWN_OR_PUBLISHED),
    ("quality-report-detail", "GET"): P("version", **OWN_OR_PUBLISHED),
    ("quality-report-plot", "GET"): P("version", **OWN_OR_PUBLISHED),
    # buyer evaluations: buyers, on published listings; each sees only their org's
    ("listing-evaluation-create", "POST"): P("dataset", buyer_ent="published", buyer_none="published", buyer_member="published", body=lambda o: []),
    ("listing-evaluation-split", "GET"): P("dataset", buyer_ent="published", buyer_none="published", buyer_member="published"),
    ("evaluation-detail", "GET"): P("evaluation", buyer_ent="own", buyer_none="own", buyer_member="own"),
    # listings: public search and detail of published listings only
    ("listing-search", "GET"): P(default="allow", anonymous="allow"),
    ("listing-detail", "GET"): P("dataset", default="published", anonymous="published"),
    # (a valid order body: a denied cell must be refused for who asks, not for what was sent)
    ("listing-order-create", "POST"): P(
        "dataset", buyer_ent="published", buyer_none="published", buyer_member="published",
        body=lambda o: {"license": "CC-BY-4.0", "version": o.params["number"]}, headers={"HTTP_IDEMPOTENCY_KEY": "matrix-order"},
    ),
    ("order-list", "GET"): P(**SIGNED_IN),
    # marking paid / revoking: Django staff (moderators and auditors are staff accounts); never
    # for an order of their own buyer organization (test_own_organization_payment_and_refund_are_refused)
    ("order-mark-paid", "POST"): P("order", **STAFF, body=lambda o: {"reason": "matrix"}),
    ("entitlement-list", "GET"): P(**SIGNED_IN),
    # approval decisions: seller members of the listing's organization; cancelling: the
    # buyer organization's members; refunds: staff; a seller's incoming orders: each their own
    ("order-approve", "POST"): P("order", seller_a="sells", seller_b="sells", body=lambda o: {"reason": "matrix"}),
    ("order-reject", "POST"): P("order", seller_a="sells", seller_b="sells", body=lambda o: {"reason": "matrix"}),
    ("order-cancel", "POST"): P("order", buyer_ent="own", buyer_none="own", buyer_member="own", body=lambda o: {}),
    ("order-refund", "POST"): P("order", **STAFF, body=lambda o: {"reason": "matrix"}),
    ("seller-order-list", "GET"): P(**SIGNED_IN),
    ("dataset-sales-terms", "GET"): P("dataset", seller_a="own", seller_b="own"),
    ("dataset-sales-terms", "PUT"): P("dataset", seller_a="own", seller_b="own", body=lambda o: {"requires_approval": False, "free_update_months": 12}),
    ("entitlement-claim-update", "POST"): P("entitlement", buyer_ent="own", buyer_member="own"),
    ("entitlement-files", "GET"): P("entitlement", buyer_ent="entitled&published", buyer_member="entitled&published"),
    ("entitlement-revoke", "POST"): P("entitlement", **STAFF, body=lambda o: {"reason": "matrix"}),
    # pipeline jobs: the seller org and staff; re-running a step: staff
    ("version-jobs", "GET"): P("version", **OWN_OR_STAFF),
    ("version-job-rerun", "POST"): P("version", **STAFF, body=lambda o: {}),
    # licensing: the catalogue is public; terms, checks and provenance follow the version's
    # visibility (signed in); provenance is edited by the owning seller
    ("license-list", "GET"): P(default="allow", anonymous="allow"),
    ("vocabulary-list", "GET"): P(default="allow", anonymous="allow"),
    ("version-effective-terms", "GET"): P("version", default="published", seller_a="own|published", seller_b="own|published", **STAFF),
    ("version-checks", "GET"): P("version", default="published", seller_a="own|published", seller_b="own|published", **STAFF),
    ("version-provenance", "GET"): P("version", default="published", seller_a="own|published", seller_b="own|published", **STAFF),
    # the public part of provenance (no consent ids, no notes): as public as the reports
    ("version-provenance-summary", "GET"): P("version", **OWN_OR_PUBLISHED),
    ("version-provenance", "PUT"): P("version", seller_a="own", seller_b="own", body=lambda o: {}),
    ("listing-croissant", "GET"): P("dataset", default="published", anonymous="published"),
    # the consent ledger: the owning organization and staff read a version's revocations; its
    # sellers record one (refused with 409 unless published); buyers read and acknowledge
    # their organizations' notices
    ("version-consent-revocations", "GET"): P("version", **OWN_OR_STAFF),
    ("version-consent-revocations", "POST"): P(
        "version", seller_a="own", seller_b="own", body=lambda o: {"requested_on": "2026-01-02", "reason": "matrix", "records": ["C-matrix"]}
    ),
    ("consent-notice-list", "GET"): P(**SIGNED_IN),
    ("seller-consent-notice-list", "GET"): P(**SIGNED_IN),  # each their own listings' notices
    ("consent-notice-acknowledge", "POST"): P("notice", buyer_ent="own", buyer_member="own"),
    # moderation: moderators only, whatever the object
    ("moderation-queue", "GET"): P(moderator="allow"),
    ("moderation-version", "GET"): P("version", moderator="allow"),
    ("moderation-fields", "POST"): P("version", moderator="allow", body=lambda o: {}),
    ("moderation-decision", "POST"): P("version", moderator="allow", body=lambda o: {"decision": "approve", "reason": "matrix"}),
    ("moderation-suspend", "POST"): P("version", moderator="allow", body=lambda o: {"reason": "matrix"}),
    ("moderation-reinstate", "POST"): P("version", moderator="allow", body=lambda o: {"reason": "matrix"}),
    # audit events: staff all; sellers their organizations' (filtered); buyers an empty list
    ("audit-event-list", "GET"): P(**SIGNED_IN),
    # datasets: the owning seller organization only (staff moderate through moderation/)
    ("datasets", "GET"): P(**SIGNED_IN),  # each sees their own organizations' datasets (buyers, staff: none)
    ("datasets", "POST"): P(**SELLERS, body=lambda o: {"slug": "matrix-new", "title": "Matrix", "annotation_license": "CC-BY-4.0"}),
    # the dataset card's check (writes nothing): sellers only
    ("dataset-card-check", "POST"): P(**SELLERS, body=lambda o: {"slug": "matrix-card", "card": {"title": "Matrix", "annotation_license": "CC-BY-4.0"}}),
    ("dataset-detail", "GET"): P("dataset", seller_a="own", seller_b="own"),
    ("dataset-detail", "PATCH"): P("dataset", seller_a="own", seller_b="own", body=lambda o: {"summary": "matrix"}),
    ("dataset-versions", "GET"): P("dataset", seller_a="own", seller_b="own"),
    ("dataset-versions", "POST"): P("dataset", seller_a="own", seller_b="own", body=lambda o: {}),
    ("version-detail", "GET"): P("version", **OWN_OR_STAFF),
    ("version-submit", "POST"): P("version", seller_a="own", seller_b="own"),
    ("version-uploads", "POST"): P(
        "version", seller_a="own", seller_b="own",
        body=lambda o: {"role": "annotations", "name": "matrix.json", "size": 10, "sha256": "0" * 64},
    ),
    ("upload-detail", "GET"): P("upload", seller_a="own", seller_b="own"),
    ("upload-part", "PUT"): P("upload", seller_a="own", seller_b="own"),
    ("upload-complete", "POST"): P("upload", seller_a="own", seller_b="own"),
    ("upload-abort", "POST"): P("upload", seller_a="own", seller_b="own"),
    # auditing: auditors (moderators may look at the sample); never drafts
    ("audit-samples", "GET"): P(auditor="allow"),
    ("audit-sample", "GET"): P("version", auditor="in_review|published|suspended", moderator="in_review|published|suspended"),
    ("audit-reference", "POST"): P("version", auditor="in_review|published|suspended", body=lambda o: {}),
    # organization members: members list them; admins invite, change roles, remove; a member
    # may leave; only the invitee accepts an invitation
    ("organization-members", "GET"): P("organization", default="member"),
    ("organization-member", "PATCH"): P("member", default="admin", body=lambda o: {"roles": ["buyer"]}),
    ("organization-member", "DELETE"): P("member", default="admin|self"),
    ("organization-invitations", "GET"): P("organization", default="admin"),
    ("organization-invitations", "POST"): P("organization", default="admin", body=lambda o: {"username": "sec-seller-b", "roles": ["buyer"]}),
    ("organization-invitation", "DELETE"): P("invitation", default="admin"),
    ("invitation-accept", "POST"): P("invitation", default="self"),
    # notifications: each signed-in user their own; webhooks: the organization's admins
    ("notification-list", "GET"): P(**SIGNED_IN),
    ("notification-read", "POST"): P(**SIGNED_IN, body=lambda o: {}),
    ("organization-webhooks", "GET"): P("organization", default="admin"),
    ("organization-webhooks", "POST"): P("organization", default="admin", body=lambda o: {"url": "http://127.0.0.1:9/matrix"}),
    ("webhook-detail", "DELETE"): P("webhook", default="admin"),
    ("webhook-rotate-secret", "POST"): P("webhook", default="admin"),
    ("webhook-deliveries", "GET"): P("webhook", default="admin"),
    ("webhook-delivery-resend", "POST"): P("delivery", default="admin"),
    # the schema and its page are public
    ("schema", "GET"): P(default="allow", anonymous="allow"),
    ("docs", "GET"): P(default="allow", anonymous="allow"),
}


def allowed(expr: str, role: str, obj) -> bool:
    """Evaluate a policy expression for ``role`` on ``obj`` (None for collections)."""

    def atom(word: str) -> bool:
        if word == "allow":
            return True
        if word == "deny":
            return False
        if obj is None:
            raise AssertionError(f"{word!r} needs an object (the rule has no target)")
        if word == "own":
            return obj.owner == organization_of(role)
        if word == "entitled":
            return organization_of(role) in obj.entitled
        if word == "member":
            return role in obj.members
        if word == "admin":
            return role in obj.admins
        if word == "self":
            return role == obj.subject
        if word == "sells":
            return obj.seller == organization_of(role)
        if word in ("draft", "in_review", "published", "suspended"):
            return obj.state == word
        raise AssertionError(f"unknown policy word {word!r}")

    return any(all(atom(w.strip()) for w in term.split("&")) for term in expr.split("|"))
