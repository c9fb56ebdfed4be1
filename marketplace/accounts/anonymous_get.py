"""An anonymous ``GET`` asking for JSON, answered by a view without DRF's request cycle.

DRF's cycle (request wrapper, authenticators, permission classes, content negotiation,
response rendering) costs about as much as a cheap view's own work. For such a request on a
view that allows anyone, its outcome is known beforehand: the user is anonymous, the JSON
renderer answers with ``application/json``, the permission passes. Only the throttles
decide something, and they are counted here as DRF counts them.
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings

from marketplace.accounts.authentication import HashedTokenAuthentication
from marketplace.core.renderers import FastJSONRenderer
from marketplace.core.throttling import SlidingWindowThrottle

# Accept headers DRF's negotiation answers with the JSON renderer's plain media type.
_PLAIN_ACCEPT = (None, "*/*", "application/json")
# Authenticators that find nobody in a request without an Authorization header and with an anonymous session.
_ANONYMOUS_WITHOUT_HEADER = (HashedTokenAuthentication, SessionAuthentication)


def plain_json_get(view, request) -> bool:
    """Whether DRF would answer ``request`` (a Django request) for ``view`` as an anonymous
    request rendered as compact JSON: a GET without Authorization header, Accept asking for
    nothing but JSON, no format override, an anonymous session, a view open to anyone."""
    if request.method != "GET" or "HTTP_AUTHORIZATION" in request.META or request.META.get("HTTP_ACCEPT") not in _PLAIN_ACCEPT:
        return False
    override = api_settings.URL_FORMAT_OVERRIDE
    if override and override in request.GET:
        return False
    renderer = view.renderer_classes[0] if view.renderer_classes else None
    if renderer is not FastJSONRenderer or renderer.ensure_ascii or not renderer.compact or view.versioning_class is not None:
        return False
    if view.content_negotiation_class is not DefaultContentNegotiation:
        return False
    if not all(p is AllowAny for p in view.permission_classes):
        return False
    if not all(a in _ANONYMOUS_WITHOUT_HEADER for a in view.authentication_classes):
        return False
    if getattr(request, "_force_auth_user", None) is not None or getattr(request, "_force_auth_token", None) is not None:
        return False  # DRF's test client authenticated it (force_authenticate)
    user = getattr(request, "user", None)  # AuthenticationMiddleware's (the session's), as SessionAuthentication reads it
    return user is not None and not user.is_authenticated


def throttles_counted(view, request) -> dict | None:
    """Count ``request`` with each of the view's throttles as DRF's ``check_throttles``
    would; returns every decision by (throttle class, key), the form in which
    SlidingWindowThrottle takes decisions already made. None (nothing counted) when a
    throttle is not a sliding-window one."""
    throttles = view.get_throttles()
    if not all(isinstance(t, SlidingWindowThrottle) for t in throttles):
        return None
    decisions = {}
    for throttle in throttles:
        allowed = throttle.allow_request(request, view)
        if throttle.counted_as is not None:
            decisions[throttle.counted_as] = (allowed, throttle._retry_after)
    return decisions
