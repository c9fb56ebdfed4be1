"""How the pipeline follows the versions: it starts when a version is submitted and goes on
when the auditor's reference arrives. Wired to the events in ``marketplace/reactions.py``."""

from __future__ import annotations

from datasets.events import AuditReferenceSubmitted, VersionSubmitted
from workers.pipeline import pipeline_resume, pipeline_start


def on_version_submitted(event: VersionSubmitted) -> None:
    pipeline_start(version_id=event.version_id)


def on_audit_reference_submitted(event: AuditReferenceSubmitted) -> None:
    pipeline_resume(version_id=event.version_id)
