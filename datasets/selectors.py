"""Reads for datasets, versions, files, uploads and audit samples, with object-level
permission filtering: whoever may not see an object gets NotFound (404), never 403."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from datasets.errors import DatasetErrorCode
from datasets.ingest import VIDEO_FORMATS
from datasets.models import AuditSample, Dataset, DatasetFile, DatasetVersion, FileRole, UploadSession, VersionIngest, VocabularyTerm
from datasets.splits import evaluation_file, split_kind, split_name
from datasets.states import VersionState
from datasets.validation import FRAME_KEYS
from marketplace.accounts.models import OrganizationRole
from marketplace.accounts.selectors import organizations_for, seller_organizations
from marketplace.core.errors import NotFound
from marketplace.core.permissions import is_auditor, is_moderator, is_staff_member
from marketplace.core.storage import get_storage


def datasets_for_seller(*, user) -> QuerySet[Dataset]:
    """The datasets of the organizations the user sells for."""
    return (
        Dataset.objects.filter(owner__in=seller_organizations(user=user))
        .select_related("owner")
        .prefetch_related("embodiments", "tasks", "scene_types")
    )


def dataset_for_seller(*, user, slug: str) -> Dataset:
    dataset = datasets_for_seller(user=user).filter(slug=slug).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    return dataset


class VersionAccess(StrEnum):
    """What a caller wants to do with a version. :func:`version_visible` holds the one rule
    per purpose; every app asks it, so "who may see this version" has one answer."""

    # The public evidence (quality reports, checks, effective terms, provenance): anyone
    # once published; members of the owning organization and platform staff always.
    EVIDENCE = "evidence"
    # The seller's working view (validation report, manifest, uploads, pipeline jobs):
    # members of the owning organization and platform staff.
    INTERNALS = "internals"
    # Changing it (uploads, provenance, submit): seller members of the owning organization.
    CHANGE = "change"
    # Reading the audit sample: auditors and moderators, never a draft.
    AUDIT = "audit"
    # Posting the auditor's reference: auditors, never a draft.
    REFERENCE = "reference"
    # Deciding on it: moderators, any state.
    MODERATE = "moderate"


def version_allows(*, user, version: DatasetVersion, access: VersionAccess) -> bool:
    """Whether ``user`` may act on ``version`` for ``access`` (the rule table)."""
    if access == VersionAccess.EVIDENCE:
        return version.state == VersionState.PUBLISHED or is_staff_member(user) or _member(user, version)
    if access == VersionAccess.INTERNALS:
        return is_staff_member(user) or _member(user, version)
    if access == VersionAccess.CHANGE:
        return _member(user, version, role=OrganizationRole.SELLER)
    if access == VersionAccess.AUDIT:
        return (is_auditor(user) or is_moderator(user)) and version.state != VersionState.DRAFT
    if access == VersionAccess.REFERENCE:
        return is_auditor(user) and version.state != VersionState.DRAFT
    if access == VersionAccess.MODERATE:
        return is_moderator(user)
    raise ValueError(f"unknown access {access!r}")


def _member(user, version: DatasetVersion, *, role: str | None = None) -> bool:
    return organizations_for(user=user, role=role).filter(pk=version.dataset.owner_id).exists()


def version_visible(*, user, version_id: int, access: VersionAccess) -> DatasetVersion:
    """The version if ``user`` may act on it for ``access``; otherwise NotFound (404, never
    403: ids of hidden versions do not leak)."""
    version = DatasetVersion.objects.select_related("dataset__owner").filter(pk=version_id).first()
    if version is None or not version_allows(user=user, version=version, access=access):
        raise NotFound("No such version.", code=DatasetErrorCode.VERSION_NOT_FOUND)
    return version


def version_published_for_slug(*, slug: str) -> DatasetVersion:
    """The published version of the dataset ``slug`` (the one its listing sells), else
    NotFound."""
    version = DatasetVersion.objects.select_related("dataset", "dataset__owner").filter(dataset__slug=slug, state=VersionState.PUBLISHED).first()
    if version is None:
        raise NotFound("No such listing.", code=DatasetErrorCode.LISTING_NOT_FOUND)
    return version


def upload_for_seller(*, user, upload_id: str) -> UploadSession:
    """An upload of the user's seller organizations, or the auditor's own reference upload
    (the seller never sees nor touches that one)."""
    try:
        sellers = Q(organization__in=seller_organizations(user=user)) & ~Q(role=FileRole.REFERENCE)
        auditor = Q(role=FileRole.REFERENCE, created_by=user)
        upload = UploadSession.objects.select_related("version__dataset").filter(sellers | auditor, pk=upload_id).first()
        if upload is not None and upload.role == FileRole.REFERENCE and not is_auditor(user):
            upload = None  # no longer an auditor
    except Exception:  # noqa: BLE001 - a malformed uuid is simply not found
        upload = None
    if upload is None:
        raise NotFound("No such upload.")
    return upload


def version_files(*, version: DatasetVersion, role: str | None = None) -> QuerySet[DatasetFile]:
    qs = DatasetFile.objects.filter(version=version)
    return qs.filter(role=role) if role else qs


def _open_json_file(dfile: DatasetFile):
    return get_storage().open(dfile.storage_key)


def version_coco(*, version: DatasetVersion, role: str = "annotations") -> dict | None:
    """The parsed COCO dict of that role (the first such file by path). Loads it whole:
    for evaluation inputs (reference, sample-sized), not for streaming validation."""
    import orjson

    dfile = (
        version_files(version=version, role=role).filter(content_type="application/json").order_by("path").first()
        or version_files(version=version, role=role).filter(path__endswith=".json").order_by("path").first()
    )
    if dfile is None:
        return None
    return orjson.loads(get_storage().read_bytes(dfile.storage_key))


def version_audit_sample(*, version: DatasetVersion) -> list[int]:
    sample = AuditSample.objects.filter(version=version).order_by("created_at").first()
    return list(sample.image_ids) if sample else []


def version_audit_reference(*, version: DatasetVersion) -> dict | None:
    return version_coco(version=version, role=FileRole.REFERENCE)


def version_reference_is_panoptic(*, version: DatasetVersion) -> bool:
    """Whether the auditor's reference is a panoptic one (a JSON with its PNGs)."""
    return version_files(version=version, role=FileRole.REFERENCE).filter(content_type="image/png").exists()


def version_png_index(*, version: DatasetVersion, role: str) -> dict[str, DatasetFile]:
    """The version's PNG files of ``role`` by base name: a PNG named in an uploaded panoptic
    JSON is looked up here (the version's own file index), never joined to a path."""
    index: dict[str, DatasetFile] = {}
    for row in version_files(version=version, role=role).filter(path__iendswith=".png").order_by("path"):
        index.setdefault(row.path.rsplit("/", 1)[-1], row)
    return index


def version_reference_cache_key(*, version: DatasetVersion) -> str | None:
    ingest = VersionIngest.objects.filter(version=version).first()
    return (ingest.reference_cache_key or None) if ingest else None


def version_ingest_info(*, version: DatasetVersion) -> VersionIngest | None:
    return VersionIngest.objects.filter(version=version).first()


def audit_samples_pending() -> QuerySet[DatasetVersion]:
    """Versions with a drawn sample and no reference yet, still in the pipeline."""
    has_sample = AuditSample.objects.filter(version=OuterRef("pk"))
    has_reference = DatasetFile.objects.filter(version=OuterRef("pk"), role=FileRole.REFERENCE)
    return (
        DatasetVersion.objects.filter(
            Exists(has_sample), ~Exists(has_reference), state__in=[VersionState.PROCESSING, VersionState.IN_REVIEW]
        )
        .select_related("dataset")
        .order_by("submitted_at", "pk")
    )


def version_annotation_files(*, version: DatasetVersion) -> list[DatasetFile]:
    """The version's annotation files, one per split (``datasets.splits``), by path."""
    return list(version_files(version=version, role=FileRole.ANNOTATIONS).filter(path__iendswith=".json").order_by("path"))


def version_annotations(*, version: DatasetVersion) -> dict | None:
    """The version's annotations over every split as one COCO dict (images, annotations and
    licenses of all splits; the categories, which ingest checked are the same, of the
    first); each image carries its ``split``. None without an annotation file."""
    import orjson

    files = version_annotation_files(version=version)
    if not files:
        return None
    storage = get_storage()
    merged: dict | None = None
    for dfile in files:
        doc = orjson.loads(storage.read_bytes(dfile.storage_key))
        if len(files) == 1:
            return doc
        name = split_name(dfile.path)
        for img in doc.get("images", []):
            img["split"] = name
        if merged is None:
            merged = {**doc, "images": list(doc.get("images", [])), "annotations": list(doc.get("annotations", [])), "licenses": list(doc.get("licenses") or [])}
            continue
        merged["images"] += doc.get("images", [])
        merged["annotations"] += doc.get("annotations", [])
        seen = {(lic.get("id"), lic.get("name")) for lic in merged["licenses"]}
        merged["licenses"] += [lic for lic in doc.get("licenses") or [] if (lic.get("id"), lic.get("name")) not in seen]
    return merged


def version_annotations_on(*, version: DatasetVersion, image_ids) -> dict | None:
    """What :func:`version_annotations` gives, restricted to the images ``image_ids`` (an
    audit sample): the files are streamed (ijson), so memory holds those images'
    annotations, never a whole annotation file. None without an annotation file."""
    import ijson

    files = version_annotation_files(version=version)
    if not files:
        return None
    wanted = {int(i) for i in image_ids}
    storage = get_storage()
    out: dict = {"images": [], "annotations": [], "categories": None, "licenses": []}
    seen_licenses: set = set()
    for dfile in files:
        name = split_name(dfile.path) if len(files) > 1 else None
        for prefix in ("images", "annotations", "categories", "licenses"):
            if prefix == "categories" and out["categories"] is not None:
                continue
            with storage.open(dfile.storage_key) as fh:
                items = ijson.items(fh, f"{prefix}.item", use_float=True)
                if prefix == "images":
                    for img in items:
                        if img.get("id") in wanted:
                            if name is not None:
                                img["split"] = name
                            out["images"].append(img)
                elif prefix == "annotations":
                    out["annotations"] += [a for a in items if a.get("image_id") in wanted]
                elif prefix == "categories":
                    out["categories"] = list(items)
                else:
                    for lic in items:
                        if (lic.get("id"), lic.get("name")) not in seen_licenses:
                            seen_licenses.add((lic.get("id"), lic.get("name")))
                            out["licenses"].append(lic)
    out["categories"] = out["categories"] or []
    return out


def version_annotations_streamed(*, version: DatasetVersion) -> tuple[list[dict], list[dict], Iterator[dict]] | None:
    """The version's annotations over every split as :func:`version_annotations` gives them,
    streamed (ijson): ``(images, categories, annotations)``, the images as their id and
    size, the annotations an iterator that reads the files as it goes. Memory holds the
    images' sizes, never a whole annotation file. None without an annotation file."""
    import ijson

    files = version_annotation_files(version=version)
    if not files:
        return None
    storage = get_storage()
    images: list[dict] = []
    categories: list[dict] | None = None
    for dfile in files:
        with storage.open(dfile.storage_key) as fh:
            images += [{"id": i.get("id"), "height": i.get("height"), "width": i.get("width")} for i in ijson.items(fh, "images.item", use_float=True)]
        if categories is None:
            with storage.open(dfile.storage_key) as fh:
                categories = list(ijson.items(fh, "categories.item", use_float=True))

    def annotations() -> Iterator[dict]:
        for dfile in files:
            with storage.open(dfile.storage_key) as fh:
                yield from ijson.items(fh, "annotations.item", use_float=True)

    return images, categories or [], annotations()


def version_evaluation_annotations(*, version: DatasetVersion) -> tuple[dict | None, str, str]:
    """The annotation file a buyer's public evaluation is drawn from
    (``datasets.splits.evaluation_file``), parsed: ``(coco, split name, split kind)``."""
    import orjson

    dfile = evaluation_file(version_annotation_files(version=version))
    if dfile is None:
        return None, "", ""
    name = split_name(dfile.path)
    return orjson.loads(get_storage().read_bytes(dfile.storage_key)), name, split_kind(name)


def version_evaluation_reference(*, version: DatasetVersion, dest: Path) -> Path | None:
    """The mask cache of the annotation file a buyer's evaluation is scored against, as a
    local file at ``dest``: the one ingest stored for that file (streamed from storage), else
    built here by streaming the file (ijson: images and categories as they come,
    annotations in chunks through the engine's gate). The annotation JSON is never parsed
    whole into Python objects. None when the version has no annotation file."""
    import ijson

    from quality.engine.cache import build_reference_cache

    dfile = evaluation_file(version_annotation_files(version=version))
    if dfile is None:
        return None
    dest.parent.mkdir(parents=True, exist_ok=True)
    cached = version_files(version=version, role=FileRole.CACHE).filter(source=dfile).order_by("pk").first()
    if cached is not None:
        _stream_to(cached.storage_key, dest)
        return dest
    source = _stream_to(dfile.storage_key, dest.with_name(dest.name + ".json"))
    try:
        with open(source, "rb") as fh:
            images = [{"id": i.get("id"), "height": i.get("height"), "width": i.get("width")} for i in ijson.items(fh, "images.item")]
        with open(source, "rb") as fh:
            categories = list(ijson.items(fh, "categories.item", use_float=True))
        with open(source, "rb") as fh:
            cache = build_reference_cache(images=images, categories=categories, annotations=ijson.items(fh, "annotations.item", use_float=True), with_masks=True)
    finally:
        source.unlink(missing_ok=True)
    cache.save(dest)
    return dest


def _stream_to(key: str, dest: Path) -> Path:
    from marketplace.core.storage import CHUNK

    with get_storage().open(key) as src, open(dest, "wb") as out:
        while chunk := src.read(CHUNK):
            out.write(chunk)
    return dest


def _sample_sources(*, version: DatasetVersion) -> tuple[list[DatasetFile], bool]:
    """The files an image audit sample is drawn from: every split's annotation file, else
    (a panoptic-only version) the panoptic JSON files. (files, panoptic)"""
    files = version_annotation_files(version=version)
    if files:
        return files, False
    return list(version_files(version=version, role=FileRole.PANOPTIC).filter(path__iendswith=".json").order_by("path")), True


@dataclass
class ImageStrata:
    """What the audit sample is stratified by: each image's split and categories."""

    image_ids: list[int] = field(default_factory=list)
    categories: dict[int, set[int]] = field(default_factory=dict)  # image id -> category ids
    category_images: dict[int, int] = field(default_factory=dict)  # category id -> images holding it
    split: dict[int, str] = field(default_factory=dict)  # image id -> split name


def version_image_strata(*, version: DatasetVersion) -> ImageStrata:
    """Image ids, each image's split and category ids, and images per category, from every
    split's annotation file (or the panoptic JSON of a panoptic-only version).

    A file with a mask cache (instances formats, stored by ingest) is read from the cache's
    id arrays alone (no JSON is parsed); any other is streamed with ijson (memory grows with
    images, not with the files)."""
    files, panoptic = _sample_sources(version=version)
    caches = {} if panoptic else _mask_caches(version=version, files=files)
    out = ImageStrata()
    for dfile in files:
        name = split_name(dfile.path)
        if dfile.pk in caches:
            _strata_from_cache(out, caches[dfile.pk], name)
        else:
            _strata_from_json(out, dfile, name, panoptic)
    for cats in out.categories.values():
        for c in cats:
            out.category_images[c] = out.category_images.get(c, 0) + 1
    return out


def _mask_caches(*, version: DatasetVersion, files: list[DatasetFile]) -> dict[int, DatasetFile]:
    """The mask cache ingest stored for each of ``files`` (by the file's id), where it did."""
    rows = DatasetFile.objects.filter(version=version, role=FileRole.CACHE, source__in=files).order_by("pk")
    return {row.source_id: row for row in rows}


def _strata_from_cache(out: ImageStrata, cache: DatasetFile, name: str) -> None:
    import tempfile

    with tempfile.TemporaryFile() as tmp:
        with get_storage().open(cache.storage_key) as src:
            while block := src.read(1 << 22):
                tmp.write(block)
        tmp.seek(0)
        strata_from_cache_file(out, tmp, name, where=cache.path)


def strata_from_cache_file(out: ImageStrata, file: Any, name: str, *, where: str) -> None:
    """Add the images of one split (``name``) to ``out`` from its mask cache (a path or a
    seekable file): only the id arrays are read from the archive, never the masks."""
    import numpy as np

    with np.load(file, allow_pickle=False) as z:
        img_ids, ann_img, ann_cat = z["img_ids"], z["ann_image_ids"], z["ann_category_ids"]
    if len(ann_img) != len(ann_cat):
        raise ValueError(f"{where}: the mask cache's annotation arrays differ in length")
    ids = img_ids.tolist()
    out.image_ids.extend(ids)
    out.split.update(dict.fromkeys(ids, name))
    if not len(ann_img):
        return
    order = np.lexsort((ann_cat, ann_img))
    img, cat = ann_img[order], ann_cat[order]
    first = np.concatenate(([True], (img[1:] != img[:-1]) | (cat[1:] != cat[:-1])))
    img, cat = img[first], cat[first]  # distinct (image, category) pairs, by image
    starts = np.flatnonzero(np.concatenate(([True], img[1:] != img[:-1])))
    ends = np.append(starts[1:], len(img))
    cats = cat.tolist()
    for image_id, a, b in zip(img[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
        out.categories.setdefault(image_id, set()).update(cats[a:b])


def _strata_from_json(out: ImageStrata, dfile: DatasetFile, name: str, panoptic: bool) -> None:
    import ijson

    storage = get_storage()
    with storage.open(dfile.storage_key) as fh:
        for image_id in ijson.items(fh, "images.item.id"):
            out.image_ids.append(int(image_id))
            out.split[int(image_id)] = name
    with storage.open(dfile.storage_key) as fh:
        for ann in ijson.items(fh, "annotations.item"):
            cats = out.categories.setdefault(int(ann["image_id"]), set())
            if panoptic:
                cats.update(int(seg["category_id"]) for seg in ann.get("segments_info") or [])
            else:
                cats.add(int(ann["category_id"]))


def version_image_categories(*, version: DatasetVersion) -> tuple[list[int], dict[int, set[int]], dict[int, int]]:
    """Image ids, each image's category ids and images per category (see
    :func:`version_image_strata`)."""
    strata = version_image_strata(version=version)
    return strata.image_ids, strata.categories, strata.category_images


# An image file is an extracted archive member or an uploaded image, never the archive.
_ARCHIVE_PATH = r"\.(zip|tar|tgz|tar\.gz)$"


def version_image_files(*, version: DatasetVersion, file_names: Iterable[str]) -> dict[str, DatasetFile]:
    """The version's image (or frame) files named by annotation ``file_name`` values, in one
    query: the file at that path, else one whose path ends with the same base name (images
    uploaded in a folder the annotations do not name). Names with no file are absent."""
    names = sorted({str(n) for n in file_names if n})
    if not names:
        return {}
    bases = {n.rsplit("/", 1)[-1] for n in names}
    wanted = Q(path__in=names)
    for base in sorted(bases):
        wanted |= Q(path__endswith=f"/{base}") | Q(path=base)
    rows = list(
        version_files(version=version, role=FileRole.IMAGES)
        .filter(Q(source__isnull=False) | ~Q(path__regex=_ARCHIVE_PATH))
        .filter(wanted)
        .order_by("path", "pk")
    )
    exact = {f.path: f for f in rows}
    by_base: dict[str, DatasetFile] = {}
    for f in rows:
        by_base.setdefault(f.path.rsplit("/", 1)[-1], f)
    out: dict[str, DatasetFile] = {}
    for name in names:
        found = exact.get(name) or by_base.get(name.rsplit("/", 1)[-1])
        if found is not None:
            out[name] = found
    return out


def audit_sample_files(*, version: DatasetVersion, ttl: int = 600, image_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The sample's images (``image_ids`` when the caller read the sample) with short-lived
    download URLs."""
    import ijson

    sample = set(version_audit_sample(version=version) if image_ids is None else image_ids)
    if not sample:
        return []
    storage = get_storage()
    names: dict[int, str] = {}
    for dfile in _sample_sources(version=version)[0]:
        with storage.open(dfile.storage_key) as fh:
            for img in ijson.items(fh, "images.item"):
                if int(img["id"]) in sample:
                    names[int(img["id"])] = img.get("file_name", "")
    image_files = {
        f.path: f
        for f in version_files(version=version, role=FileRole.IMAGES).filter(
            Q(source__isnull=False) | ~Q(path__regex=r"\.(zip|tar|tgz|tar\.gz)$")
        )
    }
    by_base: dict[str, DatasetFile] = {}
    for path, f in image_files.items():
        by_base.setdefault(path.rsplit("/", 1)[-1], f)
    out = []
    for image_id in sorted(sample):
        name = names.get(image_id, "")
        f = image_files.get(name) or by_base.get(name.rsplit("/", 1)[-1])
        out.append(
            {
                "image_id": image_id,
                "file_name": name,
                "url": storage.download_url(f.storage_key, ttl=ttl, filename=name.rsplit("/", 1)[-1]) if f else None,
            }
        )
    return out


def dataset_other_versions(*, version: DatasetVersion) -> QuerySet[DatasetVersion]:
    """The other versions of ``version``'s dataset, newest first (drafts included: a
    moderator reads the whole history)."""
    return DatasetVersion.objects.filter(dataset_id=version.dataset_id).exclude(pk=version.pk).order_by("-number")


def organization_other_datasets(*, version: DatasetVersion) -> QuerySet[Dataset]:
    """The other datasets of the organization that owns ``version``, each with its published
    version, if any, as ``published`` (a list of at most one version)."""
    published = Prefetch("versions", queryset=DatasetVersion.objects.filter(state=VersionState.PUBLISHED), to_attr="published")
    return Dataset.objects.filter(owner_id=version.dataset.owner_id).exclude(pk=version.dataset_id).prefetch_related(published).order_by("title", "pk")


# ---------------------------------------------------------------- video versions



def version_video_files(*, version: DatasetVersion) -> list[tuple[DatasetFile, str]]:
    """Every annotation file of a video version (its splits, its tracks files) with their
    format, in (role, path) order; empty for a version without video. Ingest made sure
    they are one format and never share a video id."""
    ingest = VersionIngest.objects.filter(version=version).first()
    if ingest is None or ingest.format not in VIDEO_FORMATS:
        return []
    files = version_files(version=version).filter(role__in=[FileRole.ANNOTATIONS, FileRole.VIDEO], path__endswith=".json").order_by("role", "path")
    return [(dfile, ingest.format) for dfile in files]


def version_video_file(*, version: DatasetVersion) -> tuple[DatasetFile, str] | None:
    """The first of a video version's annotation files and its format (``youtube_vis`` or
    ``coco_video``, as ingest found it), or None for a version without video."""
    files = version_video_files(version=version)
    return files[0] if files else None


def version_videos(*, version: DatasetVersion) -> list[dict[str, Any]]:
    """Every video of a video version, streamed from each of its annotation files:
    ``{"video_id", "file" (the annotation file's path), "height", "width", "file_names"
    (frame order), "image_ids" (COCO with tracks, else None), "annotated" (frames holding
    a mask)}``, by video id."""
    videos: dict[int, dict[str, Any]] = {}
    for dfile, fmt in version_video_files(version=version):
        videos.update(_file_videos(dfile, fmt))
    return [videos[k] for k in sorted(videos)]


def _file_videos(dfile: DatasetFile, fmt: str) -> dict[int, dict[str, Any]]:
    storage = get_storage()
    if fmt != "youtube_vis":
        return file_videos(lambda: storage.open(dfile.storage_key), dfile.path, fmt)
    import shutil
    import tempfile

    # a local copy, for the compiled reader (it maps the file)
    with tempfile.NamedTemporaryFile(suffix=".json") as tmp:
        with storage.open(dfile.storage_key) as src:
            shutil.copyfileobj(src, tmp, 1 << 22)
        tmp.flush()
        return file_videos(lambda: open(tmp.name, "rb"), dfile.path, fmt, local=Path(tmp.name))


def file_videos(open_file: Callable[[], Any], path: str, fmt: str, *, local: Path | None = None) -> dict[int, dict[str, Any]]:
    """The videos of one annotation file (see :func:`version_videos`); ``open_file()`` opens
    it for reading (each call a new stream). A YouTube-VIS file's videos are read from their
    section alone; which frames hold a mask comes from the compiled reader when the file is
    ``local`` (and the reader takes it), else from streaming its annotations."""
    import ijson

    videos: dict[int, dict[str, Any]] = {}
    if fmt == "youtube_vis":
        from datasets.ingest.scene import section_items
        from quality.engine.scene import ytvis_masked_frames

        with open_file() as fh:
            for v in section_items(fh, "videos"):
                videos[int(v["id"])] = {
                    "video_id": int(v["id"]), "file": path, "height": int(v["height"]), "width": int(v["width"]),
                    "file_names": list(v["file_names"]), "image_ids": None, "annotated": set(),
                }
        masked = ytvis_masked_frames(local) if local is not None else None
        if masked is not None:
            for vid, frames in masked.items():
                if vid in videos:
                    videos[vid]["annotated"].update(frames)
            return videos
        with open_file() as fh:
            for ann in ijson.items(fh, "annotations.item"):
                video = videos.get(int(ann["video_id"]))
                if video is not None:
                    video["annotated"].update(f for f, seg in enumerate(ann.get("segmentations") or []) if seg)
        return videos
    frames: dict[int, list[tuple[int, dict]]] = {}
    with open_file() as fh:
        for img in ijson.items(fh, "images.item"):
            index = next(img[k] for k in FRAME_KEYS if k in img)  # validation made sure there is one
            frames.setdefault(int(img["video_id"]), []).append((int(index), img))
    position: dict[int, tuple[int, int]] = {}
    for vid, items in frames.items():
        items.sort(key=lambda x: x[0])
        first = items[0][1]
        videos[vid] = {
            "video_id": vid, "file": path, "height": int(first["height"]), "width": int(first["width"]),
            "file_names": [img.get("file_name", "") for _, img in items], "image_ids": [int(img["id"]) for _, img in items],
            "annotated": set(),
        }
        for pos, (_, img) in enumerate(items):
            position[int(img["id"])] = (vid, pos)
    with open_file() as fh:
        for image_id in ijson.items(fh, "annotations.item.image_id"):
            if (where := position.get(int(image_id))) is not None:
                videos[where[0]]["annotated"].add(where[1])
    return videos


def version_video_subset(*, version: DatasetVersion, video_ids: set[int]) -> dict[str, Any] | None:
    """The video annotations restricted to the videos ``video_ids``, gathered from every
    annotation file of the version (YouTube-VIS: ``videos`` and ``annotations``; COCO with
    tracks: the frames of those videos and their annotations), with the categories (the
    first file's: ingest made the splits share them): streamed, so memory grows with those
    videos, not with the files. None for a version without video."""
    import ijson

    found = version_video_files(version=version)
    if not found:
        return None
    storage = get_storage()

    def items(dfile: DatasetFile, prefix: str):
        with storage.open(dfile.storage_key) as fh:
            yield from ijson.items(fh, f"{prefix}.item", use_float=True)

    fmt = found[0][1]
    out: dict[str, Any] = {"categories": list(items(found[0][0], "categories"))}
    if fmt == "youtube_vis":
        out["videos"], out["annotations"] = [], []
        for dfile, _fmt in found:
            out["videos"] += [v for v in items(dfile, "videos") if int(v["id"]) in video_ids]
            out["annotations"] += [a for a in items(dfile, "annotations") if int(a["video_id"]) in video_ids]
    else:
        out["images"], out["annotations"] = [], []
        for dfile, _fmt in found:
            images = [img for img in items(dfile, "images") if int(img["video_id"]) in video_ids]
            frames = {int(img["id"]) for img in images}
            out["images"] += images
            out["annotations"] += [a for a in items(dfile, "annotations") if int(a["image_id"]) in frames]
    return out


def version_audit_clips(*, version: DatasetVersion) -> list[dict[str, Any]]:
    """The drawn clips of a video version's audit sample (empty for image versions)."""
    sample = AuditSample.objects.filter(version=version).order_by("created_at").first()
    return list(sample.clips) if sample else []


def audit_sample_listing(*, version: DatasetVersion, ttl: int = 600) -> dict[str, list[dict[str, Any]]]:
    """What an auditor annotates: ``images`` (image versions) or ``frames`` and ``clips``
    (video versions), each with short-lived download URLs."""
    sample = AuditSample.objects.filter(version=version).order_by("created_at").first()
    if sample is not None and sample.clips:
        return {"images": [], "frames": _clip_frames(version=version, clips=sample.clips, ttl=ttl), "clips": list(sample.clips)}
    images = audit_sample_files(version=version, ttl=ttl, image_ids=list(sample.image_ids) if sample else [])
    return {"images": images, "frames": [], "clips": []}


def _clip_frames(*, version: DatasetVersion, clips: list[dict[str, Any]], ttl: int) -> list[dict[str, Any]]:
    """The sampled frames ``{"video_id", "frame_index", "file_name", "url"}`` of ``clips``."""
    files = version_image_files(version=version, file_names=(c["file_names"][i] for c in clips for i in c["frame_indices"]))
    storage = get_storage()
    frames = []
    for clip in clips:
        for index in clip["frame_indices"]:
            name = clip["file_names"][index]
            f = files.get(name)
            url = storage.download_url(f.storage_key, ttl=ttl, filename=name.rsplit("/", 1)[-1]) if f else None
            frames.append({"video_id": clip["video_id"], "frame_index": index, "file_name": name, "url": url})
    return frames


def vocabulary_terms(*, kind: str | None = None) -> QuerySet[VocabularyTerm]:
    """The terms of one vocabulary, or of all, by kind and slug (public: no permission)."""
    qs = VocabularyTerm.objects.order_by("kind", "slug")
    return qs.filter(kind=kind) if kind else qs
