"""Reads for accounts."""

from __future__ import annotations

from django.db.models import QuerySet

from marketplace.accounts.models import Membership, Organization, OrganizationRole
from marketplace.core.permissions import is_auditor, is_moderator


def organizations_for(*, user, role: str | None = None) -> QuerySet[Organization]:
    if not user or not user.is_authenticated:
        return Organization.objects.none()
    qs = Organization.objects.filter(memberships__user=user)
    if role:
        qs = qs.filter(memberships__role=role)
    return qs.distinct()


def seller_organizations(*, user) -> QuerySet[Organization]:
    return organizations_for(user=user, role=OrganizationRole.SELLER)


def buyer_organizations(*, user) -> QuerySet[Organization]:
    return organizations_for(user=user, role=OrganizationRole.BUYER)


def user_profile(*, user) -> dict:
    memberships = Membership.objects.filter(user=user).select_related("organization").order_by("organization__slug", "role")
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "organizations": [{"slug": m.organization.slug, "name": m.organization.name, "role": m.role} for m in memberships],
        "staff_roles": [r for r, ok in (("auditor", is_auditor(user)), ("moderator", is_moderator(user)), ("staff", user.is_staff)) if ok],
    }
