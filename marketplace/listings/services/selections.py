"""Writes behind subsets: a version's index (built once per version by a worker) and the
selections (the files a subset, or a version without withdrawn files, is served as; built
once per key by a worker and shared). See marketplace.listings.subsets for the rules."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from decimal import Decimal
from typing import Any

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from datasets.models import DatasetFile, DatasetVersion
from datasets.selectors import version_files
from licensing.selectors import effective_terms, license_resolver, licenses_granting, withdrawn_files
from marketplace.core.errors import Conflict
from marketplace.core.storage import get_storage
from marketplace.listings import subsets as S
from marketplace.listings.errors import ListingErrorCode
from marketplace.listings.models import Selection, SelectionEntry, SelectionState, VersionIndex
from marketplace.listings.selectors import BUYER_FILE_ROLES

log = logging.getLogger(__name__)
# Roles of the media a selection serves (frames, videos, panoptic segment PNGs).
MEDIA_ROLES = ("images", "video", "panoptic")


def _annotation_files(version: DatasetVersion, roles=S.ANNOTATION_ROLES) -> list[DatasetFile]:
    return [f for f in version_files(version=version).filter(role__in=roles).order_by("role", "path") if f.path.lower().endswith(".json")]


class _Resolver:
    """licenses[] entries → SPDX ids, memoised over one build."""

    def __init__(self) -> None:
        self.resolver = license_resolver()
        self.cache: dict[tuple[str, str], str | None] = {}

    def __call__(self, entry: dict) -> str | None:
        key = (entry.get("name") or "", entry.get("url") or "")
        if key not in self.cache:
            self.cache[key] = self.resolver.resolve(identifier=key[0], name=key[0], url=key[1] or None).spdx_id
        return self.cache[key]


def _commercial_context(version: DatasetVersion) -> dict[str, Any]:
    commercial = licenses_granting(term="commercial_use")
    resolve = _Resolver()
    annotation = resolve({"name": version.dataset.annotation_license, "url": ""})
    return {"commercial_licenses": commercial, "resolve": resolve, "annotation_commercial": annotation in commercial}


def version_index_rows(*, version: DatasetVersion) -> list[S.IndexRow]:
    """Read every indexed annotation file of the version (streamed) into index rows."""
    storage = get_storage()
    rows: list[S.IndexRow] = []
    for f in _annotation_files(version, roles=S.INDEXED_ROLES):
        rows += S.index_rows_of_file(path=f.path, open_file=lambda key=f.storage_key: storage.open(key))
    return rows


def version_index_build(*, version_id: int) -> VersionIndex:
    """The version's index, built once (a second call returns the first)."""
    existing = VersionIndex.objects.filter(version_id=version_id).first()
    if existing is not None:
        return existing
    version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
    rows = version_index_rows(version=version)
    ctx = _commercial_context(version)
    summary = S.index_summary(rows=rows, **ctx)
    # The effective terms of each part, once, so a listing shows them without a query.
    parts = [summary["all"], summary["commercial"], *summary["splits"].values(), *summary["categories"].values()]
    for part in parts:
        part["terms"] = effective_terms(annotation_license=version.dataset.annotation_license, statistics=part["statistics"])
    data = orjson.dumps([r.to_dict() for r in rows])
    key = f"listings/index/{version.pk}/{hashlib.sha256(data).hexdigest()[:16]}.json"
    get_storage().put_bytes(key, data, content_type="application/json")
    try:
        with transaction.atomic():
            return VersionIndex.objects.create(version=version, storage_key=key, summary=summary)
    except IntegrityError:  # built meanwhile by another worker: keep theirs
        return VersionIndex.objects.get(version_id=version_id)


def version_index_request(*, version_id: int) -> None:
    """Have a worker build the version's index once this commits (unless it exists)."""
    if VersionIndex.objects.filter(version_id=version_id).exists():
        return

    def send() -> None:
        from marketplace.listings.tasks import version_index_task

        version_index_task.delay(version_id)

    transaction.on_commit(send)


def index_rows(index: VersionIndex) -> list[S.IndexRow]:
    return [S.IndexRow.from_dict(d) for d in orjson.loads(get_storage().read_bytes(index.storage_key))]


def subset_quote(*, version: DatasetVersion, subset: S.Subset, price: Decimal, set_prices: dict[str, str]) -> tuple[int, Decimal]:
    """Frames and price of a subset of the version, from its index (Conflict
    ``subset_not_ready`` while the index is being built, ``empty_subset`` when it holds
    nothing)."""
    index = VersionIndex.objects.filter(version=version).first()
    if index is None:
        version_index_request(version_id=version.pk)
        raise Conflict("The version's subsets are being indexed; try again in a minute.", code=ListingErrorCode.SUBSET_NOT_READY)
    ctx = _commercial_context(version)
    rows = S.subset_rows(index_rows(index), subset, **ctx)
    frames = sum(r.frames for r in rows)
    if frames == 0:
        raise Conflict(
            "That subset of the version holds no frames.",
            code=ListingErrorCode.EMPTY_SUBSET,
            details=[{"location": "subset", "message": f"{subset.key} is empty in this version", "code": "empty_subset"}],
        )
    total = int(index.summary.get("all", {}).get("frames") or 0)
    set_price = Decimal(set_prices[subset.key]) if subset.key in set_prices else None
    return frames, S.subset_price(price=price, frames=frames, total_frames=total, set_price=set_price)


# ---------------------------------------------------------------- selections


def selection_request(*, version: DatasetVersion, subset: S.Subset | None, withheld_file_ids: list[int]) -> Selection:
    """The selection for this subset and these withdrawn files: the existing one, or a new
    one a worker builds once this commits."""
    key = S.selection_key(subset=subset, withheld_file_ids=withheld_file_ids)
    selection, created = Selection.objects.get_or_create(
        version=version, key=key, defaults={"subset": subset.to_dict() if subset else {}, "withheld_file_ids": sorted(set(withheld_file_ids))}
    )
    if created or selection.state == SelectionState.FAILED:
        if selection.state == SelectionState.FAILED:
            Selection.objects.filter(pk=selection.pk).update(state=SelectionState.BUILDING, error="")
        selection_id = selection.pk

        def send() -> None:
            from marketplace.listings.tasks import selection_build_task

            selection_build_task.delay(selection_id)

        transaction.on_commit(send)
    return selection


def _media_files(version: DatasetVersion) -> list[DatasetFile]:
    """The version's media files a selection may serve: single files and the members
    extracted from archives, never the archives themselves."""
    return [
        f
        for f in version_files(version=version).filter(role__in=MEDIA_ROLES).order_by("role", "path")
        if not f.path.lower().endswith(".json") and not (f.source_id is None and S.is_archive(f.path))
    ]


def selection_build(*, selection_id: int) -> Selection:
    """Build a selection (the worker's step; idempotent: a built one is returned as it is).

    Keeps the index rows of the subset, drops the frames of withdrawn files, then writes
    every annotation file of the version filtered to the kept frames (its own object and
    sha256) and lists the kept media files."""
    selection = Selection.objects.select_related("version__dataset").get(pk=selection_id)
    if selection.state == SelectionState.READY:
        return selection
    try:
        return _build(selection)
    except Exception as exc:
        Selection.objects.filter(pk=selection.pk).update(state=SelectionState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000])
        raise


def files_named(names: set[str], files: list[DatasetFile]) -> dict[str, DatasetFile]:
    """The files frame names refer to: a name is its file's path, or (annotations naming
    files without their folder) the base name of exactly one file."""
    by_path = {f.path: f for f in files}
    by_base: dict[str, list[DatasetFile]] = {}
    for f in files:
        by_base.setdefault(f.path.rsplit("/", 1)[-1], []).append(f)
    out = {}
    for n in names:
        f = by_path.get(n)
        if f is None and len(by_base.get(n.rsplit("/", 1)[-1], [])) == 1:
            f = by_base[n.rsplit("/", 1)[-1]][0]
        if f is not None:
            out[n] = f
    return out


def _withdrawn_names(rows: list[S.IndexRow], media: list[DatasetFile], withheld: set[int]) -> set[str]:
    """The frame names of the index that are withdrawn files, and those files' paths."""
    if not withheld:
        return set()
    named = files_named({n for r in rows for n in r.names}, media)
    return {f.path for f in media if f.pk in withheld} | {n for n, f in named.items() if f.pk in withheld}


def _build(selection: Selection) -> Selection:
    version = selection.version
    storage = get_storage()
    index = version_index_build(version_id=version.pk)
    subset = S.subset_parse(selection.subset) if selection.subset else None
    rows = S.subset_rows(index_rows(index), subset, **_commercial_context(version))
    media = _media_files(version)
    withheld = set(selection.withheld_file_ids)
    withheld_names = _withdrawn_names(rows, media, withheld)
    keep_names = {n for r in rows for n in r.names if n not in withheld_names}
    categories = set(subset.categories) if subset and subset.kind == "categories" else None

    entries: list[SelectionEntry] = []
    pngs: set[str] = set()
    for f in _annotation_files(version):
        doc = orjson.loads(storage.read_bytes(f.storage_key))
        kept = S.annotation_filter(doc, keep_names=keep_names, categories=categories, drop_names=frozenset(withheld_names))
        if kept is None:
            continue
        pngs |= S.panoptic_pngs(kept)
        data = S.canonical_json(kept)
        key = f"listings/selections/{selection.pk}/{f.path}"
        storage.put_bytes(key, data, content_type="application/json")
        entries.append(
            SelectionEntry(
                selection=selection, role=f.role, path=f.path, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
                content_type="application/json", storage_key=key,
            )
        )
    kept_base = {n.rsplit("/", 1)[-1] for n in keep_names | pngs}
    frames = 0
    for f in media:
        if f.pk in withheld:
            continue
        if f.path in keep_names or f.path in pngs or f.path.rsplit("/", 1)[-1] in kept_base:
            entries.append(
                SelectionEntry(
                    selection=selection, file=f, role=f.role, path=f.path, size=f.size, sha256=f.sha256,
                    content_type=f.content_type or mimetypes.guess_type(f.path)[0] or "application/octet-stream", storage_key=f.storage_key,
                )
            )
            frames += f.role == "images"
    with transaction.atomic():
        locked = Selection.objects.select_for_update().get(pk=selection.pk)
        if locked.state == SelectionState.READY:
            return locked
        SelectionEntry.objects.filter(selection=locked).delete()
        SelectionEntry.objects.bulk_create(entries)
        locked.state, locked.built_at, locked.error = SelectionState.READY, timezone.now(), ""
        locked.frames = sum(r.frames for r in rows if any(n in keep_names for n in r.names))
        locked.save(update_fields=["state", "built_at", "error", "frames"])
    log.info("selection %s of version %s: %d files (%d frames)", selection.pk, version.pk, len(entries), frames)
    return locked


def entitlement_serving(*, entitlement, withheld_file_ids: list[int] | None = None) -> tuple[Any, bool]:
    """What the entitlement serves now: ``(files, pending)``. ``files`` is the version's
    buyer files for a whole-version entitlement, else the ready selection's entries: for a
    subset, or when a consent revocation withdrew some of the version's files (then the
    selection leaves them out and regenerates the annotation files without their frames).
    While the selection is still being built, ``pending`` is True and nothing is served
    yet (withdrawn files never are). Requests the selection when it does not exist (a
    worker builds it). ``withheld_file_ids``: the withdrawn files, when the caller read them.
    """
    subset = S.subset_parse(entitlement.subset) if entitlement.subset else None
    withheld = sorted(withdrawn_files(version_id=entitlement.version_id) if withheld_file_ids is None else set(withheld_file_ids))
    if subset is None and not withheld:
        return version_files(version=entitlement.version).filter(role__in=BUYER_FILE_ROLES).order_by("role", "path", "pk"), False
    selection = selection_request(version=entitlement.version, subset=subset, withheld_file_ids=withheld)
    if selection.state == SelectionState.READY:
        return selection.entries.all().order_by("role", "path", "pk"), False
    return SelectionEntry.objects.none(), True
