"""A synthetic catalogue of N public listings for the search benchmark, written fast.

The rows are what ``listing_sync`` writes for a published version (the listing's columns,
its ListingTerm rows, its search vector, a published DatasetVersion per listing), built
with the project's own helpers for every derived value (facet keys and groups, effective
license terms, quality figures and their statuses, quality-adjusted cost, diversity,
search text), so the encodings cannot drift from the application's. Only the transport
is the benchmark's: rows go in with PostgreSQL ``COPY`` (no ORM per row), the secondary
indexes are dropped during the load and rebuilt from their own definitions after it, and
the search vector is computed by a temporary trigger whose output is then checked against
``listing_search_vector_refresh`` on a sample (the seeding fails if they differ).

The mix: vocabularies (embodiments, tasks, scenes) from the seeded VocabularyTerm rows with
skewed popularity; sensors and annotation kinds (instances, video, panoptic) from the
models' choices; license mixes from the license catalogue (annotation license plus image
licenses, some images unlicensed) through ``effective_terms``; figures verified (audit),
measured (agreement, temporal IoU), self-declared or absent; tiers from the verified mask
IoU; prices (some free), frames (log-uniform 200 to 2M), categories (a COCO-like list),
titles, summaries and descriptions for full-text search.

Runs inside a process whose Django settings point at the benchmark's own database.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import multiprocessing
import os
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

# Bump when the generated rows change: a database seeded by another format is rebuilt.
SEED_FORMAT = 3
SEED_RANDOM = 18

CATEGORIES = ["person", "bicycle", "car", "motorcycle", "bus", "truck", "bottle", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "chair", "couch", "bed", "table", "laptop", "mouse", "remote", "keyboard", "phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "toothbrush", "mug", "plate", "pan", "pot", "lid", "kettle", "jar", "can", "box", "tote", "bin", "crate", "shelf", "drawer", "door", "handle", "knob", "button", "switch", "cable", "connector", "plug", "socket", "screw", "bolt", "nut", "washer", "gear", "bearing", "spring", "hinge", "bracket", "pipe", "tube", "hose", "valve", "sponge", "towel", "cloth", "shirt", "sock", "glove", "shoe", "bag", "backpack", "pallet", "carton", "envelope", "parcel", "label", "barcode", "tray", "basket", "lettuce", "tomato", "potato", "onion", "pepper", "cucumber", "egg", "bread", "cheese", "meat", "fish", "fruit", "leaf", "stem", "weed", "seedling", "tool", "hammer", "wrench", "pliers", "screwdriver", "drill", "saw", "tape", "glue", "marker", "pen", "pencil", "block", "cube", "cylinder", "sphere", "peg", "hole", "ring", "rope", "glass", "jar-lid", "bottle-cap", "wire", "cardboard", "foam", "plastic", "metal-part", "casting", "pcb", "chip", "resistor", "capacitor", "battery"]
ADJECTIVES = ["cluttered", "transparent", "reflective", "deformable", "occluded", "articulated", "textureless", "dense", "sparse", "tiny", "large", "stacked", "mixed", "novel", "everyday", "industrial", "household", "bimanual", "long-horizon", "dynamic", "static", "low-light", "outdoor", "indoor"]
NOUNS = ["objects", "parts", "items", "tools", "garments", "produce", "packages", "containers", "utensils", "fixtures", "components", "debris"]
VERBS = ["grasping", "picking", "placing", "sorting", "folding", "pouring", "wiping", "stacking", "inserting", "opening", "pushing", "assembling"]
CAPTURE = (
    "teleoperated demonstrations",
    "scripted policy rollouts",
    "human egocentric recordings",
    "autonomous evaluation episodes",
    "kinesthetic teaching sessions",
    "fleet data from deployed robots",
)


_JSON = json.JSONEncoder(separators=(",", ":")).encode


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    """Cumulative weights (random.choices' cum_weights) of a Zipf-like popularity."""
    return list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))


def _cumulative(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _two_significant(x: float) -> int:
    if x <= 0:
        return 0
    digits = int(math.floor(math.log10(x))) - 1
    return int(round(x, -digits)) if digits > 0 else int(round(x))


class CopyColumns:
    """One table's rows as COPY text: every concrete column of the model, the given values
    over the fields' own defaults, each converted as the field stores it."""

    def __init__(self, model, connection) -> None:
        from django.db import models

        self.model = model
        self.table = model._meta.db_table
        self.fields = [f for f in model._meta.concrete_fields]
        self.columns = [f.column for f in self.fields]
        self.names = [f.attname for f in self.fields]
        self.kinds = []
        self.defaults = []
        for f in self.fields:
            if isinstance(f, models.JSONField):
                kind = "json"
            elif isinstance(f, models.BooleanField):
                kind = "bool"
            elif isinstance(f, models.DateTimeField):
                kind = "datetime"
            else:
                kind = "plain"
            self.kinds.append(kind)
            self.defaults.append(f.get_default() if f.has_default() else (None if f.null else ("" if f.empty_strings_allowed else None)))

    @staticmethod
    def _escape(text: str) -> str:
        if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
            return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return text

    def line(self, values: dict) -> str:
        out = []
        for name, kind, default in zip(self.names, self.kinds, self.defaults, strict=True):
            value = values.get(name, default)
            if value is None:
                out.append("\\N")
            elif kind == "json":
                text = _JSON(value)  # JSON escapes control characters: only backslashes to double
                out.append(text.replace("\\", "\\\\") if "\\" in text else text)
            elif kind == "bool":
                out.append("t" if value else "f")
            elif kind == "datetime":
                out.append(value.isoformat())
            else:
                out.append(self._escape(str(value)))
        return "\t".join(out) + "\n"

    def copy(self, cursor, buffer: io.StringIO) -> None:
        buffer.seek(0)
        cols = ", ".join(f'"{c}"' for c in self.columns)
        cursor.copy_expert(f'COPY "{self.table}" ({cols}) FROM STDIN', buffer)


class ListingFactory:
    """Generates one listing (its dataset, published version, listing row and terms) at a time."""

    def __init__(self, *, now: datetime, sellers: list[tuple[int, str, str]]) -> None:
        from datasets.models import AnnotationKind, Sensor, VocabularyTerm
        from licensing.provenance import FIELDS
        from licensing.selectors import license_catalogue
        from marketplace.listings.models import FigureStatus
        from quality.engine.version import ENGINE_VERSION

        self.now = now
        self.sellers = sellers
        self.seller_weights = _zipf_weights(len(sellers), 0.9)
        vocab: dict[str, list[tuple[str, str]]] = {"embodiment": [], "task": [], "scene": []}
        for kind, slug, name in VocabularyTerm.objects.order_by("kind", "pk").values_list("kind", "slug", "name"):
            vocab[kind].append((slug, name))
        self.vocab = vocab
        self.vocab_weights = {kind: _zipf_weights(len(terms)) for kind, terms in vocab.items()}
        self.sensors = list(Sensor.values)
        self.sensor_weights = _cumulative([12 if s == "rgb" else 6 if s in ("rgbd", "depth") else 1 for s in self.sensors])
        self.kinds = [AnnotationKind.INSTANCES.value, AnnotationKind.VIDEO.value, AnnotationKind.PANOPTIC.value]
        self.kind_weights = _cumulative([0.7, 0.2, 0.1])
        self.licenses = license_catalogue()
        spdx = sorted(self.licenses.terms)
        popular = {"CC-BY-4.0": 30, "CC-BY-NC-4.0": 15, "CC0-1.0": 10, "CC-BY-SA-4.0": 8, "LicenseRef-Proprietary": 12, "LicenseRef-Research-Only": 6}
        self.license_ids = spdx
        self.license_weights = _cumulative([popular.get(s, 1) for s in spdx])
        self.status_value = {label: int(FigureStatus.of(label)) for label in ("verified", "measured", "self-declared")}
        self.provenance_fields = len(FIELDS)
        self.engine_version = ENGINE_VERSION
        self._terms_memo: dict = {}
        self._diversity_memo: dict = {}

    def _pick(self, rng: random.Random, kind: str, low: int, high: int) -> list[tuple[str, str]]:
        terms, weights = self.vocab[kind], self.vocab_weights[kind]
        wanted = rng.randint(low, min(high, len(terms)))
        picked: dict[str, tuple[str, str]] = {}
        while len(picked) < wanted:
            slug, name = rng.choices(terms, cum_weights=weights)[0]
            picked[slug] = (slug, name)
        return [picked[s] for s in sorted(picked)]

    def _effective_terms(self, annotation: str, image_licenses: tuple[tuple[str, int], ...], without: int, images: int) -> dict:
        from licensing.selectors import effective_terms

        key = (annotation, image_licenses, without, images)
        terms = self._terms_memo.get(key)
        if terms is None:
            statistics = {
                "images": images,
                "licenses": [{"id": i + 1, "name": s, "url": None, "images": n} for i, (s, n) in enumerate(image_licenses)],
                "images_without_license": without,
            }
            terms = effective_terms(annotation_license=annotation, statistics=statistics, licenses=self.licenses)
            if len(self._terms_memo) < 200_000:
                self._terms_memo[key] = terms
        return terms

    def _diversity(self, embodiments: int, tasks: int, scenes: int) -> tuple[float, dict]:
        from marketplace.listings.diversity import diversity_score

        key = (embodiments, tasks, scenes)
        if key not in self._diversity_memo:
            self._diversity_memo[key] = diversity_score(embodiments=embodiments, frames_per_embodiment=None, tasks=tasks, scene_types=scenes)
        score, inputs = self._diversity_memo[key]
        return score, dict(inputs, source="dataset")

    def _quality(self, rng: random.Random, kind: str) -> tuple[dict, int | None]:
        """The version's quality summary as licensing.selectors.version_quality_figures gives it."""
        from quality.engine.tiers import tier_for
        from quality.figures import MEASURED, SELF_DECLARED, VERIFIED, figure

        quality: dict = {}
        backing = rng.choices(("verified", "measured", "self-declared", "none"), cum_weights=(0.45, 0.6, 0.85, 1.0))[0]
        n_audit = None
        if backing == "verified":
            n_audit = rng.choice((50, 100, 200, 400))
            iou = round(min(0.99, max(0.4, rng.gauss(0.84, 0.07))), 4)
            ap = round(max(0.05, iou - rng.uniform(0.2, 0.4)), 4)
            for name, value in (("mask_iou", iou), ("ap", ap), ("ap50", round(min(0.99, ap + rng.uniform(0.15, 0.3)), 4)), ("ap75", round(max(0.0, ap - rng.uniform(0.0, 0.1)), 4))):
                quality[name] = figure(value, status=VERIFIED, ci=[round(value - 0.02, 4), round(min(1.0, value + 0.02), 4)], n=n_audit)
        if backing in ("verified", "measured") and rng.random() < 0.6:
            quality["agreement"] = figure(round(rng.uniform(0.6, 0.97), 4), status=MEASURED, n=rng.choice((100, 500)))
        if kind == "video" and backing != "none" and rng.random() < 0.8:
            quality["temporal_iou"] = figure(round(rng.uniform(0.55, 0.95), 4), status=MEASURED, n=rng.choice((20, 80)))
        if backing == "self-declared":
            quality["mask_iou"] = figure(round(rng.uniform(0.7, 0.98), 4), status=SELF_DECLARED)
            if rng.random() < 0.4 and "agreement" not in quality:
                quality["agreement"] = figure(round(rng.uniform(0.7, 0.98), 4), status=SELF_DECLARED)
        verified_iou = quality["mask_iou"]["value"] if backing == "verified" else None
        tier = tier_for(verified_iou)
        quality["tier"] = tier.value if tier is not None else None
        agreement = quality.get("agreement")
        quality["inconsistent_labeling"] = (agreement["value"] < 0.7) if agreement and agreement["status"] == MEASURED else None
        quality["engine_version"] = self.engine_version
        return quality, n_audit

    def make(self, rng: random.Random, pk: int) -> tuple[dict, dict, dict, list[tuple[str, str]]]:
        from marketplace.listings.models import FigureStatus, facet_group_fields, facet_keys_text
        from marketplace.listings.pricing import quality_adjusted_cost
        from marketplace.listings.services.catalogue import _search_text
        from quality.figures import LISTING_FIGURES

        seller_id, seller_slug, seller_name = rng.choices(self.sellers, cum_weights=self.seller_weights)[0]
        kind = rng.choices(self.kinds, cum_weights=self.kind_weights)[0]
        embodiments = self._pick(rng, "embodiment", 1, 3)
        tasks = self._pick(rng, "task", 1, 3)
        scenes = self._pick(rng, "scene", 1, 2)
        wanted_sensors = rng.randint(1, 3)
        sensors: list[str] = []
        while len(sensors) < wanted_sensors:
            s = rng.choices(self.sensors, cum_weights=self.sensor_weights)[0]
            if s not in sensors:
                sensors.append(s)
        frames = _two_significant(math.exp(rng.uniform(math.log(200), math.log(2_000_000))))
        per_frame = round(rng.lognormvariate(1.3, 0.7), 3)
        instances = int(frames * per_frame)
        cats = rng.sample(CATEGORIES, min(rng.randint(1, 5), rng.randint(1, 12)))
        categories = [{"id": i + 1, "name": c, "count": max(1, int(instances * w))} for i, (c, w) in enumerate(zip(cats, _split(rng, len(cats)), strict=True))]
        annotation = rng.choices(self.license_ids, cum_weights=self.license_weights)[0]
        mix = rng.random()
        if mix < 0.75:
            image_licenses: tuple[tuple[str, int], ...] = ((annotation, frames),)
            without = 0
        elif mix < 0.93:
            other = rng.choices(self.license_ids, cum_weights=self.license_weights)[0]
            part = frames // 2
            image_licenses = tuple(sorted({annotation: frames - part, other: part}.items())) if other != annotation else ((annotation, frames),)
            without = 0
        else:
            without = max(1, frames // 20)
            image_licenses = ((annotation, frames - without),)
        terms = self._effective_terms(annotation, image_licenses, without, frames)
        licenses = [lic["spdx"] for lic in terms.get("licenses", []) if lic.get("spdx")] or [annotation]
        price_draw = rng.random()
        price = Decimal(0) if price_draw < 0.1 else Decimal(_two_significant(math.exp(rng.uniform(math.log(50), math.log(50_000)))))
        quality, n_audit = self._quality(rng, kind)
        filled = rng.randint(0, self.provenance_fields)
        verified_fields = rng.randint(0, filled)
        completeness = round(filled / self.provenance_fields, 4)
        verified_share = round(verified_fields / filled, 4) if filled else 0.0
        published_at = self.now - timedelta(seconds=rng.randrange(3 * 365 * 86400))
        scene_words = scenes[0][1].lower()
        title = f"{rng.choice(ADJECTIVES).capitalize()} {scene_words} {rng.choice(NOUNS)}: {rng.choice(VERBS)} with {embodiments[0][1]} #{pk}"
        summary = (
            f"{_human(frames)} frames of {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} in {scene_words} scenes, "
            f"{', '.join(t[1].lower() for t in tasks)}; {kind} masks from {rng.choice(CAPTURE)}."
        )
        description = (
            f"Captured with {', '.join(sensors)} sensors on {', '.join(e[1] for e in embodiments)}. "
            f"Objects include {', '.join(cats[:6])}. {rng.choice(ADJECTIVES).capitalize()} and {rng.choice(ADJECTIVES)} "
            f"{rng.choice(NOUNS)}, annotated by trained annotators with a second review pass."
        )
        emb_list = [{"slug": s, "name": n} for s, n in embodiments]
        task_list = [{"slug": s, "name": n} for s, n in tasks]
        scene_list = [{"slug": s, "name": n} for s, n in scenes]
        diversity, diversity_inputs = self._diversity(len(emb_list), len(task_list), len(scene_list))
        measured_scene = rng.random() < 0.85
        occlusion = round(rng.betavariate(2, 5), 4) if measured_scene else None
        scene = (
            {
                "frames": frames,
                "instances": instances,
                "instances_per_frame": {"mean": per_frame, "p90": max(1, int(per_frame * 2))},
                "occlusion": occlusion,
                "sizes": {"small": 0.3, "medium": 0.45, "large": 0.25},
                "categories_per_frame": {"mean": round(min(len(cats), per_frame) / 2, 3), "p90": len(cats)},
            }
            if measured_scene
            else {}
        )
        statistics = {
            "images": frames,
            "frames": frames,
            "instances": instances,
            "has_tracks": kind == "video",
            "categories": categories,
            "licenses": [{"id": i + 1, "name": s, "url": None, "images": n} for i, (s, n) in enumerate(image_licenses)],
            "images_without_license": without,
        }
        dataset = {
            "id": pk,
            "owner_id": seller_id,
            "slug": f"bench-{pk}",
            "title": title,
            "summary": summary,
            "description": description,
            "annotation_kind": kind,
            "sensors": sensors,
            "annotation_license": annotation,
            "price": price,
            "currency": "USD",
            "created_at": published_at - timedelta(days=7),
            "updated_at": published_at,
        }
        version = {
            "id": pk,
            "dataset_id": pk,
            "number": 1,
            "state": "published",
            "created_at": published_at - timedelta(days=7),
            "state_changed_at": published_at,
            "submitted_at": published_at - timedelta(days=1),
            "published_at": published_at,
            "statistics": statistics,
        }
        per_class_ap = n_audit is not None
        listing = {
            "id": pk,
            "dataset_id": pk,
            "slug": dataset["slug"],
            "version_id": pk,
            "version_number": 1,
            "is_public": True,
            "title": title,
            "summary": summary,
            "description": description,
            "seller_id": seller_id,
            "seller_slug": seller_slug,
            "seller_name": seller_name,
            "annotation_kind": kind,
            "sensors": sensors,
            "tier": quality.get("tier") or "",
            "commercial_use": bool(terms.get("commercial_use", False)),
            "derivatives": bool(terms.get("derivatives", False)),
            "share_alike": bool(terms.get("share_alike", False)),
            "has_tracks": kind == "video",
            "frames": frames,
            "instances": instances,
            "price": price,
            "currency": "USD",
            "published_at": published_at,
            "provenance_completeness": completeness,
            "provenance_verified_share": verified_share,
            "embodiments": emb_list,
            "tasks": task_list,
            "scene_types": scene_list,
            "categories": categories,
            "licenses": licenses,
            "quality": quality,
            "terms": terms,
            "previews": [{"path": f"previews/{i:04d}.jpg", "storage_key": f"datasets/{pk}/v1/previews/{i:04d}.jpg"} for i in range(4)],
            "evidence": {
                "reports": ([{"kind": "audit", "id": pk, "plots": ["iou_histogram", "pr_curve"]}] if per_class_ap else []),
                "checks": {"total": 12, "passed": 11, "failed": 1, "not_applicable": 0, "failed_by_severity": {"info": ["exif_orientation"]}},
            },
            "per_class": [
                {
                    "category_id": c["id"],
                    "name": c["name"],
                    "instances": c["count"],
                    "ap": {"value": round(rng.uniform(0.2, 0.8), 4), "ci": None, "n": n_audit, "status": "verified"} if per_class_ap else None,
                }
                for c in categories
            ],
            "instances_per_frame": per_frame if measured_scene else None,
            "occlusion": occlusion,
            "embodiment_count": len(emb_list),
            "task_count": len(task_list),
            "diversity": diversity,
            "scene": scene,
            "diversity_inputs": diversity_inputs,
            "coverage": {
                "source": "dataset",
                "embodiments": {e["slug"]: {"frames": None, "episodes": None} for e in emb_list},
                "tasks": {t["slug"]: {"frames": None, "episodes": None} for t in task_list},
                "sensor_frames": None,
            },
            "synced_at": published_at,
            "checked_at": None,
        }
        for name in LISTING_FIGURES:
            entry = quality.get(name) if isinstance(quality.get(name), dict) else None
            value = float(entry["value"]) if entry and entry.get("value") is not None else None
            listing[name] = value
            listing[f"{name}_status"] = self.status_value.get(entry.get("status"), int(FigureStatus.NONE)) if value is not None else int(FigureStatus.NONE)
        listing["inconsistent_labeling"] = quality.get("inconsistent_labeling")
        listing["quality_adjusted_cost"], listing["cost_inputs"] = quality_adjusted_cost(
            price=price,
            frames=frames,
            mask_iou=listing["mask_iou"],
            mask_iou_verified=listing["mask_iou_status"] == FigureStatus.VERIFIED,
            provenance_completeness=completeness,
        )
        listing["search_text"] = _search_text(description, seller_name, emb_list, task_list, scene_list, [c["name"] for c in categories])
        multi = {
            "embodiment": [t["slug"] for t in emb_list],
            "task": [t["slug"] for t in task_list],
            "scene": [t["slug"] for t in scene_list],
            "category": sorted({c["name"] for c in categories}),
            "license": sorted(set(licenses)),
            "sensor": sorted(set(sensors)),
        }
        listing["facet_keys"] = facet_keys_text(multi)
        listing.update(facet_group_fields(multi))
        terms_rows = [(k, v) for k, values in multi.items() for v in values]
        return dataset, version, listing, terms_rows


def _split(rng: random.Random, n: int) -> list[float]:
    raw = [rng.expovariate(1.0) for _ in range(n)]
    total = sum(raw)
    return [r / total for r in raw]


def _human(n: int) -> str:
    return f"{n / 1_000_000:.1f}M" if n >= 1_000_000 else f"{n / 1000:.0f}k" if n >= 1000 else str(n)


# The search vector as listing_search_vector_refresh computes it, for the load only; the
# seeding then compares both on a sample and fails if they differ.
_VECTOR_TRIGGER = """
CREATE OR REPLACE FUNCTION bench_listing_vector() RETURNS trigger AS $$
BEGIN
  NEW.search_vector := setweight(to_tsvector('english'::regconfig, COALESCE(NEW.title, '')), 'A')
                    || setweight(to_tsvector('english'::regconfig, COALESCE(NEW.summary, '')), 'B')
                    || setweight(to_tsvector('english'::regconfig, COALESCE(NEW.search_text, '')), 'C');
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_listing_vector BEFORE INSERT ON listings_listing FOR EACH ROW EXECUTE FUNCTION bench_listing_vector();
ALTER TABLE listings_listing ENABLE ALWAYS TRIGGER bench_listing_vector;
"""

LOADED_TABLES = ("datasets_dataset", "datasets_datasetversion", "listings_listing", "listings_listingterm")


def seed_catalogue(n: int, *, batch: int = 10_000, log=print) -> dict:
    """Fill the (freshly migrated, empty) benchmark database with ``n`` public listings."""
    from django.db import connection

    from datasets.models import Dataset, DatasetVersion
    from marketplace.accounts.models import Organization
    from marketplace.listings.models import Listing
    from marketplace.listings.services import listing_search_vector_refresh

    t0 = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(SEED_RANDOM)
    n_sellers = max(50, min(5000, n // 200))
    Organization.objects.bulk_create(
        [Organization(slug=f"bench-seller-{i}", name=f"{rng.choice(ADJECTIVES).capitalize()} Robotics Lab {i}") for i in range(n_sellers)]
    )
    sellers = list(Organization.objects.filter(slug__startswith="bench-seller-").order_by("pk").values_list("pk", "slug", "name"))
    factory = ListingFactory(now=now, sellers=sellers)
    tables = {
        "dataset": CopyColumns(Dataset, connection),
        "version": CopyColumns(DatasetVersion, connection),
        "listing": CopyColumns(Listing, connection),
    }
    with connection.cursor() as cur:
        # Secondary indexes are rebuilt after the load from their own definitions (faster
        # than maintaining them row by row); constraint indexes stay.
        cur.execute(
            """SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)
               AND indexname NOT IN (SELECT conname FROM pg_constraint)""",
            [list(LOADED_TABLES)],
        )
        secondary = cur.fetchall()
        for name, _definition in secondary:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute(_VECTOR_TRIGGER)
    workers = max(1, min(4, os.cpu_count() or 1))
    settings_db = connection.settings_dict
    _WORKER.update(
        factory=factory,
        tables=tables,
        dsn={"dbname": settings_db["NAME"], "user": settings_db["USER"], "password": settings_db["PASSWORD"] or None, "host": settings_db["HOST"], "port": settings_db["PORT"] or 5432},
    )
    generate_s = copy_s = 0.0
    terms = done = 0
    ranges = [(start, min(n + 1, start + batch)) for start in range(1, n + 1, batch)]
    # Worker processes (forked: they share the factory built above) each generate a batch
    # and copy it in on their own connection, so generating and copying overlap.
    connection.close()
    with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_connect) as pool:
        for count, rows, took_generate, took_copy in pool.imap_unordered(_load_batch, ranges):
            generate_s += took_generate
            copy_s += took_copy
            terms += count
            done += rows
            log(f"  seeded {done}/{n} listings ({time.perf_counter() - t0:.0f} s; {workers} processes: generating {generate_s:.0f} s, copying {copy_s:.0f} s)")
    i0 = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute("DROP TRIGGER bench_listing_vector ON listings_listing; DROP FUNCTION bench_listing_vector()")
        for table in LOADED_TABLES:
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM \"{table}\"))")
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _name, definition in secondary:
            cur.execute(definition)
    index_s = time.perf_counter() - i0
    _check_vectors(connection, listing_search_vector_refresh)
    _check_references(connection, n)
    v0 = time.perf_counter()
    with connection.cursor() as cur:
        # VACUUM sets the visibility map, without which the covering index's index-only
        # scans fall back to heap fetches (autovacuum does this in production).
        cur.execute("VACUUM ANALYZE")
    vacuum_s = time.perf_counter() - v0
    with connection.cursor() as cur:
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database())), pg_size_pretty(pg_total_relation_size('listings_listing'))")
        db_size, listing_size = cur.fetchone()
    took = time.perf_counter() - t0
    log(
        f"catalogue: {n} listings, {terms} terms seeded in {took:.0f} s (generate {generate_s:.0f} s, copy {copy_s:.0f} s, "
        f"indexes {index_s:.0f} s, vacuum {vacuum_s:.0f} s); database {db_size}, listings table {listing_size}"
    )
    return {"listings": n, "terms": terms, "seconds": round(took, 1), "database_size": db_size}


_WORKER: dict = {}


def _worker_connect() -> None:
    import psycopg2

    _WORKER["connection"] = psycopg2.connect(**_WORKER["dsn"])


def _load_batch(bounds: tuple[int, int]) -> tuple[int, int, float, float]:
    """Generate one batch of listings as COPY text per table and copy it in (in a worker)."""
    t0 = time.perf_counter()
    start, stop = bounds
    factory, tables = _WORKER["factory"], _WORKER["tables"]
    rng = random.Random(f"{SEED_RANDOM}:{start}")
    buffers = {key: io.StringIO() for key in ("dataset", "version", "listing", "term")}
    count = 0
    for pk in range(start, stop):
        dataset, version, listing, terms = factory.make(rng, pk)
        buffers["dataset"].write(tables["dataset"].line(dataset))
        buffers["version"].write(tables["version"].line(version))
        buffers["listing"].write(tables["listing"].line(listing))
        for kind, value in terms:
            # slugs, category names and SPDX ids: nothing COPY would need escaped
            if "\\" in value or "\t" in value or "\n" in value:
                raise ValueError(f"term value {value!r} needs escaping")
            buffers["term"].write(f"{pk}\t{kind}\t{value}\n")
        count += len(terms)
    t1 = time.perf_counter()
    conn = _WORKER["connection"]
    with conn, conn.cursor() as cur:
        # The rows' references are consistent by construction (same ids throughout): the
        # per-row foreign-key triggers are skipped; the vector trigger is ENABLE ALWAYS.
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("SET LOCAL synchronous_commit = off")
        for key in ("dataset", "version", "listing"):
            tables[key].copy(cur, buffers[key])
        buffers["term"].seek(0)
        cur.copy_expert('COPY "listings_listingterm" ("listing_id", "kind", "value") FROM STDIN', buffers["term"])
    return count, stop - start, t1 - t0, time.perf_counter() - t1


def _check_vectors(connection, refresh) -> None:
    """The loaded vectors equal what listing_search_vector_refresh writes (on a sample)."""
    with connection.cursor() as cur:
        cur.execute("SELECT id, search_vector::text FROM listings_listing TABLESAMPLE SYSTEM (1) LIMIT 300")
        before = dict(cur.fetchall())
    if not before:
        raise SystemExit("seeding: no listings to check")
    refresh(listing_ids=list(before))
    with connection.cursor() as cur:
        cur.execute("SELECT id, search_vector::text FROM listings_listing WHERE id = ANY(%s)", [list(before)])
        after = dict(cur.fetchall())
    differ = [pk for pk in before if before[pk] != after.get(pk)]
    if differ:
        raise SystemExit(f"seeding: the loaded search vectors differ from listing_search_vector_refresh's (listings {differ[:5]})")


def _check_references(connection, n: int) -> None:
    """What the skipped foreign-key triggers would have checked, in three joins."""
    with connection.cursor() as cur:
        cur.execute(
            """SELECT (SELECT count(*) FROM listings_listing l JOIN datasets_datasetversion v ON v.id = l.version_id
                        AND v.dataset_id = l.dataset_id AND v.state = 'published' JOIN accounts_organization o ON o.id = l.seller_id),
                      (SELECT count(*) FROM listings_listingterm t LEFT JOIN listings_listing l ON l.id = t.listing_id WHERE l.id IS NULL)"""
        )
        joined, orphans = cur.fetchone()
    if joined != n or orphans:
        raise SystemExit(f"seeding: {joined} of {n} listings reference their version and seller, {orphans} orphan terms")
