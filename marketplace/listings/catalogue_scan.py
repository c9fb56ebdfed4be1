"""The catalogue index's compiled search pass (``marketplace/listings/_native``), when built and not switched off.

One pass over the index's columns evaluates a search's filters and counts its disjunctive
facets (see ``_native/catalogue_scan.c``); the numpy evaluation in catalogue_index.py is the
reference, gives the same results and runs when this is off. :func:`kernel` returns the
module or None: None when the library was not built (no compiler when the package was
installed), was built for another interface or from other sources than those beside it (a
C file changed since the last ``pip install``: ``make native``), or ``QUALITY_NATIVE=0`` is
set. The switch and these checks are the quality engine's loader's
(``quality/engine/_native/sources.py``, one switch for every compiled kernel of the
package): ``QUALITY_NATIVE=required`` (the Docker images set it) turns "off" into an error.
:func:`disabled` turns it off for a block (parity tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from quality.engine._native.sources import FingerprintedExtension

ABI = 3  # must equal SCAN_ABI in _native/catalogue_scan.c
SOURCES = Path(__file__).resolve().parent / "_native"


class ScanUnavailable(RuntimeError):
    """The compiled kernels are required (QUALITY_NATIVE=required) but the catalogue scan cannot be used."""


def _import_scan() -> ModuleType:
    from marketplace.listings._native import _catalogue_scan

    return _catalogue_scan


SCAN = FingerprintedExtension(_import_scan, ABI, SOURCES, what="the catalogue scan is", unavailable_error=ScanUnavailable)


def kernel() -> ModuleType | None:
    """The compiled module, or None (the numpy path). Raises ScanUnavailable instead of
    returning None when QUALITY_NATIVE=required."""
    return SCAN.module()


def status() -> str:
    """One line: "on: <library>" or "off: <why>" (ignores :func:`disabled`)."""
    return SCAN.status()


@contextmanager
def disabled() -> Iterator[None]:
    """Run a block on the numpy path."""
    with SCAN.disabled():
        yield
