"""COCO evaluation benchmark: this engine (cold from JSON, warm from the reference cache)
against pycocotools, faster-coco-eval, hotcoco, ultrafast-pycocotools and vernier (strict mode).

Each engine runs as its own process from the JSON files to the 12 stats; the table shows
wall seconds (process start to exit) and peak RSS (``os.wait4``), with ratios against
pycocotools and hotcoco. It checks that every engine's stats equal pycocotools' and that
this engine's and vernier's precision/recall/scores arrays equal pycocotools' element for
element (a difference in vernier's is printed, and fails only this engine's rows).

    python bench/coco_bench.py            # audit (5k images) + model (1k images)
    python bench/coco_bench.py --quick    # small sizes, about a minute
    python bench/coco_bench.py --train-scale   # adds 118k images / 860k masks (slow)
    python bench/coco_bench.py --repeat 5      # each engine 5 times (default 3; train scale once)

Engines run in rounds (every engine once, then again), so that the runs of two engines
that are compared lie close in time on a shared machine: the table shows each engine's
median seconds and largest peak, and the targets compare ours with hotcoco round by round
(the median of the per-round ratios, with their range). The load average (1 minute) is
printed with each workload: on a loaded machine wall-clock ratios move from run to run.

Data is generated (seeded) under bench/out/ and reused. The engine is the installed
``quality`` package (``pip install .`` or ``-e .``; ``make bench`` installs it): its
processes run outside the checkout, and the first line says which copy ran and whether
its C kernels were on.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import synth

import quality
from quality.engine import native

OUT = Path(__file__).resolve().parent / "out"
ENGINE_DIR = Path(quality.__file__).resolve().parent

PEERS = ["pycocotools", "faster-coco-eval", "ultrafast-pycocotools", "hotcoco", "vernier"]
OURS = ["ours-cold", "ours-warm"]
# Engines whose precision/recall/scores arrays are written and compared with pycocotools'
# (ours, and vernier, which claims bit-exact parity in its strict mode).
ARRAYS_FROM = {"pycocotools", "vernier"}


def workloads(quick: bool, train_scale: bool) -> list[tuple[str, str, int]]:
    if quick:
        wl = [("audit", "audit", 500), ("model", "model", 100)]
    else:
        wl = [("audit", "audit", 5000), ("model", "model", 1000)]
    if train_scale:
        wl.append(("train-scale", "model_train", 118_000))
    return wl


def ensure_data(kind: str, n: int) -> tuple[Path, Path]:
    import orjson

    d = OUT / f"{kind}_{n}"
    gt, dt = d / "gt.json", d / "dt.json"
    if gt.exists() and dt.exists():
        return gt, dt
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if kind == "audit":
        g, r = synth.audit(n, seed=0)
    elif kind == "model":
        g, r = synth.model(n, seed=0)
    else:  # train-scale: ~7.3 masks and ~7.2 predictions per image
        g, r = synth.model(n, seed=0, per_image=7)
    gt.write_bytes(orjson.dumps(g))
    dt.write_bytes(orjson.dumps(r))
    print(f"  generated {d.name}: {len(g['annotations'])} reference masks, {len(r)} results ({time.perf_counter() - t0:.1f}s)", flush=True)
    return gt, dt


def measure(cmd: list[str], timeout: float) -> tuple[float, float, int, str]:
    """Run ``cmd`` in a fresh wrapper that reports the child's own peak RSS (wait4)."""
    wrapper = (
        "import json, os, subprocess, sys, time\n"
        "cmd = json.loads(sys.argv[1])\n"
        "t0 = time.perf_counter()\n"
        "p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)\n"
        "out = p.stdout.read()\n"
        "_, status, ru = os.wait4(p.pid, 0)\n"
        "dt = time.perf_counter() - t0\n"
        "sys.stdout.write(json.dumps({'s': dt, 'rss_mb': ru.ru_maxrss / 1024, 'rc': os.waitstatus_to_exitcode(status), 'out': out.decode(errors='replace')[-2000:]}))\n"
    )
    try:
        # cwd: outside the checkout, so that `-m quality` is the installed package
        r = subprocess.run([sys.executable, "-c", wrapper, json.dumps(cmd)], cwd=OUT, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return float("nan"), float("nan"), -1, "timeout"
    info = json.loads(r.stdout)
    return info["s"], info["rss_mb"], info["rc"], info["out"]


def engine_cmd(engine: str, gt: Path, dt: Path, iou: str, work: Path) -> list[str]:
    py = sys.executable
    res, arr = work / f"{engine}.json", work / f"{engine}.npz"
    if engine == "ours-cold":
        return [py, "-m", "quality", "evaluate", "--gt", str(gt), "--dt", str(dt), "--iou-type", iou, "--json", "--arrays", str(arr)]
    if engine == "ours-warm":
        return [py, "-m", "quality", "evaluate", "--gt-cache", str(work / "ref.npz"), "--dt", str(dt), "--iou-type", iou, "--json", "--arrays", str(arr)]
    extra = [str(arr)] if engine in ARRAYS_FROM else []
    return [py, str(Path(__file__).resolve().parent / "engines.py"), engine, str(gt), str(dt), iou, str(res), *extra]


def stats_of(engine: str, out: str, work: Path) -> list[float] | None:
    try:
        if engine.startswith("ours"):
            return json.loads(out.strip().splitlines()[-1])["stats"]
        return json.loads((work / f"{engine}.json").read_text())["stats"]
    except Exception:
        return None


def bench_one(name: str, kind: str, n: int, iou: str, engines: list[str], timeout: float, repeat: int = 1) -> list[dict]:
    gt, dt = ensure_data(kind, n)
    work = OUT / f"{kind}_{n}" / f"run_{iou}"
    work.mkdir(exist_ok=True)
    rows = []
    load_before = os.getloadavg()[0]
    if "ours-warm" in engines:
        s, rss, rc, out = measure([sys.executable, "-m", "quality", "cache", "--gt", str(gt), "--out", str(work / "ref.npz")], timeout)
        rows.append({"workload": name, "engine": "ours: build cache", "s": s, "rss": rss, "rc": rc, "stats": None, "note": "once per version", "runs": [s]})
    runs: dict[str, list[tuple[float, float, int, str]]] = {e: [] for e in engines}
    for r in range(repeat):  # rounds: every engine once, then again
        for engine in engines:
            s, rss, rc, out = measure(engine_cmd(engine, gt, dt, iou, work), timeout)
            runs[engine].append((s, rss, rc, out))
            print(f"  {name:<12} {engine:<22} {s:7.2f}s {rss:7.0f} MB rc={rc}" + (f" (round {r + 1})" if repeat > 1 else ""), flush=True)
    for engine in engines:
        seconds = [x[0] for x in runs[engine]]
        rss = max(x[1] for x in runs[engine])
        bad = next((x for x in runs[engine] if x[2] != 0), None)
        rc, out = (bad[2], bad[3]) if bad else (0, runs[engine][-1][3])
        st = stats_of(engine, out, work) if rc == 0 else None
        rows.append({
            "workload": name, "engine": engine, "s": float(np.median(seconds)), "rss": rss, "rc": rc, "stats": st, "runs": seconds,
            "note": "" if rc == 0 else out.strip().splitlines()[-1][:80] if out.strip() else f"rc={rc}",
        })
    load_after = os.getloadavg()[0]
    for r in rows:
        r["load"] = (load_before, load_after)
    print(f"  {name}: load average {load_before:.2f} before, {load_after:.2f} after ({repeat} round(s))", flush=True)
    ref = next((r["stats"] for r in rows if r["engine"] == "pycocotools" and r["stats"]), None)
    ref_name = "pycocotools"
    if ref is None:  # train scale runs without pycocotools: compare with the fastest peer
        ref = next((r["stats"] for r in rows if r["engine"] == "hotcoco" and r["stats"]), None)
        ref_name = "hotcoco"
    ref_arr = work / "pycocotools.npz"
    for r in rows:
        if r["stats"] is None or ref is None:
            continue
        same = r["stats"] == ref
        r["agree"] = ("identical" if same else f"max|d|={max(abs(a - b) for a, b in zip(r['stats'], ref)):.1e}") + (
            "" if ref_name == "pycocotools" else " (stats vs hotcoco)"
        )
        if (r["engine"].startswith("ours") or r["engine"] in ARRAYS_FROM - {"pycocotools"}) and ref_name == "pycocotools" and ref_arr.exists():
            a, b = np.load(ref_arr), np.load(work / f"{r['engine']}.npz")
            differ = [k for k in ("precision", "recall", "scores") if not np.array_equal(a[k], b[k])]
            if not differ:
                r["agree"] += ", arrays identical"
            elif r["engine"].startswith("ours"):
                r["agree"] += ", ARRAYS DIFFER"
            else:  # a peer's disagreement is reported, not a failure of this engine
                r["agree"] += ", arrays differ: " + ", ".join(f"{k} (max|d|={_max_diff(a[k], b[k]):.1e})" for k in differ)
    return rows


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)))


def table(rows: list[dict]) -> str:
    lines = [
        "Seconds: the median of the rounds; peak MB: the largest. Load average (1 minute) before and after each workload: "
        + ", ".join(f"{w} {r['load'][0]:.2f}-{r['load'][1]:.2f}" for w, r in {r["workload"]: r for r in rows}.items()),
        "",
"| workload | engine | seconds | peak MB | vs pycocotools | vs hotcoco (time) | vs hotcoco (mem) | agreement with pycocotools |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for w in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == w]
        base = next((r for r in group if r["engine"] == "pycocotools" and r["rc"] == 0), None)
        hot = next((r for r in group if r["engine"] == "hotcoco" and r["rc"] == 0), None)
        for r in group:
            vs_py = "1.0x" if r is base else f"{base['s'] / r['s']:.1f}x faster" if base and r["rc"] == 0 else ""
            vs_hot = f"{hot['s'] / r['s']:.2f}x" if hot and r["rc"] == 0 else ""
            mem_hot = f"{r['rss'] / hot['rss']:.2f}x" if hot and r["rc"] == 0 else ""
            agree = r.get("agree", r["note"])
            lines.append(f"| {w} | {r['engine']} | {r['s']:.2f} | {r['rss']:.0f} | {vs_py} | {vs_hot} | {mem_hot} | {agree} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    ap.add_argument("--train-scale", action="store_true", help="add the 118k-image workload (slow; pycocotools is skipped there)")
    ap.add_argument("--iou-type", default="segm", choices=["segm", "bbox"])
    ap.add_argument("--engines", default=",".join(PEERS + OURS), help="comma-separated subset")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every engine on audit and model (train scale: one)")
    args, _unknown = ap.parse_known_args(argv)  # bench/run.py passes every option to every script
    engines = [e for e in args.engines.split(",") if e]
    rows: list[dict] = []
    # The peers run from site-packages, byte-compiled when pip installed them; give this
    # engine the same footing (PYTHONDONTWRITEBYTECODE would otherwise recompile each run).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ENGINE_DIR)], check=True)
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"COCO {args.iou_type} benchmark ({'quick' if args.quick else 'full'}), {os.cpu_count()} CPUs", flush=True)
    print(f"engine: {ENGINE_DIR}; C kernels {native.status()}", flush=True)
    for name, kind, n in workloads(args.quick, args.train_scale):
        use = [e for e in engines if not (name == "train-scale" and e == "pycocotools")]
        rows.extend(bench_one(name, kind, n, args.iou_type, use, args.timeout, 1 if name == "train-scale" else max(1, args.repeat)))
    text = table(rows)
    print()
    print(text)
    (OUT / f"coco_bench_{'quick' if args.quick else 'full'}_{args.iou_type}.md").write_text(text + "\n")
    bad = [r for r in rows if "DIFFER" in r.get("agree", "") or (r["engine"].startswith("ours") and r["rc"] != 0)]
    # the targets are for the full-size workloads; --quick prints them without failing
    missed = targets(rows) if not args.quick else (targets(rows) and [])
    return 1 if bad or missed else 0


# Issue 18's targets for this engine cold against hotcoco cold: (time ratio at least, peak
# memory below hotcoco's). Asserted here, in the benchmark, not in timed tests.
TARGETS = {"audit": 1.5, "model": 1.5, "train-scale": 1.0}


def targets(rows: list[dict]) -> list[str]:
    """Print each workload's targets as met or missed; returns the missed ones."""
    missed = []
    for w, need in TARGETS.items():
        ours = next((r for r in rows if r["workload"] == w and r["engine"] == "ours-cold" and r["rc"] == 0), None)
        hot = next((r for r in rows if r["workload"] == w and r["engine"] == "hotcoco" and r["rc"] == 0), None)
        if ours is None or hot is None:
            continue
        # round by round: the two runs of a round are minutes apart at most
        per_round = [h / o for h, o in zip(hot["runs"], ours["runs"], strict=True)]
        ratio, mem = float(np.median(per_round)), ours["rss"] / hot["rss"]
        ok = ratio >= need and mem < 1.0
        spread = f" (median of {len(per_round)} rounds: {min(per_round):.2f}x to {max(per_round):.2f}x)" if len(per_round) > 1 else ""
        print(
            f"target {w}: ours-cold {ratio:.2f}x hotcoco's time{spread} (at least {need}x wanted), {mem:.2f}x its peak memory "
            f"(below 1x wanted), load average {ours['load'][0]:.2f}-{ours['load'][1]:.2f}: {'met' if ok else 'MISSED'}"
        )
        if not ok:
            missed.append(w)
    return missed


if __name__ == "__main__":
    sys.exit(main())
