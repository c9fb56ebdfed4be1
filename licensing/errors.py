"""Error codes of the licensing app: provenance, checks, moderation. Clients key on these values: they never change meaning."""

from enum import StrEnum


class LicensingErrorCode(StrEnum):
    CHECKS_FAILED = "checks_failed"
    CONSENT_ALREADY_REVOKED = "consent_already_revoked"
    DERIVATIVES_NOT_ALLOWED = "derivatives_not_allowed"
    INCOMPATIBLE_SHARE_ALIKE = "incompatible_share_alike"
    INVALID_CARD = "invalid_card"
    INVALID_DECISION = "invalid_decision"
    INVALID_PROVENANCE = "invalid_provenance"
    INVALID_REVIEW = "invalid_review"
    INVALID_REVOCATION = "invalid_revocation"
    INVALID_TRANSITION = "invalid_transition"
    # A moderator may not decide on (nor review the provenance of) a version of an
    # organization they are a member of.
    OWN_ORGANIZATION = "own_organization"
    REASON_REQUIRED = "reason_required"
    TERMS_TOO_PERMISSIVE = "terms_too_permissive"
    UNKNOWN_CONSENT_RECORD = "unknown_consent_record"
    UNKNOWN_LICENSE = "unknown_license"
    VERSION_FROZEN = "version_frozen"
    VERSION_NEVER_PUBLISHED = "version_never_published"
