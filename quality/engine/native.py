"""The compiled kernels (``quality/engine/_native``), when built and not switched off.

Every kernel has a numpy/pycocotools twin in the Python code with identical results; the
compiled one is the fast path. :func:`kernels` returns the module or None: None when the
library was not built (no compiler when the package was installed), was built for another
interface (ABI) or from other sources than those beside it (a C file changed since the
last ``pip install``), or ``QUALITY_NATIVE=0`` is set; :func:`status` says which. Tests run
both paths: :func:`disabled` turns the fast path off for a block. The checks and the switch
are those of every compiled extension of the package (``_native/sources.py``).

``QUALITY_NATIVE=required`` (the Docker images set it) turns "off" into an error: a
deployment that was built to run the kernels must not quietly run ten times slower because
the library is missing or stale. :func:`disabled` still works there (tests, benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from quality.engine._native import sources

ABI = 2  # must equal NATIVE_ABI in _native/native.h


class KernelsUnavailable(RuntimeError):
    """The kernels are required (QUALITY_NATIVE=required) but cannot be used."""


def _import_kernels() -> ModuleType:
    from quality.engine._native import _kernels

    return _kernels


KERNELS = sources.FingerprintedExtension(_import_kernels, ABI, sources.HERE, what="the kernels are", unavailable_error=KernelsUnavailable)


def kernels() -> ModuleType | None:
    """The compiled module, or None (use the Python path). Raises KernelsUnavailable
    instead of returning None when QUALITY_NATIVE=required."""
    return KERNELS.module()


def status() -> str:
    """One line: "on: <library>" or "off: <why>" (ignores :func:`disabled`)."""
    return KERNELS.status()


def available() -> bool:
    return kernels() is not None


@contextmanager
def disabled() -> Iterator[None]:
    """Run a block on the Python path (for parity tests and benchmarks)."""
    with KERNELS.disabled():
        yield
