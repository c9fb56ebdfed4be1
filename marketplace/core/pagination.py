from urllib import parse

from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class CappedPageNumberPagination(PageNumberPagination):
    """Page-number pagination whose ``page_size`` query parameter is capped (API4).

    The ``next`` and ``previous`` links are DRF's (the request's URL, its query sorted by
    name, the page number set or removed), with the request's URL split and its query
    parsed and encoded once for both."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # read at request time so tests can override settings
        return settings.PAGE_SIZE_MAX

    def get_next_link(self):
        if not self.page.has_next():
            return None
        return self._link_to(self.page.next_page_number())

    def get_previous_link(self):
        if not self.page.has_previous():
            return None
        return self._link_to(self.page.previous_page_number())

    def _link_to(self, page_number: int) -> str:
        """DRF's replace_query_param (remove_query_param for page 1) on the request's URL."""
        parts = getattr(self, "_link_parts", None)
        if parts is None:
            scheme, netloc, path, query, fragment = parse.urlsplit(self.request.build_absolute_uri())
            key = self.page_query_param
            others = parse.parse_qs(query, keep_blank_values=True)
            others.pop(key, None)
            names = sorted(others)
            before = parse.urlencode([(k, others[k]) for k in names if k < key], doseq=True)
            after = parse.urlencode([(k, others[k]) for k in names if k > key], doseq=True)
            parts = self._link_parts = (scheme, netloc, path, fragment, before, after, parse.quote_plus(key))
        scheme, netloc, path, fragment, before, after, key = parts
        pieces = [before] if before else []
        if page_number != 1:
            pieces.append(f"{key}={page_number}")
        if after:
            pieces.append(after)
        return parse.urlunsplit((scheme, netloc, path, "&".join(pieces), fragment))
