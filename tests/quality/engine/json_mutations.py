"""Seeded byte-level mutations of a JSON document, for the compiled readers' fuzz tests."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

ALPHABET = b' {}[]:,"\\0123456789.-eE+tfnulx'


def mutations(base: bytes, seed: int, count: int) -> Iterator[bytes]:
    """``count`` copies of ``base``, each with 1-3 bytes replaced, deleted or inserted."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(data)))
            op = int(rng.integers(0, 3))
            if op == 0:
                data[i] = ALPHABET[int(rng.integers(0, len(ALPHABET)))]
            elif op == 1:
                del data[i]
            else:
                data.insert(i, ALPHABET[int(rng.integers(0, len(ALPHABET)))])
        yield bytes(data)
