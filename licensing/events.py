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
