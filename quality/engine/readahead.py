"""The compiled readers started on a file before the evaluation asks for it.

A cold ``python -m quality evaluate`` spends a good part of its life importing numpy, which
holds the interpreter's lock; the compiled readers (``parse_coco``, ``parse_results``) do not
need numpy and release that lock. :func:`start` runs a reader on a file in a thread at once,
so on a machine with a second core the file is read while numpy imports; the evaluation's
own read (``cache._load_reference_native``, ``cocoeval._parse_results_native``) then
:func:`take`\\ s that read instead of reading the file again. A file nobody started is read
where it is asked for, as before. Nothing here imports numpy.

What a reader returns is the same object as when called in place (the mapped bytes and the
reader's dict, or None when it declines); an error opening the file leaves the evaluation's
own read to raise it.
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Any

from quality.engine import native

# the readers by the name the callers use, each given the file's bytes
_READERS = {"coco": "parse_coco", "results": "parse_results"}


class _Read(threading.Thread):
    def __init__(self, kind: str, path: str) -> None:
        super().__init__(name=f"read {kind}", daemon=True)
        self.kind, self.path = kind, path
        self.out: tuple[Any, Any] | None = None

    def run(self) -> None:
        kernels = native.kernels()
        if kernels is None:
            return
        data = map_file(self.path)
        if data is None:
            return
        self.out = (data, getattr(kernels, _READERS[self.kind])(data))


_started: dict[tuple[str, str], _Read] = {}


def map_file(path: str | os.PathLike) -> mmap.mmap | bytes | None:
    """The file's bytes, mapped (not read: memory does not hold a second copy), or None when
    it cannot be opened (the caller's own path raises the error)."""
    try:
        with open(path, "rb") as f:
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if os.fstat(f.fileno()).st_size else b""
    except (OSError, ValueError):
        return None


def start(kind: str, path: str | os.PathLike) -> None:
    """Run reader ``kind`` ("coco" or "results") on ``path`` in a thread (once per file)."""
    key = (kind, os.fspath(path))
    if key in _started or native.kernels() is None:
        return
    t = _Read(kind, key[1])
    _started[key] = t
    t.start()


def take(kind: str, path: Any) -> tuple[Any, Any] | None:
    """The started read of ``path`` as (bytes, reader's result), waiting for it to finish;
    None when none was started (or it could not open the file). A read is taken once."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    t = _started.pop((kind, os.fspath(path)), None)
    if t is None:
        return None
    t.join()
    return t.out
