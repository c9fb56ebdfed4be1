"""One exception handler: every error leaves the API as ``{"code", "message", "details"}``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from marketplace.core.errors import DomainError, InvalidInput, LimitExceeded, TooManyRequests, field_error


def _flatten(detail: Any, location: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error detail into a flat list of located errors."""
    out: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            loc = key if not location else f"{location}.{key}"
            if key == "non_field_errors":
                loc = location or "body"
            out.extend(_flatten(value, loc))
    elif isinstance(detail, list):
        only_strings = all(not isinstance(item, (dict, list)) for item in detail)
        for index, item in enumerate(detail):
            loc = location if only_strings else f"{location}[{index}]"
            out.extend(_flatten(item, loc))
    else:
        out.append({"location": location or "body", "message": str(detail), "code": getattr(detail, "code", "invalid")})
    return out


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    # Django's request limits (DATA_UPLOAD_MAX_MEMORY_SIZE / _NUMBER_FIELDS) raise these
    # while DRF parses; unhandled they would become Django's HTML 400 page.
    if isinstance(exc, RequestDataTooBig):
        exc = LimitExceeded(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes.",
            code="body_too_large",
            details=[field_error("body", f"at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes", "body_too_large")],
        )
    elif isinstance(exc, TooManyFieldsSent):
        exc = InvalidInput(
            f"The request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields.",
            code="too_many_fields",
            details=[field_error("query", f"at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields", "too_many_fields")],
        )
    if isinstance(exc, DomainError):
        response = Response(exc.to_dict(), status=exc.status_code)
        if isinstance(exc, TooManyRequests):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: let Django log it and answer 500
    if isinstance(exc, drf.ValidationError):
        body = {"code": "invalid", "message": "The request is not valid.", "details": _flatten(exc.detail)}
    else:
        detail = exc.detail if isinstance(exc, drf.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, drf.APIException) else "error"
        if not isinstance(code, str):
            code = getattr(exc, "default_code", "error")
        body = {"code": code, "message": str(detail), "details": []}
        if isinstance(exc, drf.Throttled):
            # DRF gives no wait when the history is already past the limit: say so anyway.
            hint = f"retry after {int(exc.wait)} s" if exc.wait is not None else "retry later"
            body["details"] = [{"location": "request", "message": hint, "code": "throttled"}]
    response.data = body
    return response
