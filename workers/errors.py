"""Error codes of the pipeline (workers app). Clients key on these values: they never change meaning."""

from enum import StrEnum


class PipelineErrorCode(StrEnum):
    UNKNOWN_STEP = "unknown_step"
    VERSION_NOT_FOUND = "version_not_found"
