"""The compiled part of the package: the quality engine's C kernels and the catalogue scan.

Metadata, packages and package data are declared in ``pyproject.toml``; this file adds the
extensions ``quality.engine._native._kernels`` and ``marketplace.listings._native._catalogue_scan``
(the catalogue index's search pass), which setuptools cannot express there with a build
step that may fail. ``pip install .`` / ``pip install -e .`` compile it with the
interpreter's compiler. A failed compile is a warning (the engine then runs its
numpy/pycocotools path, the catalogue index its numpy path: same results, slower), except with ``CI=true``, where it fails the
install. ``-ffp-contract=off`` keeps every floating-point operation as written (no fused
multiply-add), as pycocotools' own builds compute them: the figures are bit-identical.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Path("quality", "engine", "_native")
SCAN = Path("marketplace", "listings", "_native")
# The fingerprint code ships with the package (native.py checks it at load time); it is
# loaded by path here because the package's own dependencies are not installed at build time.
_sources = runpy.run_path(str(NATIVE / "sources.py"))

# Added after the interpreter's own extension flags (sysconfig's CFLAGS), so these win
# where they overlap (-O2 over -O3).
CFLAGS = [
    "-O2",
    "-std=c11",
    "-pthread",  # the string checks split large inputs over threads
    "-ffp-contract=off",
    "-fno-strict-aliasing",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wno-missing-field-initializers",
]


# Per extension: what it is, and what runs without it.
WITHOUT = {
    "quality.engine._native._kernels": ("the quality engine's C kernels", "the engine runs its Python path"),
    "marketplace.listings._native._catalogue_scan": ("the catalogue scan's C kernels", "search runs its numpy path"),
}


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


class OptionalBuildExt(build_ext):
    """Builds the kernels when it can; see the module docstring for when a failure is fatal."""

    def initialize_options(self) -> None:
        super().initialize_options()
        self.failed: list[str] = []

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # no compiler, no Python.h, a compile error: distutils and OS errors alike
            what, fallback = WITHOUT[ext.name]
            if _ci():
                raise SystemExit(f"error: {what} did not build ({exc}); CI=true requires them") from exc
            self.failed.append(ext.name)
            print(f"warning: {what} were not built ({exc}); {fallback}: same results, slower", file=sys.stderr)

    def copy_extensions_to_source(self) -> None:
        if not self.failed:  # a library left from an earlier build stays; native.py refuses it if stale
            super().copy_extensions_to_source()

    def copy_file(self, infile, outfile, *args, **kwargs):
        """Replace an in-place library atomically: a process that has the old one mapped keeps
        it intact, and a concurrent import never sees half a file."""
        tmp = f"{outfile}.{os.getpid()}.tmp"
        result = super().copy_file(infile, tmp, *args, **kwargs)
        os.replace(tmp, outfile)
        return result


kernels = Extension(
    "quality.engine._native._kernels",
    sources=[str(p) for p in _sources["c_sources"](NATIVE)],
    depends=[str(p) for p in _sources["headers"](NATIVE)],
    define_macros=[("NATIVE_SOURCE_SHA256", f'"{_sources["source_sha256"](NATIVE)}"')],
    extra_compile_args=CFLAGS,
    extra_link_args=["-pthread"],
    libraries=["m"],
)

# The catalogue scan compares and counts integers and doubles (no arithmetic on them):
# -O3 lets the compiler vectorize its per-filter loops.
catalogue_scan = Extension(
    "marketplace.listings._native._catalogue_scan",
    sources=[str(p) for p in _sources["c_sources"](SCAN)],
    depends=[str(p) for p in _sources["headers"](SCAN)],
    define_macros=[("SCAN_SOURCE_SHA256", f'"{_sources["source_sha256"](SCAN)}"')],
    extra_compile_args=[*CFLAGS, "-O3"],
    extra_link_args=["-pthread"],
)

setup(ext_modules=[kernels, catalogue_scan], cmdclass={"build_ext": OptionalBuildExt})
