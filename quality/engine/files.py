"""Files named by a JSON, found in a folder without joining the name onto it.

The command line reads PNGs and images from a folder by the ``file_name`` an annotation
file gives. Joining that text onto the folder would let ``../../x.png`` or an absolute name
open any file; instead the folder is listed once and a name is a key of that listing
(its path relative to the folder, ``/`` between parts), so only a regular file inside the
folder, reached without a symbolic link, can ever be opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path


class FolderIndex(Mapping[str, Path]):
    """The regular files under ``folder`` by their relative POSIX path."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.root = Path(folder).resolve()
        self._files: dict[str, Path] = {}
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            base = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not (base / d).is_symlink()]
            for name in filenames:
                path = base / name
                if path.is_symlink() or not path.is_file():
                    continue
                self._files[path.relative_to(self.root).as_posix()] = path

    def __getitem__(self, name: str) -> Path:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)
