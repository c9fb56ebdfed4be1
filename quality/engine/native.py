"""The compiled kernels (``quality/engine/_native``), when built and not switched off.

Every kernel has a numpy/pycocotools twin in the Python code with identical results; the
compiled one is the fast path. :func:`kernels` returns the module or None: None when the
library was not built (no compiler), was built from other sources (ABI mismatch), or
``QUALITY_NATIVE=0`` is set. Tests run both paths: :func:`disabled` turns the fast path off
for a block.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

ABI = 1  # must equal NATIVE_ABI in _native/native.h

_UNSET = object()
_cached: object = _UNSET
_forced_off = 0


def _load() -> ModuleType | None:
    if os.environ.get("QUALITY_NATIVE", "1") == "0":
        return None
    try:
        from quality.engine._native import _kernels
    except ImportError:
        return None
    return _kernels if getattr(_kernels, "ABI", None) == ABI else None


def kernels() -> ModuleType | None:
    """The compiled module, or None (use the Python path)."""
    global _cached
    if _forced_off:
        return None
    if _cached is _UNSET:
        _cached = _load()
    return _cached  # type: ignore[return-value]


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
