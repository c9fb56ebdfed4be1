"""Events the licensing app publishes (delivered after commit; see marketplace.core.events)."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class ProvenanceReviewed(DomainEvent):
    """A moderator verified or disputed provenance fields of the version."""

    version_id: int


@dataclass(frozen=True, kw_only=True)
class ChecksCompleted(DomainEvent):
    """The provenance and license checks of the version were (re)computed."""

    version_id: int


@dataclass(frozen=True, kw_only=True)
class ConsentRevoked(DomainEvent):
    """A seller recorded a consent revocation against a published version: the files it
    covers are to be listed, withdrawn from entitlements and reported to the buyers who
    downloaded them."""

    revocation_id: int
    version_id: int
