"""A varied catalogue written straight into the listing tables (as the search benchmark seeds
it): every filter, facet and ordering meets nulls, ties, every figure status, hidden
listings and listings whose version is suspended. For comparing the search paths."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from datasets.models import Dataset, DatasetVersion
from marketplace.listings.models import Listing, ListingTerm, facet_group_fields, facet_keys_text
from marketplace.listings.services import listing_search_vector_refresh

EMBODIMENTS = ["arm", "humanoid", "quadruped", "drone", "bimanual"]
TASKS = ["grasping", "picking", "folding", "pouring", "navigation"]
SCENES = ["kitchen", "warehouse", "lab", "outdoor"]
CATEGORIES = ["mug", "box", "towel", "bolt", "cup", "pipette", "coffee mug"]
LICENSES = ["CC-BY-4.0", "CC-BY-SA-4.0", "CC0-1.0", "CC-BY-NC-ND-4.0"]
SENSORS = ["rgb", "rgbd", "depth", "thermal"]
TIERS = ["", "rough", "standard", "fine", "premium"]
KINDS = ["instances", "video", "panoptic"]
WORDS = ["robot", "grasp", "clutter", "tabletop", "kitchen", "towel", "warehouse", "bin", "mask", "shelf"]
PRICES = [Decimal("0"), Decimal("0.50"), Decimal("9.99"), Decimal("100"), Decimal("500"), Decimal("999.99")]
FRAMES = [0, 10, 200, 1000, 5000]
FIGURES = [None, 0.5, 0.7, 0.8123, 0.9, 0.95]
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


def _maybe(rng: random.Random, values: list, none_share: float = 0.2):
    return None if rng.random() < none_share else rng.choice(values)


def build_varied_catalogue(*, sellers: list, n: int = 240, seed: int = 7) -> list[Listing]:
    rng = random.Random(seed)
    datasets = Dataset.objects.bulk_create(
        [
            Dataset(
                owner=rng.choice(sellers),
                slug=f"varied-{i}",
                title=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
                annotation_license="CC-BY-4.0",
                annotation_kind=rng.choice(KINDS),
                price=rng.choice(PRICES),
            )
            for i in range(n)
        ]
    )
    # Some versions suspended after their listing was built (hidden before listing_sync runs).
    states = ["suspended" if rng.random() < 0.05 else "published" for _ in datasets]
    versions = DatasetVersion.objects.bulk_create(
        [DatasetVersion(dataset=d, number=1, state=state) for d, state in zip(datasets, states, strict=True)]
    )
    listings, terms = [], []
    for d, v in zip(datasets, versions, strict=True):
        multi = {
            "embodiment": rng.sample(EMBODIMENTS, rng.randint(0, 2)),
            "task": rng.sample(TASKS, rng.randint(0, 3)),
            "scene": rng.sample(SCENES, rng.randint(0, 2)),
            "license": rng.sample(LICENSES, 1),
            "sensor": rng.sample(SENSORS, rng.randint(0, 2)),
        }
        categories = rng.sample(CATEGORIES, rng.randint(0, 3))
        figures = {}
        for f in ("mask_iou", "ap", "ap50", "ap75", "agreement", "temporal_iou"):
            value = _maybe(rng, FIGURES)
            figures[f] = value
            figures[f"{f}_status"] = 0 if value is None else rng.randint(1, 3)
        published = None if rng.random() < 0.05 else BASE_TIME + timedelta(days=rng.randrange(30))  # ties on purpose
        listings.append(
            Listing(
                dataset=d,
                slug=d.slug,
                version=v,
                version_number=1,
                is_public=rng.random() > 0.05,
                title=d.title,
                summary=" ".join(rng.sample(WORDS, 3)),
                seller=d.owner,
                seller_slug=d.owner.slug,
                annotation_kind=d.annotation_kind,
                tier=rng.choice(TIERS),
                commercial_use=rng.random() < 0.6,
                derivatives=rng.random() < 0.7,
                share_alike=rng.random() < 0.3,
                has_tracks=rng.random() < 0.3,
                frames=rng.choice(FRAMES),
                price=d.price,
                published_at=published,
                quality_adjusted_cost=_maybe(rng, [0.0, 0.01, 0.5, 1.25, 3.0]),
                diversity=_maybe(rng, [0.5, 1.0, 1.58, 2.0]),
                instances_per_frame=_maybe(rng, [0.5, 3.0, 8.0, 12.5]),
                occlusion=_maybe(rng, [0.0, 0.2, 0.6]),
                embodiment_count=len(multi["embodiment"]),
                task_count=len(multi["task"]),
                search_text=" ".join([*multi["embodiment"], *multi["task"], *categories]),
                facet_keys=facet_keys_text(multi),
                **facet_group_fields({k: multi[k] for k in ("embodiment", "task", "license", "sensor")}),
                **figures,
            )
        )
        terms.append([*((k, val) for k, values in multi.items() for val in values), *(("category", c) for c in categories)])
    listings = Listing.objects.bulk_create(listings)
    ListingTerm.objects.bulk_create([ListingTerm(listing=lst, kind=k, value=val) for lst, spec in zip(listings, terms, strict=True) for k, val in spec])
    listing_search_vector_refresh(listing_ids=[lst.pk for lst in listings])
    return listings
