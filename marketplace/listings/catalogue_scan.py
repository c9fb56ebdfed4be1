"""The catalogue index's compiled search pass (``marketplace/listings/_native``), when built and not switched off.

One pass over the index's columns evaluates a search's filters and counts its disjunctive
facets (see ``_native/catalogue_scan.c``); the numpy evaluation in catalogue_index.py is the
reference, gives the same results and runs when this is off. :func:`kernel` returns the
module or None: None when the library was not built (no compiler when the package was
installed), was built for another interface or from other sources than those beside it (a
C file changed since the last ``pip install``: ``make native``), or ``QUALITY_NATIVE=0`` is
set. The switch is the quality engine's (one switch for every compiled kernel of the
package): ``QUALITY_NATIVE=required`` (the Docker images set it) turns "off" into an error.
:func:`disabled` turns it off for a block (parity tests, benchmarks).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from quality.engine._native.sources import source_sha256

ABI = 1  # must equal SCAN_ABI in _native/catalogue_scan.c
SOURCES = Path(__file__).resolve().parent / "_native"

_UNSET = object()
_cached: object = _UNSET
_reason = ""
_forced_off = 0


class ScanUnavailable(RuntimeError):
    """The compiled kernels are required (QUALITY_NATIVE=required) but the catalogue scan cannot be used."""


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("QUALITY_NATIVE", "1") == "0":
        return None, "off: QUALITY_NATIVE=0"
    try:
        from marketplace.listings._native import _catalogue_scan
    except ImportError as exc:  # the optional extension: absent where no compiler was found at install time
        return None, f"off: the catalogue scan is not built ({exc}); install the package with a C compiler (make native)"
    if getattr(_catalogue_scan, "ABI", None) != ABI:
        return (
            None,
            f"off: {_catalogue_scan.__file__} has ABI {getattr(_catalogue_scan, 'ABI', None)}, this code needs {ABI}; rebuild (make native)",
        )
    if getattr(_catalogue_scan, "SOURCE_SHA256", None) != source_sha256(SOURCES):
        return None, f"off: {_catalogue_scan.__file__} was built from other sources than those beside it; rebuild (make native)"
    return _catalogue_scan, f"on: {_catalogue_scan.__file__}"


def kernel() -> ModuleType | None:
    """The compiled module, or None (the numpy path). Raises ScanUnavailable instead of
    returning None when QUALITY_NATIVE=required."""
    global _cached, _reason
    if _forced_off:
        return None
    if _cached is _UNSET:
        _cached, _reason = _load()
    if _cached is None and os.environ.get("QUALITY_NATIVE") == "required":
        raise ScanUnavailable(f"QUALITY_NATIVE=required but the catalogue scan is {_reason}")
    return _cached  # type: ignore[return-value]


def status() -> str:
    """One line: "on: <library>" or "off: <why>" (ignores :func:`disabled`)."""
    global _cached, _reason
    if _cached is _UNSET:
        _cached, _reason = _load()
    return _reason


@contextmanager
def disabled() -> Iterator[None]:
    """Run a block on the numpy path."""
    global _forced_off
    _forced_off += 1
    try:
        yield
    finally:
        _forced_off -= 1
