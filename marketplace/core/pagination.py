from urllib import parse

from django.conf import settings
from django.http import HttpRequest
from django.utils.encoding import escape_uri_path
from rest_framework.pagination import PageNumberPagination


class CappedPageNumberPagination(PageNumberPagination):
    """Page-number pagination whose ``page_size`` query parameter is capped (API4).

    The ``next`` and ``previous`` links are DRF's (the request's URL, its query sorted by
    name, the page number set or removed), built from the query the request already parsed
    (``request.GET``) instead of parsing its URL again for each link.

    :meth:`paginate` takes a plain Django request (a view answering without DRF's request
    wrapper); it reads the same query parameters as ``paginate_queryset``."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # read at request time so tests can override settings
        return settings.PAGE_SIZE_MAX

    def paginate(self, queryset, request: HttpRequest, view=None):
        """``paginate_queryset`` for a Django request."""
        return self.paginate_queryset(queryset, _QueryOf(request), view=view)

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
            request = getattr(self.request, "_request", self.request)  # DRF's wrapper or a Django request
            # DRF's links start from build_absolute_uri(): the escaped path, on the request's scheme and host.
            base = request.build_absolute_uri(escape_uri_path(request.path))
            key = self.page_query_param
            query = request.GET
            names = sorted(name for name in query if name != key)
            before = parse.urlencode([(k, query.getlist(k)) for k in names if k < key], doseq=True)
            after = parse.urlencode([(k, query.getlist(k)) for k in names if k > key], doseq=True)
            parts = self._link_parts = (base, before, after, parse.quote_plus(key))
        base, before, after, key = parts
        pieces = [before] if before else []
        if page_number != 1:
            pieces.append(f"{key}={page_number}")
        if after:
            pieces.append(after)
        return f"{base}?{'&'.join(pieces)}" if pieces else base


class _QueryOf:
    """What the paginator reads of DRF's request, for a Django request."""

    __slots__ = ("_request", "query_params")

    def __init__(self, request: HttpRequest):
        self._request = request
        self.query_params = request.GET

    def build_absolute_uri(self, location=None) -> str:
        return self._request.build_absolute_uri(location)
