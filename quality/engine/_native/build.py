"""Build the engine's C kernels in place: ``python -m quality.engine._native.build``.

A plain compiler call (no setuptools): ``cc`` with the interpreter's own include path and
extension suffix, so the result imports as ``quality.engine._native._kernels``. Skips the
build when the library is newer than every source. ``-ffp-contract=off`` keeps the
floating-point operations exactly as written (no fused multiply-add), as pycocotools'
wheels compute them; ``native.py`` refuses a library built from other sources (ABI).

The make targets (``make install``/``make test``/``make run``/``make bench``) and the
Dockerfile run this; without a compiler the engine falls back to its numpy/pycocotools
path, with identical results and lower speed.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ["module.c", "rle.c", "evalcore.c", "coco_gt.c"]
HEADERS = ["native.h", "rle_core.h"]
CFLAGS = ["-O2", "-std=c11", "-fPIC", "-shared", "-ffp-contract=off", "-fno-strict-aliasing", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


def target() -> Path:
    return HERE / ("_kernels" + sysconfig.get_config_var("EXT_SUFFIX"))


def up_to_date() -> bool:
    out = target()
    if not out.exists():
        return False
    newest = max((HERE / f).stat().st_mtime for f in SOURCES + HEADERS + ["build.py"])
    return out.stat().st_mtime >= newest


def build(force: bool = False, quiet: bool = False) -> Path:
    out = target()
    if not force and up_to_date():
        return out
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    include = sysconfig.get_paths()["include"]
    tmp = out.with_suffix(out.suffix + f".{os.getpid()}.tmp")
    cmd = [*shlex.split(cc)[:1], *CFLAGS, f"-I{include}", *(str(HERE / s) for s in SOURCES), "-o", str(tmp), "-lm"]
    if not quiet:
        print("building", out.name, flush=True)
    subprocess.run(cmd, check=True)
    os.replace(tmp, out)  # atomic: a concurrent import never sees half a library
    return out


def main(argv: list[str]) -> int:
    """``--optional``: a failed build is a warning (the engine then runs its Python path),
    except under CI=true, where the kernels must exist."""
    try:
        build(force="--force" in argv)
    except (OSError, subprocess.CalledProcessError) as exc:
        if "--optional" in argv and os.environ.get("CI", "").lower() != "true":
            print(f"warning: the engine's C kernels were not built ({exc}); it runs its Python path: same results, slower", file=sys.stderr)
            return 0
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
