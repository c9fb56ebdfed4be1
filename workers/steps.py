"""What each pipeline step does: one call into the owning app's service.

Each returns (job state, result, message). The services are idempotent (keyed by
version, kind, engine version and input checksums), so running a step twice writes once.
"""

from __future__ import annotations

from collections.abc import Callable

from datasets.ingest import version_ingest
from datasets.selectors import version_audit_clips
from datasets.services import audit_sample_draw
from licensing.services import checks_run
from quality.services import report_compute
from workers.jobs import STEP_KIND
from workers.models import Job, JobState, JobStep


def step_execute(*, job: Job, progress: Callable[[int, int], None], device: str) -> tuple[str, dict, str]:
    step = job.step
    version_id = job.version_id
    if step == JobStep.INGEST:
        outcome = version_ingest(version_id=version_id, progress=progress)
        if outcome == "invalid":
            return JobState.FAILED_VALIDATION, {"outcome": outcome}, "the input did not validate: see the version's validation report"
        return JobState.SUCCEEDED, {"outcome": outcome}, "ingested"
    if step == JobStep.AUDIT_SAMPLE:
        image_ids = audit_sample_draw(version=job.version)
        if clips := version_audit_clips(version=job.version):
            frames = sum(len(c["frame_indices"]) for c in clips)
            return JobState.SUCCEEDED, {"clips": len(clips), "frames": frames}, f"{len(clips)} clips ({frames} frames) drawn for the audit"
        return JobState.SUCCEEDED, {"images": len(image_ids)}, f"{len(image_ids)} images drawn for the audit"
    if step in STEP_KIND:
        report = report_compute(version_id=version_id, kind=STEP_KIND[step], device=device, progress=progress)
        return (
            JobState.SUCCEEDED,
            {"report": report.pk, "engine_version": report.engine_version, "status": report.status},
            f"report {report.kind} ({report.status})",
        )
    if step == JobStep.CHECKS:
        results = checks_run(version_id=version_id)
        return JobState.SUCCEEDED, {"checks": len(results)}, f"{len(results)} checks run"
    raise ValueError(f"unknown step {step!r}")
