"""Coverage-guided fuzzing of the engine's C kernels under AddressSanitizer and
UndefinedBehaviorSanitizer (``make fuzz-native``; CI runs it after the tests).

    python tests/fuzz/run.py [--seconds 30] [--targets results_reader,rasterize] [--keep DIR]

Builds the kernels (the C sources of quality/engine/_native, with the package build's
language flags) with clang, ``-fsanitize=address,undefined,fuzzer-no-link`` and
``-fno-sanitize-recover=undefined``, into a temporary directory, then runs each target of tests/fuzz/targets.py for ``--seconds`` under
atheris (libFuzzer) with the sanitizer runtime preloaded, starting from the committed seeds
in tests/fuzz/corpus/<target>/ (what it discovers goes to a scratch directory, or ``--keep``).

A crash, a sanitizer report, an assertion of a target or a hang fails the run; libFuzzer
writes the input to ``<artifacts>/<target>-crash-...``, and it becomes a regression case by
committing it to tests/fuzz/corpus/<target>/ (tests/fuzz/test_corpus.py replays every corpus
file against the normal build in every test run).

Needs clang with its sanitizer and libFuzzer runtimes (Debian: clang, libclang-rt-dev or
libclang-rt-14-dev; .ci/run installs them) and atheris (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from quality.engine._native import sources  # noqa: E402
from tests.fuzz.targets import TARGETS  # noqa: E402

# setup.py's flags that change what the code computes (no FP contraction, C11, threads)
LANGUAGE = ["-std=c11", "-pthread", "-ffp-contract=off", "-fno-strict-aliasing", "-fPIC", "-shared", "-Wall", "-Wextra", "-Wno-unused-parameter"]
SANITIZE = ["-fsanitize=address,undefined,fuzzer-no-link", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer", "-g", "-O1"]
ENV = {
    # Python is not instrumented: its allocations are not leaks to report; a kernel whose
    # malloc fails must say so (MemoryError), not abort
    "ASAN_OPTIONS": "detect_leaks=0:allocator_may_return_null=1:handle_abort=1:symbolize=1",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
}


def find_clang() -> str:
    for name in ["clang", *(f"clang-{v}" for v in range(22, 13, -1))]:
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("fuzz-native: no clang found (Debian: apt-get install clang libclang-rt-dev)")


def build_sanitized(out_dir: Path) -> Path:
    """The kernels built with the sanitizers, importable from ``out_dir``."""
    clang = find_clang()
    out = out_dir / ("_kernels" + sysconfig.get_config_var("EXT_SUFFIX"))
    stamp = f'-DNATIVE_SOURCE_SHA256="{sources.source_sha256()}"'
    cmd = [clang, *LANGUAGE, *SANITIZE, stamp, f"-I{sysconfig.get_paths()['include']}", *map(str, sources.c_sources()), "-o", str(out), "-lm"]
    subprocess.run(cmd, check=True)
    return out


def sanitizer_runtime() -> str:
    import atheris

    path = Path(atheris.path()) / "asan_with_fuzzer.so"
    if not path.exists():
        raise SystemExit(f"fuzz-native: {path} missing (atheris from requirements-dev.txt)")
    return str(path)


def run_target(name: str, library: Path, seconds: int, scratch: Path, artifacts: Path) -> tuple[bool, str]:
    corpus = HERE / "corpus" / name
    new = scratch / name
    new.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, str(HERE / "harness.py"), name, str(library),
        f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=4096", "-max_len=16384", "-print_final_stats=1",
        f"-dict={HERE / 'json.dict'}", f"-artifact_prefix={artifacts}/{name}-", str(new), str(corpus),
    ]
    env = {**os.environ, **ENV, "LD_PRELOAD": sanitizer_runtime(), "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 300)
    log = proc.stdout + proc.stderr
    runs = re.findall(r"Done (\d+) runs", log)
    cov = re.findall(r"cov: (\d+)", log)
    summary = f"{name}: {runs[-1] if runs else '?'} runs in {time.monotonic() - t0:.0f}s, coverage {cov[-1] if cov else '?'} edges"
    if proc.returncode != 0:
        crash = sorted(artifacts.glob(f"{name}-*"))
        tail = "\n".join(log.splitlines()[-60:])
        return False, f"{summary}: FAILED (exit {proc.returncode})\n{tail}\ninput: {', '.join(map(str, crash)) or 'none written'}"
    return True, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "30")), help="per target")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--keep", help="keep what the fuzzer finds (new corpus units, crash inputs) in this directory")
    args = ap.parse_args(argv)
    names = [t for t in args.targets.split(",") if t]
    unknown = set(names) - set(TARGETS)
    if unknown:
        raise SystemExit(f"unknown targets: {sorted(unknown)}")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fuzz-native-"))
    work.mkdir(parents=True, exist_ok=True)
    artifacts = work / "artifacts"
    artifacts.mkdir(exist_ok=True)
    library = build_sanitized(work)
    ok = True
    for name in names:
        passed, report = run_target(name, library, args.seconds, work / "found", artifacts)
        print(report, flush=True)
        ok &= passed
    if not ok:
        print(f"fuzz-native: a target failed; commit its input from {artifacts} to tests/fuzz/corpus/<target>/ as a regression case")
    elif not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
