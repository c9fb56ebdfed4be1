"""Every API route the URL resolver knows, with the HTTP methods its view implements."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

API_PREFIX = "api/v1/"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str
    route: str  # the pattern as written, e.g. "api/v1/versions/<int:id>/"
    params: tuple[str, ...]
    methods: tuple[str, ...]


def _walk(patterns, prefix: str = ""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def _methods(callback) -> tuple[str, ...]:
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:  # a function view: no way to tell; assume GET only
        return ("GET",)
    return tuple(m.upper() for m in METHODS if hasattr(view_class, m))


def api_routes() -> list[Route]:
    """Routes under /api/v1/ (the schema and its docs page included)."""
    out = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIX):
            continue
        out.append(Route(name=pattern.name or route, route=route, params=tuple(pattern.pattern.converters), methods=_methods(pattern.callback)))
    return out


def api_operations() -> list[tuple[Route, str]]:
    return [(r, m) for r in api_routes() for m in r.methods]
