"""A seeded catalogue for the listings tests, built through the real services.

Statistics are what ingest writes (``version.statistics``); quality figures are the rows
``quality.selectors.version_quality_summary`` reads (QualityReport); effective terms come
from the real licensing selectors over the seeded license catalogue.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from datasets.models import VocabularyTerm
from datasets.services import version_create, version_transition
from datasets.states import VersionState
from marketplace.listings.services import listing_sync
from tests.factories import make_dataset, make_version

PUBLISH_PATH = (VersionState.SUBMITTED, VersionState.PROCESSING, VersionState.IN_REVIEW, VersionState.PUBLISHED)
LICENSE_URLS = {
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-SA-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "CC-BY-NC-ND-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}


def term(kind: str, slug: str) -> VocabularyTerm:
    return VocabularyTerm.objects.get_or_create(kind=kind, slug=slug, defaults={"name": slug.replace("-", " ").title()})[0]


def statistics(*, frames: int, categories: list[str], license: str, has_tracks: bool = False) -> dict:
    return {
        "images": frames,
        "frames": frames,
        "instances": frames * 3,
        "categories": [{"id": i + 1, "name": name, "count": frames} for i, name in enumerate(categories)],
        "licenses": [{"id": 1, "name": license, "url": LICENSE_URLS[license], "images": frames}],
        "images_without_license": 0,
        "has_tracks": has_tracks,
    }


def quality_reports(version, figures: dict[str, tuple[float, str]], tier: str | None) -> None:
    from quality.models import QualityReport

    by_kind = {"audit": ("mask_iou", "ap", "ap50", "ap75"), "agreement": ("agreement",), "temporal": ("temporal_iou",)}
    for kind, keys in by_kind.items():
        summary = {
            k: {"value": figures[k][0], "ci": [figures[k][0] - 0.01, figures[k][0] + 0.01], "n": 200, "status": figures[k][1]}
            for k in keys
            if k in figures
        }
        if not summary:
            continue
        if kind == "audit" and tier:
            summary["tier"] = tier
        QualityReport.objects.create(
            version=version,
            kind=kind,
            engine_version="test",
            inputs_checksum=hashlib.sha256(f"{version.pk}{kind}".encode()).hexdigest(),
            summary=summary,
        )


def publish(version, actor) -> None:
    for state in PUBLISH_PATH:
        version_transition(version=version, to_state=state, actor=actor)


@dataclass
class Catalogue:
    seller_a: object
    seller_b: object
    listings: dict = field(default_factory=dict)
    hidden: list[str] = field(default_factory=list)


SPEC = [
    # slug, seller, annotation kind, embodiments, tasks, scenes, categories, license, price, frames, tracks, figures, tier, title
    (
        "kitchen-grasp",
        "a",
        "instances",
        ["arm"],
        ["grasping"],
        ["kitchen"],
        ["mug", "bowl"],
        "CC-BY-4.0",
        "1000",
        1000,
        False,
        {"mask_iou": (0.91, "verified"), "ap": (0.6, "verified"), "ap50": (0.8, "verified"), "ap75": (0.65, "verified")},
        "fine",
        "Kitchen grasping set",
    ),
    (
        "warehouse-pick",
        "b",
        "video",
        ["mobile-manipulator"],
        ["picking"],
        ["warehouse"],
        ["box"],
        "CC-BY-NC-ND-4.0",
        "500",
        5000,
        True,
        {"mask_iou": (0.82, "verified"), "temporal_iou": (0.7, "measured")},
        "standard",
        "Warehouse tote picking",
    ),
    (
        "home-folding",
        "a",
        "instances",
        ["humanoid", "arm"],
        ["grasping", "folding"],
        ["home"],
        ["towel", "mug"],
        "CC-BY-SA-4.0",
        "0",
        200,
        False,
        {"mask_iou": (0.95, "self-declared"), "agreement": (0.88, "measured")},
        None,
        "Home laundry folding",
    ),
    (
        "lab-benchtop",
        "b",
        "panoptic",
        ["arm"],
        ["picking"],
        ["lab"],
        ["pipette"],
        "CC0-1.0",
        "3000",
        10000,
        False,
        {"mask_iou": (0.94, "verified"), "ap": (0.7, "verified")},
        "premium",
        "Lab benchtop panoptic",
    ),
]
VISIBLE = [row[0] for row in SPEC]


def scene(*, per_frame: float, p90: int, occlusion: float) -> dict:
    """Scene complexity as ingest writes it (datasets.ingest.scene)."""
    figures = {
        "frames": 100,
        "instances": round(per_frame * 100),
        "instances_per_frame": {"mean": per_frame, "p90": p90},
        "occlusion": occlusion,
        "sizes": {"small": 0.2, "medium": 0.5, "large": 0.3},
        "categories_per_frame": {"mean": 1.5, "p90": 2},
    }
    return {**figures, "splits": {"train": figures}}


# Sensors and what ingest measured, per listing. warehouse-pick declares its embodiments
# per video in its annotations (4000 frames on the mobile manipulator, 1000 on a UR5e); the
# others per dataset.
MEASURED = {
    "kitchen-grasp": {"sensors": ["rgb", "rgbd"], "scene": scene(per_frame=3.5, p90=6, occlusion=0.2)},
    "warehouse-pick": {
        "sensors": ["rgb", "depth"],
        "scene": scene(per_frame=8.0, p90=12, occlusion=0.6),
        "diversity": {
            "source": "annotations",
            "embodiments": {"count": 2, "frames": {"mobile-manipulator": 4000, "ur5e": 1000}, "episodes": {"mobile-manipulator": 40, "ur5e": 10}},
            "tasks": {"count": 1, "frames": {"picking": 5000}, "episodes": {"picking": 50}},
        },
    },
    "home-folding": {"sensors": ["rgb"], "scene": scene(per_frame=1.2, p90=2, occlusion=0.05)},
    "lab-benchtop": {"sensors": ["thermal"]},
}


def build_catalogue(*, seller_a, seller_b, moderator) -> Catalogue:
    cat = Catalogue(seller_a=seller_a, seller_b=seller_b)
    sellers = {"a": seller_a, "b": seller_b}
    for slug, who, kind, emb, tasks, scenes, cats, lic, price, frames, tracks, figures, tier, title in SPEC:
        seller = sellers[who]
        dataset = make_dataset(
            seller=seller,
            slug=slug,
            title=title,
            summary=f"{title} for robot learning",
            annotation_kind=kind,
            annotation_license=lic,
            price=Decimal(price),
            embodiments=[term("embodiment", s) for s in emb],
            tasks=[term("task", s) for s in tasks],
            scene_types=[term("scene", s) for s in scenes],
            sensors=MEASURED[slug]["sensors"],
        )
        version = make_version(seller=seller, dataset=dataset)
        version.statistics = statistics(frames=frames, categories=cats, license=lic, has_tracks=tracks)
        version.statistics.update({k: v for k, v in MEASURED[slug].items() if k in ("scene", "diversity")})
        version.save(update_fields=["statistics"])
        quality_reports(version, figures, tier)
        publish(version, moderator.user)
        cat.listings[slug] = listing_sync(dataset=dataset)

    # Never visible: a draft, a rejected and a suspended version (all titled "zebra"), and a
    # draft v2 of a published dataset whose content must not leak.
    draft = make_version(seller=seller_a, dataset=make_dataset(seller=seller_a, slug="zebra-draft", title="Zebra draft"))
    draft.statistics = statistics(frames=5, categories=["secretcat"], license="CC0-1.0")
    draft.save(update_fields=["statistics"])
    rejected = make_version(seller=seller_a, dataset=make_dataset(seller=seller_a, slug="zebra-rejected", title="Zebra rejected"))
    for state in PUBLISH_PATH[:-1]:
        version_transition(version=rejected, to_state=state, actor=moderator.user)
    version_transition(version=rejected, to_state=VersionState.REJECTED, actor=moderator.user)
    suspended = make_version(seller=seller_b, dataset=make_dataset(seller=seller_b, slug="zebra-suspended", title="Zebra suspended"))
    publish(suspended, moderator.user)
    listing_sync(dataset=suspended.dataset)
    version_transition(version=suspended, to_state=VersionState.SUSPENDED, actor=moderator.user)
    listing_sync(dataset=suspended.dataset)
    for v in (draft, rejected):
        listing_sync(dataset=v.dataset)
    v2 = version_create(dataset=cat.listings["kitchen-grasp"].dataset, actor=seller_a.user)
    v2.statistics = statistics(frames=7, categories=["secretcat"], license="CC0-1.0")
    v2.save(update_fields=["statistics"])
    listing_sync(dataset=v2.dataset)
    cat.hidden = ["zebra-draft", "zebra-rejected", "zebra-suspended"]
    return cat
