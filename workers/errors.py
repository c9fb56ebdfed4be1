"""Error codes of the pipeline (workers app). Clients key on these values: they never change meaning."""

from enum import StrEnum


class PipelineErrorCode(StrEnum):
    UNKNOWN_STEP = "unknown_step"
    VERSION_NOT_FOUND = "version_not_found"
    # A step ran past its soft time limit (settings.PIPELINE_TIME_LIMITS) and stopped.
    STEP_TIME_LIMIT = "step_time_limit"
    # A step ran past its hard time limit: its worker process was killed and replaced.
    STEP_HARD_TIME_LIMIT = "step_hard_time_limit"
    # The step's worker process died on every attempt (killed, out of memory): a poison input.
    WORKER_LOST = "worker_lost"
    # A step that failed for a reason of the platform's, not the input's (the details,
    # exception and traceback, are for staff in the admin).
    STEP_FAILED = "step_failed"
