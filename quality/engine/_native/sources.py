"""The C sources of the package's compiled extensions, their fingerprint, and the loader
that checks it (standard library only: ``setup.py`` runs this file before anything is installed).

The build (``setup.py``) compiles every ``*.c`` of an extension's folder and stamps the
library with :func:`source_sha256` of the ``*.c`` and ``*.h`` files it was built from (and
the interface number, ``ABI``, its C code declares). :class:`FingerprintedExtension` loads
the library only when both equal what the Python code beside it expects, so a library left
over from other sources or another interface is never used. The engine's kernels
(``native.py``) and the catalogue scan (``marketplace/listings/catalogue_scan.py``) share it,
and with it one switch, ``QUALITY_NATIVE``: ``0`` turns every compiled extension off,
``required`` (the Docker images set it) turns "off" into an error, because a deployment built
to run them must not quietly run ten times slower when a library is missing or stale.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def c_sources(directory: Path = HERE) -> list[Path]:
    """The translation units, in a stable order."""
    return sorted(directory.glob("*.c"))


def headers(directory: Path = HERE) -> list[Path]:
    return sorted(directory.glob("*.h"))


def source_sha256(directory: Path = HERE) -> str:
    """SHA-256 over the names and bytes of every ``*.c`` and ``*.h`` file in ``directory``."""
    digest = hashlib.sha256()
    for path in sorted(c_sources(directory) + headers(directory), key=lambda p: p.name):
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


class FingerprintedExtension:
    """One compiled extension, used only when built from the sources in ``sources_dir`` for
    interface ``abi``; otherwise the caller runs its Python twin (same results, slower).

    ``import_library`` imports and returns the library (ImportError when it is not built);
    the caller's own import, so that the engine never names another app's module.

    ``what`` names it with its verb, as the reasons read it (``"the kernels are"``: "off: the
    kernels are not built ...", "QUALITY_NATIVE=required but the kernels are off: ...");
    ``unavailable_error`` is raised by :meth:`module` under ``QUALITY_NATIVE=required``.
    The first :meth:`module` or :meth:`status` imports and checks the library once per process.
    """

    def __init__(
        self, import_library: Callable[[], ModuleType], abi: int, sources_dir: Path, what: str, unavailable_error: type[Exception]
    ) -> None:
        self.import_library = import_library
        self.abi = abi
        self.sources_dir = Path(sources_dir)
        self.what = what
        self.unavailable_error = unavailable_error
        self._loaded: tuple[ModuleType | None, str] | None = None
        self._forced_off = 0

    def _load(self) -> tuple[ModuleType | None, str]:
        if os.environ.get("QUALITY_NATIVE", "1") == "0":
            return None, "off: QUALITY_NATIVE=0"
        try:
            library = self.import_library()
        except ImportError as exc:  # the optional extension: absent where no compiler was found at install time
            return None, f"off: {self.what} not built ({exc}); install the package with a C compiler (make native)"
        built_abi = getattr(library, "ABI", None)
        if built_abi != self.abi:
            return None, f"off: {library.__file__} has ABI {built_abi}, this code needs {self.abi}; rebuild (make native)"
        if getattr(library, "SOURCE_SHA256", None) != source_sha256(self.sources_dir):
            return None, f"off: {library.__file__} was built from other sources than those beside it; rebuild (make native)"
        return library, f"on: {library.__file__}"

    def module(self) -> ModuleType | None:
        """The compiled module, or None (run the Python path). Raises ``unavailable_error``
        instead of returning None when QUALITY_NATIVE=required; inside :meth:`disabled`, None."""
        if self._forced_off:
            return None
        library, reason = self._result()
        if library is None and os.environ.get("QUALITY_NATIVE") == "required":
            raise self.unavailable_error(f"QUALITY_NATIVE=required but {self.what} {reason}")
        return library

    def status(self) -> str:
        """One line: "on: <library>" or "off: <why>" (ignores :meth:`disabled`)."""
        return self._result()[1]

    def _result(self) -> tuple[ModuleType | None, str]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Run a block on the Python path (parity tests, benchmarks), even under QUALITY_NATIVE=required."""
        self._forced_off += 1
        try:
            yield
        finally:
            self._forced_off -= 1
