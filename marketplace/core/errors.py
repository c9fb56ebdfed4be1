"""The domain's one error type. Services raise it; the API turns it into the error shape.

Every error has a stable ``code`` (clients key on it), a human ``message`` and optional
``details``: a list of ``{"location": ..., "message": ..., "code": ...}`` entries where
``location`` is a field name or a JSON path.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInput(DomainError):
    status_code = 400
    default_code = "invalid"


class NotFound(DomainError):
    status_code = 404
    default_code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    default_code = "forbidden"


class Conflict(DomainError):
    """The request is well-formed but the object's state does not allow it."""

    status_code = 409
    default_code = "conflict"


class Gone(DomainError):
    """The object existed and was withdrawn for good (a file whose consent was revoked)."""

    status_code = 410
    default_code = "gone"


class LimitExceeded(DomainError):
    status_code = 413
    default_code = "limit_exceeded"


class TooManyRequests(DomainError):
    """Refused for now; ``retry_after`` seconds later it may succeed (sent as Retry-After)."""

    status_code = 429
    default_code = "throttled"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after = retry_after


def field_error(location: str, message: str, code: str = "invalid") -> dict[str, str]:
    return {"location": location, "message": message, "code": code}
