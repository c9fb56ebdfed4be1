"""Writes of the catalogue: a listing built from its dataset's published version, its
search vector, and the reconciliation that repairs listings a lost reaction left wrong."""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from datasets.models import Dataset, DatasetVersion, VocabularyKind, VocabularyTerm
from datasets.selectors import version_files
from datasets.states import VersionState
from licensing.selectors import provenance_completeness, version_checks_summary, version_effective_terms, version_quality_figures
from marketplace.listings.diversity import diversity_score
from marketplace.listings.models import (
    FigureStatus,
    Listing,
    ListingTerm,
    TermKind,
    facet_group_fields,
    facet_keys_text,
)
from marketplace.listings.pricing import quality_adjusted_cost
from marketplace.listings.search import catalogue_generation_bump
from marketplace.listings.services.consent import consent_revocations_reconcile
from marketplace.listings.services.selections import version_index_request
from quality.figures import LISTING_FIGURES
from quality.selectors import version_per_class, version_report_evidence

logger = logging.getLogger(__name__)


def _terms_list(queryset) -> list[dict[str, str]]:
    return [{"slug": t.slug, "name": t.name} for t in queryset.order_by("slug")]


def _previews(version: DatasetVersion) -> list[dict[str, str]]:
    stats_previews = version.statistics.get("previews") if isinstance(version.statistics, dict) else None
    if isinstance(stats_previews, list) and stats_previews:
        return [
            {"path": p.get("path", p.get("storage_key", "")), "storage_key": p["storage_key"]}
            for p in stats_previews
            if isinstance(p, dict) and p.get("storage_key")
        ][:12]
    return [{"path": f.path, "storage_key": f.storage_key} for f in version_files(version=version, role="preview").order_by("path")[:12]]


def _search_text(*parts: Any) -> str:
    words: list[str] = []
    for part in parts:
        if isinstance(part, str):
            words.append(part)
        elif isinstance(part, list):
            words.extend(str(x.get("name", "")) + " " + str(x.get("slug", "")) if isinstance(x, dict) else str(x) for x in part)
    return " ".join(w for w in words if w).strip()


def listing_search_vector_refresh(*, listing_ids: list[int] | None = None) -> None:
    """Recompute the stored tsvector (PostgreSQL only; SQLite searches ``search_text``)."""
    if connection.vendor != "postgresql":
        return
    from django.contrib.postgres.search import SearchVector

    qs = Listing.objects.all() if listing_ids is None else Listing.objects.filter(pk__in=listing_ids)
    qs.update(
        search_vector=SearchVector("title", weight="A", config="english")
        + SearchVector("summary", weight="B", config="english")
        + SearchVector("search_text", weight="C", config="english")
    )


def listing_fields_from_version(*, dataset: Dataset, version: DatasetVersion) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The listing's columns and its filterable multi-value terms, from the version and the lower apps' selectors."""
    stats = version.statistics if isinstance(version.statistics, dict) else {}
    quality = version_quality_figures(version=version)
    terms = version_effective_terms(version=version)
    provenance = provenance_completeness(version=version)

    embodiments = _terms_list(dataset.embodiments.all())
    tasks = _terms_list(dataset.tasks.all())
    embodiments, tasks = _with_declared_in_annotations(stats, embodiments=embodiments, tasks=tasks)
    scenes = _terms_list(dataset.scene_types.all())
    categories = [
        {"id": c.get("id"), "name": c.get("name"), "count": c.get("count", 0)}
        for c in stats.get("categories", [])
        if isinstance(c, dict) and c.get("name")
    ]
    licenses = [lic["spdx"] for lic in terms.get("licenses", []) if isinstance(lic, dict) and lic.get("spdx")]
    if not licenses and dataset.annotation_license:
        licenses = [dataset.annotation_license]

    fields: dict[str, Any] = {
        "slug": dataset.slug,
        "version": version,
        "version_number": version.number,
        "is_public": True,
        "title": dataset.title,
        "summary": dataset.summary,
        "description": dataset.description,
        "seller": dataset.owner,
        "seller_slug": dataset.owner.slug,
        "seller_name": dataset.owner.name,
        "annotation_kind": dataset.annotation_kind,
        "sensors": _sensors(dataset, stats),
        "tier": quality.get("tier") or "",
        "commercial_use": bool(terms.get("commercial_use", False)),
        "derivatives": bool(terms.get("derivatives", False)),
        "share_alike": bool(terms.get("share_alike", False)),
        "has_tracks": bool(stats.get("has_tracks", False)),
        "frames": int(stats.get("frames", stats.get("images", 0)) or 0),
        "instances": int(stats.get("instances", 0) or 0),
        "price": dataset.price,
        "currency": dataset.currency,
        "published_at": version.published_at,
        "revocation_deadline": version.revocation_deadline if version.revocation_pending else None,
        "provenance_completeness": provenance.get("completeness"),
        "provenance_verified_share": provenance.get("verified_share"),
        "embodiments": embodiments,
        "tasks": tasks,
        "scene_types": scenes,
        "categories": categories,
        "licenses": licenses,
        "quality": quality,
        "terms": terms,
        "previews": _previews(version),
        "evidence": {"reports": version_report_evidence(version=version), "checks": version_checks_summary(version=version)},
        "per_class": version_per_class(version=version, categories=categories),
    }
    for figure in LISTING_FIGURES:
        entry = quality.get(figure) if isinstance(quality.get(figure), dict) else None
        value = float(entry["value"]) if entry and entry.get("value") is not None else None
        fields[figure] = value
        fields[f"{figure}_status"] = FigureStatus.of(entry.get("status")) if value is not None else FigureStatus.NONE
    fields["inconsistent_labeling"] = quality.get("inconsistent_labeling")
    fields["quality_adjusted_cost"], fields["cost_inputs"] = quality_adjusted_cost(
        price=dataset.price,
        frames=fields["frames"],
        mask_iou=fields["mask_iou"],
        mask_iou_verified=fields["mask_iou_status"] == FigureStatus.VERIFIED,
        provenance_completeness=fields["provenance_completeness"],
    )
    fields.update(_scene_and_diversity(stats, embodiments=embodiments, tasks=tasks, scenes=scenes))
    fields["search_text"] = _search_text(
        dataset.description, dataset.owner.name, embodiments, tasks, scenes, [c["name"] for c in categories]
    )
    multi = {
        TermKind.EMBODIMENT: [t["slug"] for t in embodiments],
        TermKind.TASK: [t["slug"] for t in tasks],
        TermKind.SCENE: [t["slug"] for t in scenes],
        TermKind.CATEGORY: sorted({c["name"] for c in categories}),
        TermKind.LICENSE: sorted(set(licenses)),
        TermKind.SENSOR: sorted(set(fields["sensors"])),
    }
    fields["facet_keys"] = facet_keys_text(multi)
    fields.update(facet_group_fields(multi))
    return fields, multi


def _sensors(dataset: Dataset, stats: dict) -> list[str]:
    """The dataset's declared sensors, then those its images or videos declare (ingest's count)."""
    measured = stats.get("sensors") if isinstance(stats.get("sensors"), dict) else {}
    return list(dict.fromkeys([*(dataset.sensors or []), *sorted(measured.get("frames") or {})]))


def _with_declared_in_annotations(stats: dict, *, embodiments: list, tasks: list) -> tuple[list, list]:
    """The dataset's embodiments and tasks, and those its annotations declare per frame or episode."""
    diversity = stats.get("diversity") if isinstance(stats.get("diversity"), dict) else {}
    if diversity.get("source") != "annotations":
        return embodiments, tasks
    wanted = {}
    for kind, key, have in ((VocabularyKind.EMBODIMENT, "embodiments", embodiments), (VocabularyKind.TASK, "tasks", tasks)):
        entry = diversity.get(key) if isinstance(diversity.get(key), dict) else {}
        known = {t["slug"] for t in have}
        wanted[kind] = [str(slug) for slug in (entry.get("frames") or {}) if str(slug) not in known]
    if not any(wanted.values()):
        return embodiments, tasks
    cond = Q()
    for kind, slugs in wanted.items():
        cond |= Q(kind=kind, slug__in=slugs)
    found = {kind: [] for kind in wanted}
    for term in VocabularyTerm.objects.filter(cond).order_by("slug"):
        found[term.kind].append({"slug": term.slug, "name": term.name})
    by_slug = lambda terms: sorted(terms, key=lambda t: t["slug"])  # noqa: E731
    return by_slug(embodiments + found[VocabularyKind.EMBODIMENT]), by_slug(tasks + found[VocabularyKind.TASK])


def _scene_and_diversity(stats: dict, *, embodiments: list, tasks: list, scenes: list) -> dict[str, Any]:
    """Scene complexity as ingest measured it, and the embodiments and tasks covered: those
    declared per frame or episode in the annotations when there were any, else the dataset's."""
    scene = stats.get("scene") if isinstance(stats.get("scene"), dict) else {}
    per_frame = scene.get("instances_per_frame") if isinstance(scene.get("instances_per_frame"), dict) else {}
    diversity = stats.get("diversity") if isinstance(stats.get("diversity"), dict) else {}
    from_annotations = diversity.get("source") == "annotations"

    def declared(key: str, dataset_terms: list) -> tuple[int, dict[str, int] | None]:
        entry = diversity.get(key) if isinstance(diversity.get(key), dict) else {}
        if from_annotations and entry:
            frames = {str(k): int(v) for k, v in (entry.get("frames") or {}).items()}
            return int(entry.get("count", len(frames))), frames or None
        return len(dataset_terms), None

    embodiment_count, frames_per_embodiment = declared("embodiments", embodiments)
    task_count, _ = declared("tasks", tasks)
    score, inputs = diversity_score(
        embodiments=embodiment_count, frames_per_embodiment=frames_per_embodiment, tasks=task_count, scene_types=len(scenes)
    )
    inputs["source"] = "annotations" if from_annotations else "dataset"

    def counts(key: str, dataset_terms: list) -> dict[str, dict]:
        entry = diversity.get(key) if isinstance(diversity.get(key), dict) else {}
        if not from_annotations or not entry:
            return {t["slug"]: {"frames": None, "episodes": None} for t in dataset_terms}
        episodes = entry.get("episodes") or {}
        return {str(k): {"frames": int(v), "episodes": int(episodes.get(k, 0))} for k, v in (entry.get("frames") or {}).items()}

    sensors = stats.get("sensors") if isinstance(stats.get("sensors"), dict) else {}
    coverage = {
        "source": inputs["source"],
        "embodiments": counts("embodiments", embodiments),
        "tasks": counts("tasks", tasks),
        "sensor_frames": sensors.get("frames") or None,
    }
    return {
        "coverage": coverage,
        "scene": scene,
        "instances_per_frame": per_frame.get("mean"),
        "occlusion": scene.get("occlusion"),
        "embodiment_count": embodiment_count,
        "task_count": task_count,
        "diversity": score,
        "diversity_inputs": inputs,
    }


def _generation_bump() -> None:
    # Now (this transaction's own later reads) and again on commit: facets another request
    # cached from the pre-commit catalogue in between are invalidated as well.
    catalogue_generation_bump()
    transaction.on_commit(catalogue_generation_bump)


@transaction.atomic
def listing_sync(*, dataset: Dataset) -> Listing | None:
    """(Re)build the dataset's listing from its published version; hide it when none is published.

    Called after a moderation decision, a suspension or a reinstatement, and by anything
    that changes what a listing shows. Safe to call at any time and repeatedly.
    """
    dataset = Dataset.objects.select_for_update().select_related("owner").get(pk=dataset.pk)  # serialise syncs per dataset
    version = DatasetVersion.objects.filter(dataset=dataset, state=VersionState.PUBLISHED).first()
    listing = Listing.objects.filter(dataset=dataset).first()
    if version is None:
        if listing is not None and listing.is_public:
            listing.is_public = False
            listing.save(update_fields=["is_public", "synced_at"])
            _generation_bump()
        return listing

    fields, multi = listing_fields_from_version(dataset=dataset, version=version)
    if listing is None:
        listing = Listing.objects.create(dataset=dataset, **fields)
    else:
        for name, value in fields.items():
            setattr(listing, name, value)
        listing.save()
    ListingTerm.objects.filter(listing=listing).delete()
    ListingTerm.objects.bulk_create(
        [ListingTerm(listing=listing, kind=kind, value=value) for kind, values in multi.items() for value in values]
    )
    listing_search_vector_refresh(listing_ids=[listing.pk])
    _generation_bump()
    version_index_request(version_id=version.pk)  # the subsets the listing offers
    return listing


def listing_sync_by_id(*, dataset_id: int) -> Listing | None:
    return listing_sync(dataset=Dataset.objects.get(pk=dataset_id))


# Columns the reconciliation does not compare: bookkeeping, and the tsvector (derived in SQL).
_UNCOMPARED = frozenset({"synced_at", "checked_at", "search_vector"})


def _listing_disagrees(listing: Listing, fields: dict[str, Any], multi: dict[str, list[str]]) -> list[str]:
    """The listing's columns (and term kinds) that differ from what its sources give now."""
    differ = [name for name, value in fields.items() if name not in _UNCOMPARED and getattr(listing, name) != value]
    stored: dict[str, set[str]] = {}
    for kind, value in ListingTerm.objects.filter(listing=listing).values_list("kind", "value"):
        stored.setdefault(kind, set()).add(value)
    differ += [f"terms.{kind}" for kind, values in multi.items() if set(values) != stored.get(kind, set())]
    return differ


def listings_reconcile(*, batch: int = 500) -> dict[str, int]:
    """Repair what a lost reaction left wrong; run periodically (beat) and safe at any time.

    1. Every dataset whose listing disagrees with its published version is synced: a
       published version without a public listing, a public listing whose version is not
       the published one. One query finds them all.
    2. The ``batch`` public listings compared longest ago are rebuilt from their sources and
       compared column by column; those that differ (a figure, the terms, a vocabulary) are
       synced. Over successive runs every listing is compared.
    3. Consent revocations whose files were never listed (their reaction was lost) are
       applied: files listed and withdrawn, notices sent.
    """
    published = DatasetVersion.objects.filter(state=VersionState.PUBLISHED)
    wrong = set(
        published.exclude(dataset__listing__is_public=True, dataset__listing__version_id=F("pk")).values_list("dataset_id", flat=True)
    )
    wrong |= set(
        Listing.objects.filter(is_public=True).exclude(version_id__in=published.values("pk")).values_list("dataset_id", flat=True)
    )
    for dataset_id in sorted(wrong):
        listing_sync_by_id(dataset_id=dataset_id)

    repaired = 0
    now = timezone.now()
    stale = list(
        Listing.objects.filter(is_public=True)
        .exclude(dataset_id__in=wrong)
        .select_related("dataset", "version")
        .order_by(F("checked_at").asc(nulls_first=True), "pk")[:batch]
    )
    for listing in stale:
        if listing.version is None or listing.version.state != VersionState.PUBLISHED:
            continue
        fields, multi = listing_fields_from_version(dataset=listing.dataset, version=listing.version)
        differ = _listing_disagrees(listing, fields, multi)
        if differ:
            logger.warning("listing %s disagreed with its sources on %s; re-synced", listing.slug, ", ".join(differ[:10]))
            listing_sync(dataset=listing.dataset)
            repaired += 1
        Listing.objects.filter(pk=listing.pk).update(checked_at=now)
    revocations = consent_revocations_reconcile()
    return {"resynced": len(wrong), "compared": len(stale), "repaired": repaired, "revocations_applied": revocations}


