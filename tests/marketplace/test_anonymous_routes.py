"""Walk every URL pattern the resolver knows and call it anonymously."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from marketplace.urls import PUBLIC_ROUTE_NAMES

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def concrete(route: str) -> str:
    route = route.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")
    route = re.sub(r"<uuid:[^>]+>", "00000000-0000-4000-8000-000000000000", route)
    route = re.sub(r"<(?:int:)?[^>]*(?:id|pk|n|number)>", "1", route)
    route = re.sub(r"<[^>]+>", "x", route)
    route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "1", route)
    return "/" + route


def api_routes():
    for route, pattern in walk(get_resolver().url_patterns):
        if route.startswith("admin/") or pattern.name in PUBLIC_ROUTE_NAMES:
            continue
        yield pytest.param(concrete(route), id=pattern.name or route)


@pytest.mark.parametrize("url", list(api_routes()))
def test_non_public_route_refuses_anonymous(client, url):
    for method in METHODS:
        resp = getattr(client, method)(url)
        if resp.status_code == 405:
            continue
        assert resp.status_code in (401, 403), f"{method.upper()} {url} answered {resp.status_code}"


def test_public_routes_answer(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def test_admin_requires_login(client):
    resp = client.get("/admin/")
    assert resp.status_code == 302 and "/admin/login/" in resp["Location"]
