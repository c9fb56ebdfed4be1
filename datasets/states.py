"""The dataset version's life cycle. Only the transitions listed here exist."""

from __future__ import annotations

from django.db import models


class VersionState(models.TextChoices):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    PROCESSING = "processing"
    FAILED_VALIDATION = "failed_validation"
    FAILED = "failed"  # a step kept failing for a reason that is not the seller's input
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


S = VersionState
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SUBMITTED}),
    S.SUBMITTED: frozenset({S.PROCESSING}),
    S.PROCESSING: frozenset({S.FAILED_VALIDATION, S.IN_REVIEW, S.FAILED}),
    S.FAILED: frozenset({S.PROCESSING}),  # staff re-run after the cause is fixed
    S.IN_REVIEW: frozenset({S.PUBLISHED, S.REJECTED, S.CHANGES_REQUESTED}),
    S.PUBLISHED: frozenset({S.SUSPENDED, S.WITHDRAWN}),
    S.SUSPENDED: frozenset({S.PUBLISHED}),
    S.FAILED_VALIDATION: frozenset(),
    S.REJECTED: frozenset(),
    S.CHANGES_REQUESTED: frozenset(),
    S.WITHDRAWN: frozenset(),
}

# States in which the version's content can still change; every other state is frozen.
EDITABLE_STATES = frozenset({S.DRAFT})
# States a buyer may ever see.
BUYER_VISIBLE_STATES = frozenset({S.PUBLISHED})


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())
