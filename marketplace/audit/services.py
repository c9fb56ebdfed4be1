"""Writing to the audit log. Every service that changes a version, a provenance field, a
license, an order or an entitlement calls :func:`audit_event_record` inside its
transaction, so the event commits or rolls back with the change it describes."""

from __future__ import annotations

from typing import Any

from marketplace.audit.models import AuditEvent


def audit_event_record(
    *,
    actor,
    action: str,
    obj: Any,
    organization=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
) -> AuditEvent:
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if authenticated else None,
        actor_label=actor.get_username() if authenticated else "system",
        action=action,
        object_type=obj._meta.label_lower if hasattr(obj, "_meta") else type(obj).__name__.lower(),
        object_id=str(getattr(obj, "pk", obj)),
        organization=organization,
        before=before or {},
        after=after or {},
        reason=reason,
    )
