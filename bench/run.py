"""Run the project's benchmarks: ``python bench/run.py [--only NAME] [--quick] ...``.

Benchmarks are scripts listed in BENCHES (the COCO engine's first); other ``bench/*_bench.py``
scripts are found and run after them. Extra arguments go to every script.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES: list[tuple[str, str]] = [("coco", "coco_bench.py")]


def discover() -> list[tuple[str, str]]:
    known = {script for _, script in BENCHES}
    found = [(p.stem.removesuffix("_bench"), p.name) for p in sorted(HERE.glob("*_bench.py")) if p.name not in known]
    return BENCHES + found


def main() -> int:
    ap = argparse.ArgumentParser(description="run benchmarks")
    ap.add_argument("--only", help="run only this benchmark (e.g. coco)")
    args, rest = ap.parse_known_args()
    benches = discover()
    if args.only:
        benches = [b for b in benches if b[0] == args.only]
        if not benches:
            print(f"no benchmark named {args.only!r}; have: {', '.join(n for n, _ in discover())}", file=sys.stderr)
            return 2
    rc = 0
    for name, script in benches:
        print(f"== {name} ({script})", flush=True)
        rc |= subprocess.call([sys.executable, str(HERE / script), *rest], cwd=HERE.parent)
    return rc


if __name__ == "__main__":
    sys.exit(main())
