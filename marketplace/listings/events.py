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


@dataclass(frozen=True, kw_only=True)
class NewVersionAvailable(DomainEvent):
    """A newer version of a listing the buyer organization holds an entitlement to was
    published. ``free_until`` (ISO time) is set when the listing's update policy lets the
    holder claim it free until then; "" when the new version must be ordered."""

    buyer_id: int
    entitlement_id: int
    listing: str
    version: int
    held_version: int
    free_until: str = ""


@dataclass(frozen=True, kw_only=True)
class ConsentNoticeIssued(DomainEvent):
    """A buyer organization downloaded files a consent revocation withdrew: it must delete
    them (``files``: their paths) and acknowledge the notice."""

    notice_id: int
    buyer_id: int
    listing: str
    version: int
    files: list[str] = field(default_factory=list)
