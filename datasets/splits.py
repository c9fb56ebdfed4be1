"""Splits: a version may hold one annotation file per split. A split is named by its file's
stem (``annotations/train.json`` → ``train``, as the store front's split subsets name it);
its kind (``train``, ``val``, ``test`` or ``other``) is declared by that name: a word of it
(split on anything but letters, digits dropped) such as ``train``, ``val``/``valid``/
``validation``/``eval``, ``test``. ``instances_val2017.json`` is a ``val`` split.
"""

from __future__ import annotations

import re

KINDS = ("train", "val", "test", "other")
_WORDS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "evaluation": "val",
    "test": "test",
    "testing": "test",
}
# The split a buyer's public evaluation is drawn from, in order of preference.
EVALUATION_KINDS = ("test", "val")


def split_name(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name[: -len(".json")] if name.lower().endswith(".json") else name


def split_kind(name: str) -> str:
    kinds = {_WORDS[w] for w in (re.sub(r"\d+", "", part) for part in re.split(r"[^a-z0-9]+", name.lower())) if w in _WORDS}
    return kinds.pop() if len(kinds) == 1 else "other"


def evaluation_file(files: list):
    """Of a version's annotation files (anything with a ``path``), the one a buyer's public
    evaluation is drawn from: the ``test`` split, else the ``val`` split, else (none
    declared) the first by path."""
    files = sorted(files, key=lambda f: f.path)
    for kind in EVALUATION_KINDS:
        found = next((f for f in files if split_kind(split_name(f.path)) == kind), None)
        if found is not None:
            return found
    return files[0] if files else None


def merge_statistics(per_split: dict[str, dict]) -> dict:
    """The whole version's statistics from each split's (counts summed, licenses merged by
    name and URL, categories by id), with ``splits``: each split's own, with its kind."""
    if not per_split:
        return {}
    first = next(iter(per_split.values()))
    total: dict = {
        "format": first.get("format"),
        "images": 0,
        "videos": None,
        "instances": 0,
        "images_without_annotations": 0,
        "images_without_license": 0,
        "tracks": 0,
        "frames": 0,
        "has_tracks": False,
    }
    categories: dict[int, dict] = {}
    licenses: dict[tuple, dict] = {}
    hist: dict[str, int] = {}
    area_counts: list[int] = []
    max_per_image = 0
    images_for_mean = 0
    for stats in per_split.values():
        for key in ("images", "instances", "images_without_annotations", "images_without_license", "tracks", "frames"):
            total[key] += int(stats.get(key) or 0)
        if stats.get("videos") is not None:
            total["videos"] = (total["videos"] or 0) + int(stats["videos"])
        total["has_tracks"] = total["has_tracks"] or bool(stats.get("has_tracks"))
        for cat in stats.get("categories") or []:
            entry = categories.setdefault(cat["id"], {"id": cat["id"], "name": cat.get("name", ""), "count": 0})
            entry["count"] += int(cat.get("count") or 0)
        for lic in stats.get("licenses") or []:
            entry = licenses.setdefault((lic.get("name"), lic.get("url")), {**lic, "images": 0})
            entry["images"] += int(lic.get("images") or 0)
        ipi = stats.get("instances_per_image") or {}
        for key, count in (ipi.get("histogram") or {}).items():
            hist[key] = hist.get(key, 0) + int(count)
        max_per_image = max(max_per_image, int(ipi.get("max") or 0))
        images_for_mean += sum(int(c) for c in (ipi.get("histogram") or {}).values())
        counts = (stats.get("area_histogram") or {}).get("counts") or []
        area_counts = [a + b for a, b in zip(area_counts, counts, strict=True)] if area_counts else list(counts)
    total["categories"] = list(categories.values())
    total["licenses"] = list(licenses.values())
    total["instances_per_image"] = {"mean": total["instances"] / images_for_mean if images_for_mean else 0.0, "max": max_per_image, "histogram": hist}
    total["area_histogram"] = {"edges": (first.get("area_histogram") or {}).get("edges", []), "counts": area_counts}
    total["splits"] = {name: {"kind": split_kind(name), **stats} for name, stats in per_split.items()}
    return total
