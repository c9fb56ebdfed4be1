"""The objects the authorization matrix and the fuzzer act on, created through the apps'
own services: for each seller organization (A, B) one dataset per version state (draft,
in review, published, suspended), their listings, an upload into each draft, orders and
entitlements of "buyer with entitlement", quality reports, pipeline jobs and buyer
evaluations.

Every object carries *markers*: unique strings (its title, its slug) that must never
appear in a response to someone who may not see it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from tests import factories

ROLES = ("anonymous", "seller_a", "seller_b", "buyer_ent", "buyer_none", "buyer_member", "auditor", "moderator")
# A role whose user is a member of another role's organization: "buyer_member" is a second
# (non-admin) buyer of buyer_ent's organization, so it holds what that organization holds.
ORGANIZATION_OF = {"buyer_member": "buyer_ent"}
STATES = ("draft", "in_review", "published", "suspended")
STAFF_ROLES = ("auditor", "moderator")
# draft -> ... -> each state, through the real state machine.
PATHS = {
    "draft": [],
    "in_review": ["submitted", "processing", "in_review"],
    "published": ["submitted", "processing", "in_review", "published"],
    "suspended": ["submitted", "processing", "in_review", "published", "suspended"],
}


@dataclass
class Obj:
    kind: str
    label: str
    owner: str  # the role whose organization owns it
    state: str  # the state of the dataset version it belongs to
    params: dict  # every URL keyword this object can fill
    markers: tuple[str, ...] = ()
    entitled: tuple[str, ...] = ()  # roles holding a live entitlement to it
    row: object = None
    members: tuple[str, ...] = ()  # roles that are members of the organization it concerns
    admins: tuple[str, ...] = ()  # roles that are admins of that organization
    subject: str = ""  # the role it is about (a member, an invitee)
    seller: str = ""  # for an order: the role whose organization sells the listing

    def __repr__(self) -> str:
        return f"<{self.kind} {self.label}>"


@dataclass
class Scenario:
    actors: dict  # role -> factories.Actor (anonymous: an Actor with no user)
    objects: dict[str, list[Obj]] = field(default_factory=dict)

    def add(self, obj: Obj) -> Obj:
        self.objects.setdefault(obj.kind, []).append(obj)
        return obj

    def of(self, kind: str) -> list[Obj]:
        return self.objects.get(kind, [])

    def get(self, kind: str, label: str) -> Obj:
        return next(o for o in self.of(kind) if o.label == label)

    def may_see(self, role: str, obj: Obj) -> bool:
        """Whether ``role`` may learn that ``obj`` exists and what it is called."""
        if role in STAFF_ROLES:
            return True
        org = organization_of(role)
        return obj.owner == org or obj.state == "published" or org in obj.entitled

    def all_markers(self) -> list[tuple[Obj, str]]:
        return [(o, m) for objs in self.objects.values() for o in objs for m in o.markers]


def organization_of(role: str) -> str:
    """The role whose organization ``role`` acts for (itself, but for shared members)."""
    return ORGANIZATION_OF.get(role, role)


def build() -> Scenario:
    from datasets import services as ds
    from datasets.models import DatasetVersion
    from marketplace.listings import services as ls

    actors = {
        "anonymous": factories.Actor(user=None, org=None, token="", client=factories.APIClient()),
        "seller_a": factories.make_seller(username="sec-seller-a"),
        "seller_b": factories.make_seller(username="sec-seller-b"),
        "buyer_ent": factories.make_buyer(username="sec-buyer-ent"),
        "buyer_none": factories.make_buyer(username="sec-buyer-none"),
        "buyer_member": None,  # below: a member of buyer_ent's organization
        "auditor": factories.make_auditor(username="sec-auditor"),
        "moderator": factories.make_moderator(username="sec-moderator"),
    }
    actors["buyer_member"] = factories.make_buyer(username="sec-buyer-member", org=actors["buyer_ent"].org)
    sc = Scenario(actors=actors)
    staff = actors["moderator"].user
    _organizations(sc)
    tag = secrets.token_hex(3)

    for owner in ("seller_a", "seller_b"):
        seller = actors[owner]
        for state in STATES:
            short = f"{owner[-1]}-{state.replace('_', '')}"
            slug = f"sec-{short}-{tag}"
            title = f"Secret title zq{short}{tag}"
            dataset = factories.make_dataset(seller=seller, slug=slug, title=title, summary=f"summary zq{short}{tag}s", price="10.00")
            version = ds.version_create(dataset=dataset, actor=seller.user, notes=f"notes zq{short}{tag}n")
            if state == "draft":
                upload = ds.upload_start(version=version, actor=seller.user, role="annotations", name="annotations.json", size=1234, sha256=hashlib.sha256(b"x").hexdigest())
                sc.add(Obj("upload", short, owner, state, {"id": upload.pk, "upload_id": upload.pk, "pk": upload.pk, "n": 1}, (title,), row=upload))
            for to in PATHS[state]:
                ds.version_transition(version=version, to_state=to, actor=staff, reason="scenario")
            version.refresh_from_db()
            ls.listing_sync(dataset=dataset)
            markers = (title, slug)
            params = {"slug": slug, "dataset_slug": slug, "version_id": version.pk, "id": version.pk, "pk": version.pk, "number": version.number, "kind": "intrinsic", "name": "area_histogram", "step": "ingest"}
            sc.add(Obj("dataset", short, owner, state, params, markers, row=dataset))
            sc.add(Obj("version", short, owner, state, params, markers, row=version))

    # Buyer with entitlement: orders (paid) for A's published version, and for A's
    # suspended one before its suspension (bought, then taken down).
    buyer = actors["buyer_ent"]
    for label in ("a-published", "a-suspended"):
        vobj = sc.get("version", label)
        version: DatasetVersion = vobj.row
        if label == "a-suspended":
            ds.version_transition(version=version, to_state="published", actor=staff, reason="scenario: reinstate to sell")
            ls.listing_sync(dataset=version.dataset)
        listing = version.dataset.listing
        order, _ = ls.order_create(listing=listing, buyer=buyer.org, user=buyer.user, license=version.dataset.annotation_license, version_number=version.number, idempotency_key=f"sec-{label}")
        order = ls.order_mark_paid(order=order, actor=staff, reason="scenario")
        if label == "a-suspended":
            ds.version_transition(version=version, to_state="suspended", actor=staff, reason="scenario")
            ls.listing_sync(dataset=version.dataset)
        ent = order.entitlement
        for kind in ("dataset", "version"):
            sc.get(kind, label).entitled = ("buyer_ent",)
        sc.add(Obj("order", label, "buyer_ent", vobj.state, {"order_id": order.pk, "id": order.pk, "pk": order.pk}, (), ("buyer_ent",), row=order, seller="seller_a"))
        sc.add(Obj("entitlement", label, "buyer_ent", vobj.state, {"entitlement_id": ent.pk, "id": ent.pk, "pk": ent.pk}, (), ("buyer_ent",), row=ent))
    # A pending (unpaid) order of the buyer without entitlement.
    other = actors["buyer_none"]
    version = sc.get("version", "b-published").row
    order, _ = ls.order_create(listing=version.dataset.listing, buyer=other.org, user=other.user, license=version.dataset.annotation_license, version_number=version.number, idempotency_key="sec-pending")
    sc.add(Obj("order", "b-published-pending", "buyer_none", "published", {"order_id": order.pk, "id": order.pk, "pk": order.pk}, (), row=order, seller="seller_b"))

    _quality_and_jobs(sc)
    _consent_notices(sc)
    return sc


def _consent_notices(sc: Scenario) -> None:
    """A consent notice to buyer_ent's organization about A's published version (written by
    the revocation's reaction in real life)."""
    from marketplace.listings.models import ConsentNotice

    version = sc.get("version", "a-published").row
    notice = ConsentNotice.objects.create(
        revocation_id=0, buyer=sc.actors["buyer_ent"].org, listing=version.dataset.listing, version=version,
        files=[{"path": "images/zq-withdrawn.png", "sha256": "0" * 64}], requested_on=timezone.localdate(),
    )
    sc.add(Obj("notice", "buyer_ent-a-published", "buyer_ent", "published", {"notice_id": notice.pk}, ("zq-withdrawn",), ("buyer_ent",), row=notice))


def _organizations(sc: Scenario) -> None:
    """seller_a and buyer_ent administer their organizations; buyer_member is a plain buyer
    of buyer_ent's; a pending invitation asks buyer_none into it."""
    from marketplace.accounts.services import membership_add
    from marketplace.members.services import invitation_create

    for role in ("seller_a", "buyer_ent"):
        membership_add(user=sc.actors[role].user, organization=sc.actors[role].org, role="admin")
    seller_org, buyer_org = sc.actors["seller_a"].org, sc.actors["buyer_ent"].org
    sc.add(Obj("organization", "seller_a", "seller_a", "published", {"slug": seller_org.slug}, members=("seller_a",), admins=("seller_a",)))
    sc.add(Obj("organization", "buyer_ent", "buyer_ent", "published", {"slug": buyer_org.slug}, members=("buyer_ent", "buyer_member"), admins=("buyer_ent",)))
    for org, role, members, admins in ((seller_org, "seller_a", ("seller_a",), ("seller_a",)), (buyer_org, "buyer_member", ("buyer_ent", "buyer_member"), ("buyer_ent",))):
        user = sc.actors[role].user
        sc.add(Obj("member", f"{org.slug}/{role}", organization_of(role), "published", {"slug": org.slug, "username": user.username}, members=members, admins=admins, subject=role))
    from marketplace.notifications.models import Webhook, WebhookDelivery
    from marketplace.notifications.services import event_id_for

    webhook = Webhook.objects.create(organization=buyer_org, url="https://hooks.example.test/market", secret="whsec_scenario", events=[])
    sc.add(Obj("webhook", "buyer_ent", "buyer_ent", "published", {"webhook_id": webhook.pk}, members=("buyer_ent", "buyer_member"), admins=("buyer_ent",), row=webhook))
    delivery = WebhookDelivery.objects.create(webhook=webhook, event_id=event_id_for("order.state_changed", "scenario"), kind="order.state_changed", payload={}, state="failed", attempts=8)
    sc.add(Obj("delivery", "buyer_ent", "buyer_ent", "published", {"delivery_id": delivery.pk}, members=("buyer_ent", "buyer_member"), admins=("buyer_ent",), row=delivery))
    invitation, token = invitation_create(organization=buyer_org, actor=sc.actors["buyer_ent"].user, username=sc.actors["buyer_none"].user.username, roles=["buyer"])
    sc.add(Obj(
        "invitation", "buyer_none-into-buyer_ent", "buyer_ent", "published",
        {"slug": buyer_org.slug, "invitation_id": invitation.pk, "token": token},
        members=("buyer_ent", "buyer_member"), admins=("buyer_ent",), subject="buyer_none", row=invitation,
    ))


def _quality_and_jobs(sc: Scenario) -> None:
    """Rows written by workers in real life (reports, jobs, evaluations): created here directly,
    as running the pipeline for sixteen versions would cost minutes."""
    from marketplace.core.storage import get_storage
    from quality.models import BuyerEvaluation, EvaluationSplit, QualityReport
    from workers.models import Job

    for vobj in sc.of("version"):
        plot = f"test-security/{vobj.row.pk}/area_histogram.png"
        get_storage().put_bytes(plot, b"\x89PNG\r\n\x1a\n", content_type="image/png")
        QualityReport.objects.create(
            version=vobj.row, kind="intrinsic", engine_version="test", inputs_checksum="0" * 64, summary={"images": 1}, artifacts={"plots": {"area_histogram": plot}}
        )
        Job.objects.create(version=vobj.row, step="ingest", state="succeeded", finished_at=timezone.now())
    for label in ("a-published", "b-published"):
        EvaluationSplit.objects.create(
            version=sc.get("version", label).row, rule="seeded", image_ids=[1], category_ids=[1],
            images=[{"id": 1, "file_name": "images/1.png", "width": 4, "height": 4}], categories=[{"id": 1, "name": "gripper"}],
        )
    version = sc.get("version", "a-published").row
    for role in ("buyer_ent", "buyer_none"):
        actor = sc.actors[role]
        ev = BuyerEvaluation.objects.create(dataset=version.dataset, version=version, organization=actor.org, user=actor.user, results_key=f"evaluations/sec-{role}.json", results_sha256="0" * 64)
        sc.add(Obj("evaluation", f"{role}-a-published", role, "published", {"evaluation_id": ev.pk, "id": ev.pk, "pk": ev.pk}, (), row=ev))


def build_in_transaction():
    """Build inside an atomic block the caller rolls back (module-scoped fixtures)."""
    atomic = transaction.atomic()
    atomic.__enter__()
    return atomic, build()
