"""Organizations with members: an admin invites a buyer engineer who accepts and downloads
the organization's entitlement; a removed member's token no longer downloads; the last
admin cannot leave; every change is in the audit log. Through the API only."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from datasets.models import DatasetFile
from datasets.services import version_transition
from marketplace.audit.models import AuditEvent
from marketplace.core.storage import get_storage
from marketplace.listings.services import listing_sync
from marketplace.members.models import Invitation
from tests import factories

pytestmark = pytest.mark.django_db
API = "/api/v1"
PASSWORD = "a-long-enough-secret-42"


def register(client, username: str, organization: str, role: str, email: str = "") -> None:
    resp = client.post(f"{API}/auth/register/", {"username": username, "password": PASSWORD, "organization": organization, "role": role, "email": email}, format="json")
    assert resp.status_code == 201, resp.content


def signed_in(username: str) -> factories.APIClient:
    client = factories.APIClient()
    token = client.post(f"{API}/auth/login/", {"username": username, "password": PASSWORD}, format="json").json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def published_listing(seller, *, slug: str, price: str = "0.00"):
    dataset = factories.make_dataset(seller=seller, slug=slug, price=price)
    version = factories.make_version(seller=seller, dataset=dataset)
    for state in ("submitted", "processing", "in_review", "published"):
        version_transition(version=version, to_state=state, actor=None)
    for path, data in (("annotations/train.json", b'{"images": []}'), ("images/0001.png", b"png-1"), ("images/0002.png", b"png-2")):
        key = f"test-members/{uuid.uuid4().hex}/{path}"
        get_storage().put_bytes(key, data)
        DatasetFile.objects.create(version=version, role=path.split("/")[0], path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest(), storage_key=key)
    listing_sync(dataset=dataset)
    return version


def test_admin_invites_a_buyer_engineer_who_accepts_downloads_and_loses_access_when_removed(api_client):
    seller = factories.make_seller()
    published_listing(seller, slug="shared-grasps")

    # Registration: the creator is the new organization's admin and buyer.
    register(api_client, "lead", "Grasp Lab", "buyer", email="lead@grasp.example")
    lead = signed_in("lead")
    assert {(o["slug"], o["role"]) for o in lead.get(f"{API}/me").json()["organizations"]} == {("grasp-lab", "admin"), ("grasp-lab", "buyer")}
    # The lead buys for the organization (a free listing: paid at once).
    order = lead.post(f"{API}/listings/shared-grasps/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert order.status_code == 201 and order.json()["state"] == "paid", order.content
    entitlement = order.json()["entitlement"]

    # An engineer with an account (and an organization of their own) is invited by username.
    register(api_client, "engineer", "Engineer Home", "buyer", email="eng@home.example")
    engineer = signed_in("engineer")
    assert engineer.get(f"{API}/entitlements/{entitlement}/files/").status_code == 404
    invited = lead.post(f"{API}/organizations/grasp-lab/invitations/", {"username": "engineer", "roles": ["buyer"]}, format="json")
    assert invited.status_code == 201, invited.content
    body = invited.json()
    assert body["state"] == "pending" and body["roles"] == ["buyer"] and body["token"]
    assert not Invitation.objects.filter(token_hash=body["token"]).exists()  # stored hashed
    # The token is shown once: the list does not carry it.
    listed = lead.get(f"{API}/organizations/grasp-lab/invitations/").json()["results"]
    assert [i["id"] for i in listed] == [body["id"]] and "token" not in listed[0]
    # Someone else cannot use it.
    register(api_client, "intruder", "Elsewhere", "buyer")
    assert signed_in("intruder").post(f"{API}/invitations/{body['token']}/accept/").status_code == 404

    accepted = engineer.post(f"{API}/invitations/{body['token']}/accept/")
    assert accepted.status_code == 200 and accepted.json() == {"organization": "grasp-lab", "roles": ["buyer"]}
    assert engineer.post(f"{API}/invitations/{body['token']}/accept/").status_code == 404  # used once

    # The engineer now buys for two organizations: writes must name one; reads may.
    other = engineer.post(f"{API}/listings/shared-grasps/orders/", {"license": "CC-BY-4.0", "version": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert other.status_code == 400 and other.json()["code"] == "organization_required"
    scoped = engineer.get(f"{API}/entitlements/", HTTP_X_ORGANIZATION="grasp-lab").json()["results"]
    assert [e["id"] for e in scoped] == [entitlement]
    assert engineer.get(f"{API}/entitlements/", HTTP_X_ORGANIZATION="engineer-home").json()["results"] == []
    # ... and downloads the organization's entitlement.
    files = engineer.get(f"{API}/entitlements/{entitlement}/files/")
    assert files.status_code == 200 and {f["path"] for f in files.json()["results"]} == {"annotations/train.json", "images/0001.png", "images/0002.png"}

    # Members see each other; only admins see addresses.
    members = {m["username"]: m for m in engineer.get(f"{API}/organizations/grasp-lab/members/").json()["results"]}
    assert members["lead"]["roles"] == ["admin", "buyer"] and members["engineer"]["roles"] == ["buyer"]
    assert members["lead"]["email"] is None
    assert {m["username"]: m["email"] for m in lead.get(f"{API}/organizations/grasp-lab/members/").json()["results"]}["engineer"] == "eng@home.example"
    # A plain member cannot invite, change roles or remove others.
    assert engineer.post(f"{API}/organizations/grasp-lab/invitations/", {"username": "intruder", "roles": ["buyer"]}, format="json").status_code == 403
    assert engineer.delete(f"{API}/organizations/grasp-lab/members/lead/").status_code == 403

    # The admin removes the engineer: the same token no longer downloads.
    assert lead.delete(f"{API}/organizations/grasp-lab/members/engineer/").status_code == 204
    assert engineer.get(f"{API}/entitlements/{entitlement}/files/").status_code == 404
    assert engineer.get(f"{API}/entitlements/", HTTP_X_ORGANIZATION="grasp-lab").json()["results"] == []
    assert engineer.get(f"{API}/organizations/grasp-lab/members/").status_code == 404
    assert engineer.get(f"{API}/me").status_code == 200  # the account itself lives on

    # The last admin cannot leave nor lose the admin role.
    leave = lead.delete(f"{API}/organizations/grasp-lab/members/lead/")
    assert leave.status_code == 409 and leave.json()["code"] == "last_admin"
    demote = lead.patch(f"{API}/organizations/grasp-lab/members/lead/", {"roles": ["buyer"]}, format="json")
    assert demote.status_code == 409 and demote.json()["code"] == "last_admin"
    # With a second admin, the first may leave.
    invited = lead.post(f"{API}/organizations/grasp-lab/invitations/", {"email": "ENG@home.example", "roles": ["admin", "buyer"]}, format="json").json()
    assert engineer.post(f"{API}/invitations/{invited['token']}/accept/").json()["roles"] == ["admin", "buyer"]
    assert lead.delete(f"{API}/organizations/grasp-lab/members/lead/").status_code == 204
    assert lead.get(f"{API}/entitlements/{entitlement}/files/").status_code == 404
    assert engineer.get(f"{API}/entitlements/{entitlement}/files/").status_code == 200

    actions = list(AuditEvent.objects.filter(object_type__in=["accounts.organization", "members.invitation"]).order_by("created_at", "id").values_list("action", flat=True))
    assert actions == ["member.invite", "member.join", "member.remove", "member.invite", "member.join", "member.leave"]


def test_roles_change_and_invitations_expire_or_are_revoked(api_client):
    register(api_client, "boss", "Robot Works", "seller")
    boss = signed_in("boss")
    register(api_client, "helper", "Helper Home", "buyer")
    helper = signed_in("helper")

    # Bad input changes nothing.
    for body, code in (
        ({"username": "helper", "roles": []}, "invalid"),
        ({"username": "helper", "email": "x@y.example", "roles": ["buyer"]}, "invitee_required"),
        ({"username": "nobody-at-all", "roles": ["buyer"]}, "unknown_user"),
        ({"username": "boss", "roles": ["admin"]}, "already_member"),
    ):
        resp = boss.post(f"{API}/organizations/robot-works/invitations/", body, format="json")
        assert resp.status_code in (400, 409) and resp.json()["code"] == code, (body, resp.content)
    assert not Invitation.objects.exists()

    expired = boss.post(f"{API}/organizations/robot-works/invitations/", {"username": "helper", "roles": ["seller"]}, format="json").json()
    Invitation.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    resp = helper.post(f"{API}/invitations/{expired['token']}/accept/")
    assert resp.status_code == 409 and resp.json()["code"] == "invitation_expired"

    revoked = boss.post(f"{API}/organizations/robot-works/invitations/", {"username": "helper", "roles": ["seller"]}, format="json").json()
    assert boss.delete(f"{API}/organizations/robot-works/invitations/{revoked['id']}/").status_code == 204
    assert helper.post(f"{API}/invitations/{revoked['token']}/accept/").status_code == 404
    states = {i["id"]: i["state"] for i in boss.get(f"{API}/organizations/robot-works/invitations/").json()["results"]}
    assert states == {expired["id"]: "expired", revoked["id"]: "revoked"}

    good = boss.post(f"{API}/organizations/robot-works/invitations/", {"username": "helper", "roles": ["seller"]}, format="json").json()
    assert helper.post(f"{API}/invitations/{good['token']}/accept/").status_code == 200
    # As a seller of two organizations, the helper names the one a new dataset belongs to.
    create = {"slug": "helper-set", "title": "Helper set", "annotation_license": "CC-BY-4.0"}
    resp = helper.post(f"{API}/datasets/", create, format="json", HTTP_X_ORGANIZATION="robot-works")
    assert resp.status_code == 201 and resp.json()["owner"] == "robot-works", resp.content
    resp = boss.patch(f"{API}/organizations/robot-works/members/helper/", {"roles": ["seller", "admin"]}, format="json")
    assert resp.status_code == 200 and resp.json()["roles"] == ["admin", "seller"]
    resp = boss.patch(f"{API}/organizations/robot-works/members/helper/", {"roles": ["emperor"]}, format="json")
    assert resp.status_code == 400
    # Now two admins: the boss may step down to seller.
    assert boss.patch(f"{API}/organizations/robot-works/members/boss/", {"roles": ["seller"]}, format="json").json()["roles"] == ["seller"]
    assert boss.get(f"{API}/organizations/robot-works/invitations/").status_code == 403
    events = AuditEvent.objects.filter(action="member.roles").order_by("id")
    assert [(e.before["roles"], e.after["roles"]) for e in events] == [(["seller"], ["admin", "seller"]), (["admin", "seller"], ["seller"])]
    # Members of an organization see its audit events; a stranger sees none of them.
    assert {e["action"] for e in helper.get(f"{API}/audit-events/", {"organization": "robot-works"}).json()["results"]} >= {"member.roles", "member.join"}
    register(api_client, "stranger", "Strangers", "buyer")
    assert signed_in("stranger").get(f"{API}/audit-events/", {"organization": "robot-works"}).json()["results"] == []
