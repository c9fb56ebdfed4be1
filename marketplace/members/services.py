"""Writes for organization membership: invitations, their acceptance, role changes and
removals. Each locks the organization row (so two admins cannot demote each other at
once and leave none), and records its audit event."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from marketplace.accounts.models import Membership, Organization, OrganizationRole
from marketplace.accounts.services import token_hash
from marketplace.audit.services import audit_event_record
from marketplace.core.errors import Conflict, InvalidInput, NotFound, field_error
from marketplace.members.errors import MemberErrorCode
from marketplace.members.models import Invitation

User = get_user_model()


def roles_clean(roles: list[str], *, location: str = "roles") -> list[str]:
    """The roles, validated, deduplicated and in a stable order (admin, seller, buyer)."""
    unknown = sorted({r for r in roles if r not in OrganizationRole.values})
    if unknown or not roles:
        raise InvalidInput(
            "Roles must be a non-empty list of admin, seller and buyer.",
            code=MemberErrorCode.INVALID_ROLES,
            details=[field_error(location, f"unknown role {r!r}" if unknown else "at least one role", "invalid_choice") for r in (unknown or [""])],
        )
    return [r for r in OrganizationRole.values if r in set(roles)]


def _lock(organization: Organization) -> Organization:
    return Organization.objects.select_for_update().get(pk=organization.pk)


def _roles_of(organization: Organization, user) -> list[str]:
    held = set(Membership.objects.filter(organization=organization, user=user).values_list("role", flat=True))
    return [r for r in OrganizationRole.values if r in held]


def _admins(organization: Organization) -> set[int]:
    return set(Membership.objects.filter(organization=organization, role=OrganizationRole.ADMIN).values_list("user_id", flat=True))


def _refuse_last_admin(organization: Organization, user, what: str) -> None:
    if _admins(organization) == {user.pk}:
        raise Conflict(
            f"The organization's last admin cannot {what}; make another member admin first.",
            code=MemberErrorCode.LAST_ADMIN,
            details=[field_error("roles", "the organization needs at least one admin", "last_admin")],
        )


@transaction.atomic
def invitation_create(*, organization: Organization, actor, roles: list[str], username: str = "", email: str = "") -> tuple[Invitation, str]:
    """Invite a user (by username) or an address (by email) with ``roles``; returns the
    invitation and its clear token (shown once). It expires after
    ``MEMBERS_INVITATION_TTL_HOURS``."""
    roles = roles_clean(roles)
    username, email = username.strip(), email.strip().lower()
    if bool(username) == bool(email):
        raise InvalidInput(
            "Invite by username or by email (one of them).",
            code=MemberErrorCode.INVITEE_REQUIRED,
            details=[field_error("username", "give a username or an email, not both", "required")],
        )
    org = _lock(organization)
    invitee = None
    if username:
        invitee = User.objects.filter(username__iexact=username, is_active=True).first()
        if invitee is None:
            raise InvalidInput("No user has that username.", code=MemberErrorCode.UNKNOWN_USER, details=[field_error("username", "unknown user", "unknown_user")])
        username = invitee.username
    else:
        invitee = User.objects.filter(email__iexact=email, is_active=True).first()
    if invitee is not None and set(roles) <= set(_roles_of(org, invitee)):
        raise Conflict(
            "That user is already a member with these roles.",
            code=MemberErrorCode.ALREADY_MEMBER,
            details=[field_error("username" if username else "email", "already a member with these roles", "already_member")],
        )
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=org,
        invited_by=actor,
        username=username,
        email=email,
        roles=roles,
        token_hash=token_hash(raw),
        expires_at=timezone.now() + timedelta(hours=settings.MEMBERS_INVITATION_TTL_HOURS),
    )
    audit_event_record(
        actor=actor,
        action="member.invite",
        obj=invitation,
        organization=org,
        after={"username": username, "email": email, "roles": roles, "expires_at": invitation.expires_at.isoformat()},
    )
    return invitation, raw


def _invitation_matches(invitation: Invitation, user) -> bool:
    if invitation.username:
        return invitation.username.lower() == user.username.lower()
    return bool(user.email) and invitation.email == user.email.strip().lower()


@transaction.atomic
def invitation_accept(*, token: str, user) -> tuple[str, list[str]]:
    """The invitee accepts: they become a member with the invited roles (added to any
    they hold). Returns the organization's slug and their roles in it. An unknown, used, revoked or
    someone else's token is NotFound; an expired one is Conflict ``invitation_expired``."""
    invitation = Invitation.objects.select_for_update().filter(token_hash=token_hash(token)).first()
    if invitation is None or invitation.accepted_at or invitation.revoked_at or not _invitation_matches(invitation, user):
        raise NotFound("No such invitation for you.", code=MemberErrorCode.INVITATION_NOT_FOUND)
    if invitation.expires_at <= timezone.now():
        raise Conflict("The invitation has expired; ask for a new one.", code=MemberErrorCode.INVITATION_EXPIRED)
    org = _lock(invitation.organization)
    before = _roles_of(org, user)
    for role in invitation.roles:
        Membership.objects.get_or_create(user=user, organization=org, role=role)
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    after = _roles_of(org, user)
    audit_event_record(
        actor=user,
        action="member.join",
        obj=org,
        organization=org,
        before={"member": user.username, "roles": before},
        after={"member": user.username, "roles": after, "invitation": invitation.pk},
    )
    return org.slug, after


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor) -> Invitation:
    """An admin withdraws a pending invitation (idempotent)."""
    locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if locked.accepted_at:
        raise Conflict("The invitation was accepted already.", code=MemberErrorCode.INVITATION_NOT_FOUND)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        audit_event_record(actor=actor, action="member.invitation_revoke", obj=locked, organization=locked.organization, before={"state": "pending"}, after={"state": "revoked"})
    return locked


@transaction.atomic
def member_roles_set(*, organization: Organization, actor, member, roles: list[str]) -> list[str]:
    """Replace a member's roles. The last admin keeps ``admin`` (Conflict ``last_admin``)."""
    roles = roles_clean(roles)
    org = _lock(organization)
    before = _roles_of(org, member)
    if not before:
        raise NotFound("No such member.", code=MemberErrorCode.MEMBER_NOT_FOUND)
    if OrganizationRole.ADMIN in before and OrganizationRole.ADMIN not in roles:
        _refuse_last_admin(org, member, "give up the admin role")
    Membership.objects.filter(organization=org, user=member).exclude(role__in=roles).delete()
    for role in roles:
        Membership.objects.get_or_create(user=member, organization=org, role=role)
    if before != roles:
        audit_event_record(
            actor=actor, action="member.roles", obj=org, organization=org,
            before={"member": member.username, "roles": before}, after={"member": member.username, "roles": roles},
        )
    return roles


@transaction.atomic
def member_remove(*, organization: Organization, actor, member) -> None:
    """Remove a member (an admin's act) or leave (``actor`` is ``member``). From then on
    the member acts for the organization in nothing: its entitlements, orders and
    notifications are no longer theirs. The last admin can neither leave nor be removed."""
    org = _lock(organization)
    before = _roles_of(org, member)
    if not before:
        raise NotFound("No such member.", code=MemberErrorCode.MEMBER_NOT_FOUND)
    leaving = actor is not None and actor.pk == member.pk
    if OrganizationRole.ADMIN in before:
        _refuse_last_admin(org, member, "leave" if leaving else "be removed")
    Membership.objects.filter(organization=org, user=member).delete()
    audit_event_record(
        actor=actor, action="member.leave" if leaving else "member.remove", obj=org, organization=org,
        before={"member": member.username, "roles": before}, after={"member": member.username, "roles": []},
    )
