"""Worker tasks for licensing (queue ``default``)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="licensing.tasks.checks_run_task")
def checks_run_task(version_id: int) -> int:
    """Run the provenance and license checks; idempotent (replaces the results)."""
    from licensing.services import checks_run

    return len(checks_run(version_id=version_id))


@shared_task(name="licensing.tasks.consent_deadlines_task")
def consent_deadlines_task() -> dict:
    """Close consent revocations whose version was replaced, and suspend versions past their
    deadline (beat; idempotent)."""
    from licensing.services import consent_deadlines_enforce

    return consent_deadlines_enforce()
