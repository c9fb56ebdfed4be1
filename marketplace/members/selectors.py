"""Reads for organization membership, with the permission rules: members see their
organization's members; admins also see emails and invitations. A user who is not a
member gets NotFound (the organization's existence does not leak); a member without the
admin role gets Forbidden ``not_an_admin``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from marketplace.accounts.models import Membership, Organization, OrganizationRole
from marketplace.core.errors import Forbidden, NotFound
from marketplace.members.errors import MemberErrorCode
from marketplace.members.models import Invitation

User = get_user_model()


def _roles(organization: Organization, user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    return set(Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True))


def organization_for_member(*, user, slug: str) -> tuple[Organization, set[str]]:
    """The organization and the user's roles in it; NotFound unless the user is a member."""
    org = Organization.objects.filter(slug=slug).first()
    roles = _roles(org, user) if org else set()
    if not roles:
        raise NotFound("No such organization.", code=MemberErrorCode.ORGANIZATION_NOT_FOUND)
    return org, roles


def organization_for_admin(*, user, slug: str) -> Organization:
    org, roles = organization_for_member(user=user, slug=slug)
    if OrganizationRole.ADMIN not in roles:
        raise Forbidden("Only the organization's admins may do this.", code=MemberErrorCode.NOT_AN_ADMIN)
    return org


@dataclass(frozen=True, kw_only=True)
class Member:
    username: str
    email: str
    roles: list[str]
    joined_at: datetime


def organization_members(*, organization: Organization) -> list[Member]:
    """Every member with their roles (one query), by username."""
    rows = Membership.objects.filter(organization=organization).select_related("user").order_by("user__username", "created_at")
    found: dict[int, dict] = {}
    for m in rows:
        entry = found.setdefault(m.user_id, {"user": m.user, "roles": set(), "joined_at": m.created_at})
        entry["roles"].add(m.role)
        entry["joined_at"] = min(entry["joined_at"], m.created_at)
    return [
        Member(username=e["user"].username, email=e["user"].email, roles=[r for r in OrganizationRole.values if r in e["roles"]], joined_at=e["joined_at"])
        for e in found.values()
    ]


def member_get(*, organization: Organization, username: str):
    """The member's user, or NotFound ``member_not_found``."""
    user = User.objects.filter(username=username, memberships__organization=organization).distinct().first()
    if user is None:
        raise NotFound("No such member.", code=MemberErrorCode.MEMBER_NOT_FOUND)
    return user


def organization_invitations(*, organization: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.filter(organization=organization).select_related("organization", "invited_by", "accepted_by")


def invitation_get(*, organization: Organization, invitation_id: int) -> Invitation:
    invitation = organization_invitations(organization=organization).filter(pk=invitation_id).first()
    if invitation is None:
        raise NotFound("No such invitation.", code=MemberErrorCode.INVITATION_NOT_FOUND)
    return invitation
