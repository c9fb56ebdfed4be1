"""Writes of the datasets app, one module per concern: ``versions`` (datasets and their
life cycle), ``uploads`` (resumable uploads), ``audit`` (the audit sample and the
auditor's reference). Callers import from here."""

from datasets.services.audit import audit_reference_submit, audit_sample_draw
from datasets.services.consent import version_revocation_clear, version_revocation_mark, withdrawn_content_add
from datasets.services.uploads import (
    upload_abort,
    upload_abort_storage,
    upload_complete,
    upload_part_headers,
    upload_part_size,
    upload_part_urls,
    upload_parts_arrived,
    upload_parts_plan,
    upload_plan,
    upload_put_part,
    upload_start,
    upload_verify,
    uploads_expire_abandoned,
    validate_file_path,
)
from datasets.services.versions import (
    ANNOTATION_ROLES,
    DATASET_EDITABLE,
    DATASET_LOCKED_AFTER_SUBMIT,
    dataset_create,
    dataset_update,
    version_create,
    version_submit,
    version_transition,
)

__all__ = [
    "ANNOTATION_ROLES",
    "DATASET_EDITABLE",
    "DATASET_LOCKED_AFTER_SUBMIT",
    "audit_reference_submit",
    "audit_sample_draw",
    "dataset_create",
    "dataset_update",
    "upload_abort",
    "upload_abort_storage",
    "upload_complete",
    "upload_part_headers",
    "upload_part_size",
    "upload_part_urls",
    "upload_parts_arrived",
    "upload_parts_plan",
    "upload_plan",
    "upload_put_part",
    "upload_start",
    "upload_verify",
    "uploads_expire_abandoned",
    "validate_file_path",
    "version_create",
    "version_submit",
    "version_revocation_clear",
    "version_revocation_mark",
    "version_transition",
    "withdrawn_content_add",
]
