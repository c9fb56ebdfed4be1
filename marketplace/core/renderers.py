"""The API's JSON renderer: DRF's bytes, written by orjson.

DRF's ``JSONRenderer`` runs the standard library's pure-Python encoder path (a custom
encoder class), a large share of a search response's time. ``FastJSONRenderer`` writes the
same bytes with orjson: compact separators, UTF-8 unescaped, U+2028/U+2029 escaped as DRF
does, and every type orjson has no exact equivalent for (dates and times, Decimal, lazy
strings, querysets, anything with ``tolist``...) handed to DRF's own encoder's ``default``.

Where orjson's bytes could differ from DRF's, DRF's renderer writes the response instead:
an indented response (``; indent=N``), integers beyond 64 bits or non-string keys (orjson
refuses them), and floats below 1e-4 in magnitude, which the standard library writes with
an exponent (``1e-05``) and orjson without (``0.00001``) or with a shorter one
(``1e-5``); every other finite float is
written alike (the shortest repr that reads back). Unlike DRF's strict mode, orjson writes
NaN and infinities as ``null`` instead of failing the response.
"""

from __future__ import annotations

import re

import orjson
from rest_framework.renderers import JSONRenderer

_DRF_DEFAULT = JSONRenderer.encoder_class().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
# Where orjson and the standard library disagree: a number below 1e-4 written as 0.0000...
# (a JSON value starts the document or follows ':', ',' or '[') or with a one-digit
# negative exponent ("e-6" against "e-06"). A string holding such text only costs the
# slower path.
_SMALL_FLOAT = re.compile(rb"(?:^|[:,\[])-?0\.0000|\de-\d(?!\d)")


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_DRF_DEFAULT, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if _SMALL_FLOAT.search(out):
            return super().render(data, accepted_media_type, renderer_context)
        return out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
