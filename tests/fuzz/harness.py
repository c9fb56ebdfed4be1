"""One fuzz target under atheris (libFuzzer), against a kernels library given by path.

    python tests/fuzz/harness.py TARGET KERNELS_SO [libFuzzer flags] [CORPUS_DIR ...]

Run by tests/fuzz/run.py, which builds the library with AddressSanitizer and
UndefinedBehaviorSanitizer and preloads their runtime."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fuzz.targets import TARGETS  # noqa: E402


def main() -> None:
    target, library = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("_kernels", library)
    kernels = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kernels)
    # the engine's own calls made by a target (the scene figures, the gate) reach the
    # sanitized build too, not the normal one
    from quality.engine import native

    native.KERNELS._loaded = (kernels, f"on: {library}")
    fn = TARGETS[target]
    atheris.Setup([sys.argv[0], *sys.argv[3:]], lambda data: fn(kernels, data))
    atheris.Fuzz()


if __name__ == "__main__":
    main()
