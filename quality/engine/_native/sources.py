"""The C sources of the engine's kernels and their fingerprint (standard library only).

The build (``setup.py``) compiles every ``*.c`` here and stamps the library with
:func:`source_sha256` of the ``*.c`` and ``*.h`` files it was built from; ``native.py``
loads the library only when that stamp equals the fingerprint of the sources beside it,
so a library left over from other sources is never used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

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
