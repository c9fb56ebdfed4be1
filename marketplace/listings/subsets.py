"""Declared subsets of a version, and the files an entitlement serves.

A buyer may order a subset instead of a whole version: the commercially usable subset
(the images whose license grants commercial use, when the annotation license does), a
split (one annotation file), or a set of categories (the images holding an instance of
one of them). Each is read from the version's *index*: one row per image (per video for
YouTube-VIS) with its annotation file, split, license, categories, frame count and the
file names of its frames, built once from the annotation files by a worker.

The files an entitlement serves are the version's files (buyer roles), unless it holds a
subset or some files were withdrawn (a consent revocation): then a *selection* serves
them: the media files of the kept frames as they are, and every annotation file
regenerated for the kept frames only (filtered COCO, YouTube-VIS or panoptic JSON with
its own sha256). A selection is built once per (version, subset, withdrawn files) and
shared by every entitlement that needs it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import ijson

from marketplace.core.errors import InvalidInput, field_error
from marketplace.listings.errors import ListingErrorCode

SUBSET_KINDS = ("commercial", "split", "categories")
# Annotation files whose images make up a version's frames; second passes annotate the same
# frames again (they are filtered like the others, never indexed).
INDEXED_ROLES = ("annotations", "video", "panoptic")
ANNOTATION_ROLES = ("annotations", "second_pass", "video", "panoptic")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
# Attributes an image or video may carry that name who or what was recorded; the consent
# ledger covers sessions, episodes, videos and consent ids by them.
SUBJECT_ATTRIBUTES = ("session_id", "episode_id", "video_id", "consent_id")


@dataclass(frozen=True)
class Subset:
    kind: str
    split: str = ""
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        if self.kind == "split":
            return f"split:{self.split}"
        if self.kind == "categories":
            return "categories:" + ",".join(self.categories)
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "split":
            out["split"] = self.split
        if self.kind == "categories":
            out["categories"] = list(self.categories)
        return out


def subset_parse(data: Any, *, location: str = "subset") -> Subset | None:
    """The subset an order names (None: the whole version); InvalidInput ``invalid_subset``
    with locations otherwise."""
    if data in (None, {}):
        return None

    def bad(where: str, message: str) -> InvalidInput:
        return InvalidInput("The subset is not valid.", code=ListingErrorCode.INVALID_SUBSET, details=[field_error(where, message, "invalid_subset")])

    if not isinstance(data, dict):
        raise bad(location, "an object such as {\"kind\": \"commercial\"}")
    kind = data.get("kind")
    if kind not in SUBSET_KINDS:
        raise bad(f"{location}.kind", f"one of {', '.join(SUBSET_KINDS)}")
    unknown = sorted(set(data) - {"kind", "split", "categories"})
    if unknown:
        raise bad(f"{location}.{unknown[0]}", "unknown field")
    if kind == "split":
        split = data.get("split")
        if not isinstance(split, str) or not split.strip() or len(split) > 120:
            raise bad(f"{location}.split", "the split's name")
        return Subset(kind="split", split=split.strip())
    if kind == "categories":
        cats = data.get("categories")
        if not isinstance(cats, list) or not cats or len(cats) > 500 or not all(isinstance(c, str) and c.strip() for c in cats):
            raise bad(f"{location}.categories", "a non-empty list of category names")
        return Subset(kind="categories", categories=tuple(sorted({c.strip() for c in cats})))
    return Subset(kind="commercial")


def split_name(path: str) -> str:
    """A split is an annotation file, named by its stem (``annotations/train.json`` → ``train``)."""
    name = path.rsplit("/", 1)[-1]
    return name[: -len(".json")] if name.lower().endswith(".json") else name


# ---------------------------------------------------------------- the index


@dataclass
class IndexRow:
    """One image (or one video) of an annotation file."""

    file: str  # the annotation file's path
    id: int
    names: list[str]  # its frames' file names
    license: dict | None  # the licenses[] entry {"name", "url"} it refers to
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # session_id, episode_id, video_id

    @property
    def frames(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "id": self.id, "names": self.names, "license": self.license, "categories": self.categories, "attributes": self.attributes}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexRow:
        return cls(file=d["file"], id=d["id"], names=d["names"], license=d["license"], categories=d["categories"], attributes=d.get("attributes") or {})


def _stream(fh_factory, prefix: str) -> Iterable[Any]:
    with fh_factory() as fh:
        yield from ijson.items(fh, prefix, use_float=True)


def index_rows_of_file(*, path: str, open_file) -> list[IndexRow]:
    """The rows of one annotation file, streamed (``open_file()`` opens it for reading)."""
    licenses = {lic.get("id"): {"name": str(lic.get("name") or ""), "url": str(lic.get("url") or "")} for lic in _stream(open_file, "licenses.item") if isinstance(lic, dict)}
    categories = {c.get("id"): str(c.get("name") or c.get("id")) for c in _stream(open_file, "categories.item") if isinstance(c, dict)}
    rows: dict[int, IndexRow] = {}
    video = False
    for vid in _stream(open_file, "videos.item"):
        video = True
        rows[vid["id"]] = IndexRow(
            file=path, id=vid["id"], names=[str(n) for n in vid.get("file_names") or []], license=licenses.get(vid.get("license")),
            attributes=_attributes(vid, fallback_video=vid.get("name") or str(vid["id"])),
        )
    if not video:
        for img in _stream(open_file, "images.item"):
            rows[img["id"]] = IndexRow(file=path, id=img["id"], names=[str(img.get("file_name") or "")], license=licenses.get(img.get("license")), attributes=_attributes(img))
    owner = "video_id" if video else "image_id"
    seen: dict[int, set[str]] = {}
    for ann in _stream(open_file, "annotations.item"):
        if not isinstance(ann, dict):
            continue
        cats = [ann.get("category_id")] if "segments_info" not in ann else [s.get("category_id") for s in ann.get("segments_info") or []]
        row_id = ann.get(owner)
        for cat in cats:
            if row_id in rows and cat in categories:
                seen.setdefault(row_id, set()).add(categories[cat])
    for row_id, names in seen.items():
        rows[row_id].categories = sorted(names)
    return list(rows.values())


def _attributes(item: dict, fallback_video: str | None = None) -> dict[str, str]:
    out = {a: str(item[a]) for a in SUBJECT_ATTRIBUTES if item.get(a) not in (None, "")}
    if fallback_video is not None:
        out.setdefault("video_id", fallback_video)
    return out


def index_summary(*, rows: list[IndexRow], commercial_licenses: set[str], resolve, annotation_commercial: bool) -> dict[str, Any]:
    """Frames, images and license counts (as effective terms read them) of the whole version,
    each split, the commercially usable subset, and each category."""

    def tally(selected: Iterable[IndexRow]) -> dict[str, Any]:
        selected = list(selected)
        licenses: dict[tuple[str, str], int] = {}
        without = 0
        for r in selected:
            if r.license is None:
                without += r.frames
            else:
                key = (r.license["name"], r.license["url"])
                licenses[key] = licenses.get(key, 0) + r.frames
        return {
            "frames": sum(r.frames for r in selected),
            "items": len(selected),
            "statistics": {
                "images": sum(r.frames for r in selected),
                "licenses": [{"id": i, "name": n, "url": u, "images": c} for i, ((n, u), c) in enumerate(sorted(licenses.items()), start=1)],
                "images_without_license": without,
            },
        }

    commercial = [r for r in rows if annotation_commercial and is_commercial(r, commercial_licenses, resolve)]
    splits = sorted({split_name(r.file) for r in rows})
    categories = sorted({c for r in rows for c in r.categories})
    return {
        "all": tally(rows),
        "commercial": tally(commercial),
        "splits": {s: tally(r for r in rows if split_name(r.file) == s) for s in splits},
        "categories": {c: tally(r for r in rows if c in r.categories) for c in categories},
    }


def is_commercial(row: IndexRow, commercial_licenses: set[str], resolve) -> bool:
    if row.license is None:
        return False
    return resolve(row.license) in commercial_licenses


def subset_rows(rows: list[IndexRow], subset: Subset | None, *, commercial_licenses: set[str], resolve, annotation_commercial: bool) -> list[IndexRow]:
    if subset is None:
        return list(rows)
    if subset.kind == "commercial":
        return [r for r in rows if annotation_commercial and is_commercial(r, commercial_licenses, resolve)]
    if subset.kind == "split":
        return [r for r in rows if split_name(r.file) == subset.split]
    wanted = set(subset.categories)
    return [r for r in rows if wanted & set(r.categories)]


def subset_price(*, price: Decimal, frames: int, total_frames: int, set_price: Decimal | None = None) -> Decimal:
    """The seller's price for the subset, else the listing's price pro rata by frames
    (rounded half up to the cent)."""
    if set_price is not None:
        return set_price
    if total_frames <= 0:
        return Decimal("0.00")
    return (price * frames / total_frames).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- filtering


def _kept(name: str, keep: set[str], keep_base: set[str]) -> bool:
    return name in keep or name.rsplit("/", 1)[-1] in keep_base


def annotation_filter(doc: dict[str, Any], *, keep_names: set[str], categories: set[str] | None, drop_names: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """A COCO, COCO-video, YouTube-VIS or panoptic document reduced to the frames named in
    ``keep_names`` (and, with ``categories``, to instances of those categories and the
    frames holding one). A frame named exactly in ``drop_names`` (withdrawn) is never kept,
    whatever its base name. None when no frame is left."""
    keep_base = {n.rsplit("/", 1)[-1] for n in keep_names}

    def kept(name: str) -> bool:
        return name not in drop_names and _kept(name, keep_names, keep_base)
    cat_ids = None
    out = dict(doc)
    if categories is not None:
        cat_ids = {c["id"] for c in doc.get("categories") or [] if str(c.get("name") or c.get("id")) in categories}
        out["categories"] = [c for c in doc.get("categories") or [] if c["id"] in cat_ids]

    if "videos" in doc:
        videos, frames_kept = [], {}
        for v in doc["videos"]:
            idx = [i for i, n in enumerate(v.get("file_names") or []) if kept(str(n))]
            if idx:
                frames_kept[v["id"]] = idx
                videos.append({**v, "file_names": [v["file_names"][i] for i in idx], "length": len(idx)})
        anns = []
        for a in doc.get("annotations") or []:
            idx = frames_kept.get(a.get("video_id"))
            if idx is None or (cat_ids is not None and a.get("category_id") not in cat_ids):
                continue
            a = dict(a)
            for key in ("segmentations", "areas", "bboxes"):
                if isinstance(a.get(key), list):
                    a[key] = [a[key][i] if i < len(a[key]) else None for i in idx]
            if any(s is not None for s in a.get("segmentations") or []):
                anns.append(a)
        if cat_ids is not None:
            holding = {a["video_id"] for a in anns}
            videos = [v for v in videos if v["id"] in holding]
        out["videos"], out["annotations"] = videos, anns
        return out if videos else None

    images = [i for i in doc.get("images") or [] if kept(str(i.get("file_name") or ""))]
    ids = {i["id"] for i in images}
    anns = []
    for a in doc.get("annotations") or []:
        if a.get("image_id") not in ids:
            continue
        if "segments_info" in a and cat_ids is not None:
            a = {**a, "segments_info": [s for s in a.get("segments_info") or [] if s.get("category_id") in cat_ids]}
            if not a["segments_info"]:
                continue
        elif cat_ids is not None and a.get("category_id") not in cat_ids:
            continue
        anns.append(a)
    if cat_ids is not None:
        holding = {a["image_id"] for a in anns}
        images = [i for i in images if i["id"] in holding]
        ids = {i["id"] for i in images}
    out["images"], out["annotations"] = images, [a for a in anns if a.get("image_id") in ids]
    if isinstance(doc.get("videos"), list):  # COCO with videos: keep the videos of kept frames
        kept_videos = {i.get("video_id") for i in images}
        out["videos"] = [v for v in doc["videos"] if v.get("id") in kept_videos]
    return out if images else None


def panoptic_pngs(doc: dict[str, Any]) -> set[str]:
    """The segment PNGs a panoptic document's annotations name."""
    return {str(a["file_name"]) for a in doc.get("annotations") or [] if "segments_info" in a and a.get("file_name")}


def canonical_json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def selection_key(*, subset: Subset | None, withheld_file_ids: Iterable[int]) -> str:
    spec = {"subset": subset.key if subset else "", "withheld": sorted(set(withheld_file_ids))}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)
