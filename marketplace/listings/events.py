"""Events the store front publishes (delivered after commit; see marketplace.core.events).
They carry what a reader outside the store front needs (organization ids, the listing's
slug, the version's number), as no app may read the store front's tables from above."""

from __future__ import annotations

from dataclasses import dataclass, field

from marketplace.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class OrderStateChanged(DomainEvent):
    """An order was placed (``before`` is "") or moved on (approved, rejected, paid,
    cancelled, refunded). ``reason`` is the decision's or the cancellation's."""

    order_id: int
    buyer_id: int
    seller_id: int
    listing: str
    version: int
    before: str
    after: str
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class EntitlementGranted(DomainEvent):
    entitlement_id: int
    buyer_id: int
    listing: str
    version: int
    subset: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class EntitlementRevoked(DomainEvent):
    entitlement_id: int
    buyer_id: int
    listing: str
    version: int
    reason: str = ""
