from django.conf import settings
from rest_framework.pagination import PageNumberPagination


class CappedPageNumberPagination(PageNumberPagination):
    """Page-number pagination whose ``page_size`` query parameter is capped (API4)."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # read at request time so tests can override settings
        return settings.PAGE_SIZE_MAX
