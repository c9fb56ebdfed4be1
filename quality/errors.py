"""Error codes of the quality app: reports and buyer evaluations. Clients key on these values: they never change meaning."""

from enum import StrEnum


class QualityErrorCode(StrEnum):
    EVALUATION_NOT_FOUND = "evaluation_not_found"
    # The evaluation ran past QUALITY_EVALUATION_TIME_LIMITS and was stopped.
    EVALUATION_TIME_LIMIT = "evaluation_time_limit"
    # The worker running the evaluation died on every attempt (killed, out of memory).
    EVALUATION_WORKER_LOST = "evaluation_worker_lost"
    INVALID_KIND = "invalid_kind"
    INVALID_RESULTS = "invalid_results"
    NO_EVALUATION_SPLIT = "no_evaluation_split"
    NOT_A_BUYER = "not_a_buyer"
    ORGANIZATION_EVALUATIONS_ACTIVE = "organization_evaluations_active"
    ORGANIZATION_EVALUATION_LIMIT = "organization_evaluation_limit"
    REPORT_NOT_FOUND = "report_not_found"
    RESULTS_OUTSIDE_SPLIT = "results_outside_split"
    RESULTS_TOO_LARGE = "results_too_large"
    TOO_MANY_DETECTIONS = "too_many_detections"
    VERSION_NOT_FOUND = "version_not_found"
