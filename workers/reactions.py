"""How the pipeline follows the versions: it starts when a version is submitted and goes on
when the auditor's reference arrives. Wired to the events in ``marketplace/reactions.py``."""

from __future__ import annotations

from datasets.events import AuditReferenceSubmitted, VersionStateChanged
from datasets.states import VersionState
from workers.pipeline import pipeline_resume, pipeline_start


def on_version_state_changed(event: VersionStateChanged) -> None:
    if event.after == VersionState.SUBMITTED:
        pipeline_start(version_id=event.version_id)


def on_audit_reference_submitted(event: AuditReferenceSubmitted) -> None:
    pipeline_resume(version_id=event.version_id)
