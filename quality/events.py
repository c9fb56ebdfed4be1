"""Events the quality app publishes (delivered after commit; see marketplace.core.events)."""

from __future__ import annotations

from dataclasses import dataclass

from marketplace.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class QualityReportStored(DomainEvent):
    """A new quality report of ``kind`` was stored for the version (figures may have changed)."""

    version_id: int
    kind: str
