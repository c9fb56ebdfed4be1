"""Events the datasets app publishes (delivered after commit; see marketplace.core.events)."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class DatasetChanged(DomainEvent):
    """A dataset's listing-facing fields changed (title, price, vocabularies...)."""

    dataset_id: int


@dataclass(frozen=True, kw_only=True)
class VersionStateChanged(DomainEvent):
    """A version moved along its life cycle (``before`` → ``after``, VersionState values)."""

    version_id: int
    dataset_id: int
    before: str
    after: str


@dataclass(frozen=True, kw_only=True)
class VersionSubmitted(DomainEvent):
    """A seller froze a draft and submitted it: the pipeline's work begins."""

    version_id: int


@dataclass(frozen=True, kw_only=True)
class AuditReferenceSubmitted(DomainEvent):
    """The auditor's reference for a version's audit sample was stored."""

    version_id: int
