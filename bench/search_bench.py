"""Listing search under load: 100k listings in PostgreSQL, gunicorn on loopback.

Opt-in (``python bench/run.py --search`` / ``make bench-full``; without ``--search`` it says so
and exits 0). Builds (once; ``--rebuild`` to redo) a catalogue of N listings in its own
database ``<DATABASE_URL's name>_search_bench``, starts gunicorn on 127.0.0.1, then sends a
bounded load (T threads, urllib, a fixed request count) of searches that each combine
filters, facets and a sort, and the same load on ``/healthz`` as the ceiling. Prints p50/p95
latency and requests/s per endpoint and writes them to ``var/bench/search.json``.

    python bench/search_bench.py --search [--listings 100000] [--threads 8] [--requests 800]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The project's code is the installed package (make bench installs it); gunicorn runs in
# this folder, not in the checkout, so the checkout's folders never shadow it.
VAR = ROOT / "var" / "bench-search"

EMBODIMENTS = ["arm", "mobile-manipulator", "humanoid", "quadruped", "drone", "gripper", "bimanual", "agv"]
TASKS = ["grasping", "picking", "placing", "folding", "pouring", "navigation", "assembly", "sorting", "wiping", "opening"]
SCENES = ["kitchen", "warehouse", "home", "lab", "factory", "outdoor", "office", "retail"]
CATEGORIES = [f"cat{i}" for i in range(80)]
LICENSES = [
    ("CC-BY-4.0", True, True, False),
    ("CC-BY-SA-4.0", True, True, True),
    ("CC-BY-NC-4.0", False, True, False),
    ("CC0-1.0", True, True, False),
    ("CC-BY-NC-ND-4.0", False, False, False),
]
TIERS = ["rough", "standard", "fine", "premium"]
ANNOTATION_KINDS = ["instances", "video", "panoptic"]
WORDS = [
    "robot",
    "grasp",
    "mask",
    "segmentation",
    "kitchen",
    "tabletop",
    "clutter",
    "bin",
    "pick",
    "household",
    "tool",
    "object",
    "scene",
    "warehouse",
    "tote",
    "shelf",
    "deformable",
    "cloth",
    "transparent",
    "glass",
    "reflective",
    "metal",
]

QUERIES = [
    {"min_mask_iou": "0.85", "embodiment": "arm", "ordering": "-mask_iou"},
    {"task": ["grasping", "picking"], "commercial_use": "true", "ordering": "quality_adjusted_cost"},
    {"tier": ["fine", "premium"], "annotation_kind": "instances", "price_max": "5000", "ordering": "price"},
    {"q": "kitchen clutter", "ordering": "relevance"},
    {"scene": "warehouse", "no_share_alike": "true", "frames_min": "1000", "ordering": "-published_at"},
    {"verified_only": "true", "min_ap": "0.5", "category": ["cat3", "cat7"], "ordering": "quality_adjusted_cost"},
    {"embodiment": ["humanoid", "bimanual"], "task": "folding", "derivatives": "true"},
    {"ordering": "-published_at"},
    {"sensor": ["rgbd", "depth"], "min_occlusion": "0.3", "min_embodiments": "2", "ordering": "diversity"},
]
SENSORS = ["rgb", "rgbd", "depth", "stereo", "thermal", "point_cloud"]


def bench_env(args) -> dict[str, str]:
    import dj_database_url

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/marketplace")
    cfg = dj_database_url.parse(base)
    if not cfg["ENGINE"].endswith("postgresql"):
        raise SystemExit("search bench needs PostgreSQL (DATABASE_URL)")
    name = f"{cfg['NAME']}_search_bench"
    url = base.rsplit("/", 1)[0] + "/" + name
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="marketplace.settings",
        MARKET_PROFILE="dev",
        DEBUG="false",
        THROTTLE_ANON="100000000/min",
        THROTTLE_USER="100000000/min",
        MARKET_VAR_DIR=str(VAR),
    )
    return env | {"_DB_NAME": name, "_ADMIN_URL": base}


def ensure_database(env: dict[str, str]) -> None:
    import dj_database_url
    import psycopg2

    cfg = dj_database_url.parse(env["_ADMIN_URL"])
    conn = psycopg2.connect(
        dbname="postgres", user=cfg["USER"], password=cfg["PASSWORD"] or None, host=cfg["HOST"], port=cfg["PORT"] or 5432
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [env["_DB_NAME"]])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{env["_DB_NAME"]}"')
    conn.close()


def seed(n: int, rebuild: bool) -> None:
    """Runs in this process with the bench env applied (django.setup done by the caller)."""
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from datasets.models import Dataset, DatasetVersion
    from marketplace.accounts.models import Organization
    from marketplace.listings.diversity import diversity_score
    from marketplace.listings.models import FigureStatus, Listing, ListingTerm, facet_group_fields, facet_keys_text
    from marketplace.listings.pricing import quality_adjusted_cost
    from marketplace.listings.services import listing_search_vector_refresh

    call_command("migrate", verbosity=0, interactive=False)
    have = Listing.objects.count()
    if have == n and not rebuild:
        print(f"catalogue: reusing {have} listings", flush=True)
        with connection.cursor() as cur:
            cur.execute("VACUUM ANALYZE listings_listing")  # visibility map after migrations (index-only scans)
        return
    t0 = time.perf_counter()
    first = have if (0 < have < n and not rebuild) else 0  # resume an interrupted seeding (batches are atomic)
    if first == 0:
        with connection.cursor() as cur:
            cur.execute(
                "TRUNCATE listings_downloadlog, listings_entitlement, listings_order, listings_listingterm, listings_listing RESTART IDENTITY CASCADE"
            )
            cur.execute(
                "DELETE FROM datasets_datasetversion WHERE dataset_id IN (SELECT id FROM datasets_dataset WHERE slug LIKE 'bench-%%')"
            )
            cur.execute("DELETE FROM datasets_dataset WHERE slug LIKE 'bench-%%'")
    rng = random.Random(first)
    orgs = [Organization.objects.get_or_create(slug=f"bench-seller-{i}", defaults={"name": f"Bench seller {i}"})[0] for i in range(200)]
    now = timezone.now()
    batch = 5000
    for start in range(first, n, batch):
        with transaction.atomic():
            size = min(batch, n - start)
            datasets = Dataset.objects.bulk_create(
                [
                    Dataset(
                        owner=rng.choice(orgs),
                        slug=f"bench-{start + i}",
                        title=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {start + i}",
                        annotation_license="CC-BY-4.0",
                        annotation_kind=rng.choice(ANNOTATION_KINDS),
                        price=Decimal(rng.choice([0, 100, 500, 1000, 2500, 5000, 12000])),
                    )
                    for i in range(size)
                ]
            )
            versions = DatasetVersion.objects.bulk_create(
                [
                    DatasetVersion(
                        dataset=d, number=1, state="published", published_at=now - timezone.timedelta(minutes=rng.randrange(500000))
                    )
                    for d in datasets
                ]
            )
            listings, terms_spec = [], []
            for d, v in zip(datasets, versions, strict=True):
                verified = rng.random() < 0.7
                status = FigureStatus.VERIFIED if verified else FigureStatus.SELF_DECLARED
                iou = round(rng.uniform(0.6, 0.97), 4)
                frames = rng.choice([200, 1000, 5000, 20000, 100000])
                completeness = round(rng.random(), 2)
                lic, commercial, derivs, sa = rng.choice(LICENSES)
                cost, inputs = quality_adjusted_cost(
                    price=d.price, frames=frames, mask_iou=iou, mask_iou_verified=verified, provenance_completeness=completeness
                )
                sensors = rng.sample(SENSORS, rng.randint(1, 2))
                occlusion, per_frame = round(rng.random() * 0.8, 4), round(rng.uniform(0.5, 20), 3)
                emb, tasks, scenes, cats = (
                    rng.sample(EMBODIMENTS, rng.randint(1, 2)),
                    rng.sample(TASKS, rng.randint(1, 3)),
                    rng.sample(SCENES, 1),
                    rng.sample(CATEGORIES, rng.randint(1, 5)),
                )
                listings.append(
                    Listing(
                        dataset=d,
                        slug=d.slug,
                        version=v,
                        version_number=1,
                        is_public=True,
                        title=d.title,
                        summary=" ".join(rng.sample(WORDS, 6)),
                        seller=d.owner,
                        seller_slug=d.owner.slug,
                        annotation_kind=d.annotation_kind,
                        mask_iou=iou,
                        mask_iou_status=status,
                        ap=round(iou - 0.3, 4),
                        ap_status=status,
                        ap50=round(iou - 0.1, 4),
                        ap50_status=status,
                        ap75=round(iou - 0.25, 4),
                        ap75_status=status,
                        tier=rng.choice(TIERS) if verified else "",
                        commercial_use=commercial,
                        derivatives=derivs,
                        share_alike=sa,
                        has_tracks=d.annotation_kind == "video",
                        frames=frames,
                        instances=frames * 4,
                        price=d.price,
                        published_at=v.published_at,
                        provenance_completeness=completeness,
                        quality_adjusted_cost=cost,
                        cost_inputs=inputs,
                        embodiments=[{"slug": s, "name": s} for s in emb],
                        tasks=[{"slug": s, "name": s} for s in tasks],
                        scene_types=[{"slug": s, "name": s} for s in scenes],
                        categories=[{"name": c, "count": 10} for c in cats],
                        licenses=[lic],
                        quality={"mask_iou": {"value": iou, "status": "verified" if verified else "self-declared"}},
                        search_text=" ".join(emb + tasks + scenes + cats),
                        sensors=sensors,
                        occlusion=occlusion,
                        instances_per_frame=per_frame,
                        embodiment_count=len(emb),
                        task_count=len(tasks),
                        diversity=diversity_score(embodiments=len(emb), frames_per_embodiment=None, tasks=len(tasks), scene_types=len(scenes))[0],
                        facet_keys=facet_keys_text({"embodiment": emb, "task": tasks, "scene": scenes, "license": [lic], "sensor": sensors}),
                        **facet_group_fields({"embodiment": emb, "task": tasks, "license": [lic], "sensor": sensors}),
                    )
                )
                terms_spec.append(
                    [("embodiment", s) for s in emb]
                    + [("task", s) for s in tasks]
                    + [("scene", s) for s in scenes]
                    + [("category", c) for c in cats]
                    + [("license", lic)]
                    + [("sensor", s) for s in sensors]
                )
            listings = Listing.objects.bulk_create(listings)
            ListingTerm.objects.bulk_create(
                [ListingTerm(listing=lst, kind=k, value=val) for lst, spec in zip(listings, terms_spec, strict=True) for k, val in spec]
            )
        print(f"  seeded {start + size}/{n} ({time.perf_counter() - t0:.0f} s)", flush=True)
    listing_search_vector_refresh()
    from datasets.models import VocabularyTerm

    for kind, values in (("embodiment", EMBODIMENTS), ("task", TASKS), ("scene", SCENES)):
        for slug in values:
            VocabularyTerm.objects.get_or_create(kind=kind, slug=slug, defaults={"name": slug})
    with connection.cursor() as cur:
        # VACUUM too: it sets the visibility map, without which the covering index's
        # index-only scans fall back to heap fetches (autovacuum does this in production).
        cur.execute("VACUUM ANALYZE")
    print(f"catalogue: {n} listings seeded in {time.perf_counter() - t0:.0f} s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(urls: list[str], *, threads: int, requests: int) -> dict:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        nonlocal errors
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            url = urls[i % len(urls)]
            t = time.perf_counter()
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - loopback
                    resp.read()
                    ok = resp.status == 200
            except urllib.error.URLError:
                ok = False
            dt = time.perf_counter() - t
            with lock:
                latencies.append(dt)
                errors += 0 if ok else 1

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "req_per_s": round(len(latencies) / wall, 1),
        "threads": threads,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", action="store_true", help="run this benchmark (opt-in)")
    ap.add_argument("--listings", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=800)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--rebuild", action="store_true")
    args, _rest = ap.parse_known_args()
    if not args.search:
        print("search bench: skipped (opt-in: pass --search, e.g. make bench-full)")
        return 0

    env = bench_env(args)
    ensure_database(env)
    os.environ.update({k: v for k, v in env.items() if not k.startswith("_")})
    import django

    django.setup()
    seed(args.listings, args.rebuild)
    from django.db import connections

    connections.close_all()

    port = free_port()
    VAR.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "marketplace.wsgi:application",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(args.workers),
            "--threads",
            "4",
            "--log-level",
            "warning",
        ],
        cwd=VAR,
        env={k: v for k, v in env.items() if not k.startswith("_")},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1).read()  # noqa: S310
                break
            except OSError:
                time.sleep(0.1)
        # Each request gets its own frames_max (1000 distinct values), so the facet cache
        # (keyed by the filters) almost never hits: these are cold-facet figures.
        vary = random.Random(1)
        search_urls = [
            f"{base}/api/v1/listings/?{urllib.parse.urlencode({**QUERIES[i % len(QUERIES)], 'frames_max': str(100000 + vary.randrange(1000))}, doseq=True)}"
            for i in range(args.requests)
        ]
        for url in search_urls[: len(QUERIES)]:  # warm up and check every query shape answers
            with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310
                body = json.loads(resp.read())
                assert "facets" in body and "results" in body
        results = {
            "listings": args.listings,
            "gunicorn_workers": args.workers,
            "healthz": load([f"{base}/healthz"], threads=args.threads, requests=args.requests),
            "search": load(search_urls, threads=args.threads, requests=args.requests),
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(results, indent=2))
    print(f"search bench: {args.listings} listings, gunicorn {args.workers} workers x 4 threads, {args.threads} client threads")
    for name in ("healthz", "search"):
        r = results[name]
        print(
            f"  {name:8s} p50 {r['p50_ms']:7.1f} ms  p95 {r['p95_ms']:7.1f} ms  {r['req_per_s']:7.1f} req/s  ({r['requests']} requests, {r['errors']} errors)"
        )
    return 0 if results["search"]["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
