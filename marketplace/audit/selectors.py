"""Reads of the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from marketplace.accounts.models import Organization, OrganizationRole
from marketplace.audit.models import AuditEvent
from marketplace.core.permissions import is_staff_member


def audit_events_for(*, user, filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """Staff see every event; anyone else only the events of the organizations they sell
    for or administer."""
    qs = AuditEvent.objects.all()
    if not is_staff_member(user):
        own = Organization.objects.filter(memberships__user=user, memberships__role__in=(OrganizationRole.SELLER, OrganizationRole.ADMIN))
        qs = qs.filter(organization__in=own)
    for key in ("action", "object_type", "object_id", "actor_label"):
        if filters.get(key):
            qs = qs.filter(**{key: filters[key]})
    if filters.get("organization"):
        qs = qs.filter(organization__slug=filters["organization"])
    if filters.get("since"):
        qs = qs.filter(created_at__gte=filters["since"])
    if filters.get("until"):
        qs = qs.filter(created_at__lt=filters["until"])
    return qs


def object_audit_events(*, obj) -> QuerySet[AuditEvent]:
    """The events recorded about one object, newest first."""
    return AuditEvent.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk))


def objects_audit_events(*, objs, action_prefix: str | None = None) -> QuerySet[AuditEvent]:
    """The events recorded about any of ``objs`` (instances of one model), newest first;
    with ``action_prefix``, only the actions that start with it."""
    objs = list(objs)
    if not objs:
        return AuditEvent.objects.none()
    qs = AuditEvent.objects.filter(object_type=objs[0]._meta.concrete_model._meta.label_lower, object_id__in=[str(o.pk) for o in objs])
    return qs.filter(action__startswith=action_prefix) if action_prefix else qs
