"""The paginator's next/previous links, built from the parsed query, are DRF's: the same
string as ``replace_query_param`` / ``remove_query_param`` on ``build_absolute_uri()``,
for any query sent escaped. For raw (unescaped) UTF-8 bytes in the query string they keep
what the client asked for, where DRF's re-encode the bytes as ISO-8859-1 characters."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.http import QueryDict
from django.test import RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

from marketplace.core.pagination import CappedPageNumberPagination

HOSTILE = [
    "",
    "page=2",
    "page=2&page=3&q=mug",
    "z=1&a=2&page_size=5&a=3",
    "q=caf%C3%A9+latte&embodiment=UR5e&embodiment=franka-panda",
    "q=%FF%FE&x=%zz&y=%",  # invalid UTF-8 and broken escapes
    "flag&empty=&=novalue&&",
    "q=a%26b%3Dc&tag=%2B+plus",
    "q=%E2%9C%93%F0%9F%A4%96&sort=-price",
    "a;b=1&c=2;d",
    "Q=1&q=2&_=3&~=4&page=x",
]


def _both(query: str, path: str = "/api/v1/listings/", **extra):
    django_request = RequestFactory().get(path, **extra)
    django_request.META["QUERY_STRING"] = query
    ours = CappedPageNumberPagination()
    ours.request = Request(django_request)
    url = Request(django_request).build_absolute_uri()
    return ours, url


def _check(query: str, **extra) -> None:
    ours, url = _both(query, **extra)
    asked = QueryDict(query.encode("iso-8859-1"))
    for page in (1, 2, 17):
        ours._link_parts = None
        link = ours._link_to(page)
        if query.isascii():
            drf = remove_query_param(url, "page") if page == 1 else replace_query_param(url, "page", page)
            assert link == drf, (query, page)
        # Following the link asks for the same things, on another page.
        followed = QueryDict(urlsplit(link).query)
        expected = {k: asked.getlist(k) for k in asked if k != "page"} | ({} if page == 1 else {"page": [str(page)]})
        assert {k: followed.getlist(k) for k in followed} == expected, (query, page, link)


@pytest.mark.parametrize("query", HOSTILE)
def test_links_are_drfs_on_hostile_queries(query):
    _check(query)


def test_links_keep_the_scheme_host_and_escaped_path(settings):
    settings.ALLOWED_HOSTS = ["market.example", "h.example"]
    _check("page=2&q=x", path="/api/v1/listings/", secure=True, HTTP_HOST="market.example:8443")
    _check("q=x", path="/api/v1/some path/é/", HTTP_HOST="h.example")


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6)


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["page", "q", "a", "page_size", "zz", "Page"]) | _text, _text), max_size=6), st.booleans())
def test_links_are_drfs_on_generated_queries(pairs, raw):
    from urllib.parse import urlencode

    # Encoded as a client would, or sent raw: unescaped UTF-8 bytes in the query string,
    # which a WSGI server hands over decoded as ISO-8859-1.
    query = "&".join(f"{k}={v}" for k, v in pairs).encode().decode("iso-8859-1") if raw else urlencode(pairs)
    _check(query)
