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

import orjson
from rest_framework.renderers import JSONRenderer

_DRF_DEFAULT = JSONRenderer.encoder_class().default
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_DIGITS = frozenset(b"0123456789")


def _small_float_written(out: bytes) -> bool:
    """Whether ``out`` may hold a number below 1e-4 that orjson wrote otherwise than the
    standard library: as 0.0000... or with a one-digit negative exponent ("e-6" against
    "e-06"). Text in strings that looks alike only costs the slower path. Byte searches,
    not a regular expression: this runs over every response."""
    if b"0.0000" in out:
        return True
    at = out.find(b"e-")
    while at != -1:
        if at and out[at - 1] in _DIGITS and at + 2 < len(out) and out[at + 2] in _DIGITS and (at + 3 == len(out) or out[at + 3] not in _DIGITS):
            return True
        at = out.find(b"e-", at + 2)
    return False


def drf_json(data) -> bytes:
    """``data`` as DRF's compact, UTF-8 ``JSONRenderer`` writes it (the settings' default),
    mostly by orjson. JSON's values compose, so pieces written by this function spliced
    into an object or array are the bytes DRF writes for the whole."""
    try:
        out = orjson.dumps(data, default=_DRF_DEFAULT, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return _DRF_COMPACT.render(data)
    if _small_float_written(out):
        return _DRF_COMPACT.render(data)
    if b"\xe2\x80" in out:  # the lead bytes of U+2028 and U+2029 (and of other punctuation)
        out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
    return out


class _CompactJSONRenderer(JSONRenderer):
    """DRF's renderer as the default settings configure it (UTF-8, compact), whatever the settings say."""

    ensure_ascii = False
    compact = True


_DRF_COMPACT = _CompactJSONRenderer()


class FastJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        return drf_json(data)
