"""The compiled kernels (``quality/engine/_native``), when built and not switched off.

Every kernel has a numpy/pycocotools twin in the Python code with identical results; the
compiled one is the fast path. :func:`kernels` returns the module or None: None when the
library was not built (no compiler when the package was installed), was built for another
interface (ABI) or from other sources than those beside it (a C file changed since the
last ``pip install``), or ``QUALITY_NATIVE=0`` is set; :func:`status` says which. Tests run
both paths: :func:`disabled` turns the fast path off for a block.

``QUALITY_NATIVE=required`` (the Docker images set it) turns "off" into an error: a
deployment that was built to run the kernels must not quietly run ten times slower because
the library is missing or stale. :func:`disabled` still works there (tests, benchmarks).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from quality.engine._native.sources import source_sha256

ABI = 2  # must equal NATIVE_ABI in _native/native.h

_UNSET = object()
_cached: object = _UNSET
_reason = ""
_forced_off = 0


class KernelsUnavailable(RuntimeError):
    """The kernels are required (QUALITY_NATIVE=required) but cannot be used."""


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("QUALITY_NATIVE", "1") == "0":
        return None, "off: QUALITY_NATIVE=0"
    try:
        from quality.engine._native import _kernels
    except ImportError as exc:  # the optional extension: absent where no compiler was found at install time
        return None, f"off: the kernels are not built ({exc}); install the package with a C compiler (make native)"
    if getattr(_kernels, "ABI", None) != ABI:
        return None, f"off: {_kernels.__file__} has ABI {getattr(_kernels, 'ABI', None)}, this code needs {ABI}; rebuild (make native)"
    if getattr(_kernels, "SOURCE_SHA256", None) != source_sha256():
        return None, f"off: {_kernels.__file__} was built from other sources than those beside it; rebuild (make native)"
    return _kernels, f"on: {_kernels.__file__}"


def kernels() -> ModuleType | None:
    """The compiled module, or None (use the Python path). Raises KernelsUnavailable
    instead of returning None when QUALITY_NATIVE=required."""
    global _cached, _reason
    if _forced_off:
        return None
    if _cached is _UNSET:
        _cached, _reason = _load()
    if _cached is None and os.environ.get("QUALITY_NATIVE") == "required":
        raise KernelsUnavailable(f"QUALITY_NATIVE=required but the kernels are {_reason}")
    return _cached  # type: ignore[return-value]


def status() -> str:
    """One line: "on: <library>" or "off: <why>" (ignores :func:`disabled`)."""
    global _cached, _reason
    if _cached is _UNSET:
        _cached, _reason = _load()
    return _reason


def available() -> bool:
    return kernels() is not None


@contextmanager
def disabled() -> Iterator[None]:
    """Run a block on the Python path (for parity tests and benchmarks)."""
    global _forced_off
    _forced_off += 1
    try:
        yield
    finally:
        _forced_off -= 1
