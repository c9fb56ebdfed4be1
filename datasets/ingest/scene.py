"""Scene complexity and coverage of a version, measured at ingest (per version and per
split: a split is an annotation file, named by its stem).

An instances file (COCO, COCO with tracks) is measured from its reference cache, which
ingest builds anyway: the masks are rasterized once, and the figures of every frame are
computed at once (:func:`quality.engine.scene.strings_scene`); only the images section is
read again, for what each image declares. A YouTube-VIS file is read by the compiled
reader (:func:`quality.engine.scene.ytvis_scene`: flat arrays, masks rasterized on every
core, all frames at once); where it declines, the file is streamed: the videos with what
each declares, then the annotations in chunks, each mask converted at the gate to a
compressed RLE and kept per frame. The figures come from :mod:`quality.engine.scene`.

Embodiment and task declarations: an image or video may carry ``embodiment`` (or LeRobot's
``robot_type``) and ``task``, a name or a list of names, matched against the vocabularies
by slug, name or alias; names that match nothing are listed as unknown and not counted.
Without any declaration in the annotations, the dataset's declared embodiments and tasks
stand for the whole version (frames per embodiment unknown).

Sensors: the dataset declares its list; an image or video may also say ``sensor`` (a
:class:`datasets.models.Sensor` value or a list of them), counted as frames per sensor.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import ijson
import numpy as np

from datasets.models import Dataset, Sensor, VocabularyKind
from datasets.splits import split_name
from datasets.vocabulary import vocabulary_load
from quality.engine import masks
from quality.engine.cache import ReferenceCache
from quality.engine.scene import Declaration, SceneComplexity, coverage, frame_figures, strings_scene, ytvis_scene

SCENE_FORMATS = ("coco_instances", "coco_video", "youtube_vis")
CHUNK = 5000
EMBODIMENT_KEYS = ("embodiment", "robot_type")
TASK_KEYS = ("task",)
SENSOR_KEYS = ("sensor", "sensors")


def _names(entry: dict, keys: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for key in keys:
        value = entry.get(key)
        values = value if isinstance(value, list) else [value]
        out += [v.strip() for v in values if isinstance(v, str) and v.strip()]
    return tuple(dict.fromkeys(out))


def _declarations(path: Path, fmt: str) -> tuple[list[Declaration], dict[int, tuple[int, int]], dict[int, int]]:
    """What each image (or video) declares, with its size and frames, read from its section
    alone: the parser stops at the section's end (the annotations after it are not read)."""
    video = fmt == "youtube_vis"
    section = "videos" if video else "images"
    dims: dict[int, tuple[int, int]] = {}
    lengths: dict[int, int] = {}
    declarations: list[Declaration] = []
    with open(path, "rb") as fh:
        for entry in section_items(fh, section):
            iid = entry["id"]
            dims[iid] = (int(entry["height"]), int(entry["width"]))
            frames = int(entry.get("length") or len(entry.get("file_names") or [])) if video else 1
            lengths[iid] = frames
            episode = iid if video else entry.get("video_id")
            declarations.append(
                Declaration(
                    frames=frames,
                    embodiments=_names(entry, EMBODIMENT_KEYS),
                    tasks=_names(entry, TASK_KEYS),
                    sensors=_names(entry, SENSOR_KEYS),
                    episode=episode,
                )
            )
    return declarations, dims, lengths


def section_items(fh, section: str):
    """The items of the top-level array ``section`` of an open JSON file; the parser stops at
    the array's end (what follows is not read)."""
    return ijson.items(_section_events(ijson.parse(fh, use_float=True), section), f"{section}.item")


def _section_events(events, section: str):
    """The parser's events up to the end of the top-level ``section`` array."""
    for event in events:
        yield event
        if event[0] == section and event[1] == "end_array":
            return


def cache_scene(cache: ReferenceCache) -> SceneComplexity:
    """Scene complexity of an instances file from its reference cache (its masks already
    rasterized and checked): every image a frame, crowd regions left out."""
    pos = cache.image_index(cache.ann_image_ids)
    idx = np.flatnonzero(~cache.ann_iscrowd)
    return strings_scene(cache.strings().take(idx), pos[idx], cache.ann_category_ids[idx], len(cache.img_ids))


def _file_scene(path: Path, fmt: str, *, compiled: bool = True) -> tuple[SceneComplexity, list[Declaration]]:
    video = fmt == "youtube_vis"
    declarations, dims, lengths = _declarations(path, fmt)
    if video and compiled:
        # the compiled reader's masks, every frame at once; streamed below where it declines
        scene = ytvis_scene(path)
        if scene is not None:
            return scene, declarations
    owner_key = "video_id" if video else "image_id"
    # A first pass counts each image's (video's) annotations, so the second can measure an
    # image as soon as its last annotation is read and drop its masks: a file ordered by
    # image holds one image's masks at a time, whatever its size.
    remaining: dict[int, int] = {}
    with open(path, "rb") as fh:
        for owner in ijson.items(fh, f"annotations.item.{owner_key}"):
            remaining[owner] = remaining.get(owner, 0) + 1
    scene = SceneComplexity()
    per_frame: dict[Any, list] = {}

    def measure(owner: int) -> None:
        for key in [(owner, f) for f in range(lengths[owner])] if video else [owner]:
            items = per_frame.pop(key, [])
            scene.add(frame_figures([r for r, _c in items], [c for _r, c in items]))

    with open(path, "rb") as fh:
        annotations = ijson.items(fh, "annotations.item", use_float=True)
        while chunk := list(itertools.islice(annotations, CHUNK)):
            _add_chunk(chunk, video, dims, per_frame)
            for ann in chunk:
                owner = ann[owner_key]
                remaining[owner] -= 1
                if not remaining[owner]:
                    measure(owner)
    for owner in dims:
        if owner not in remaining:  # no annotation: its frames are empty
            measure(owner)
    return scene, declarations


def _add_chunk(chunk: list[dict], video: bool, dims: dict, per_frame: dict) -> None:
    """Each annotation's masks (one per frame it appears in) as checked RLEs, per frame."""
    segs, hs, ws, keys, cats = [], [], [], [], []
    for ann in chunk:
        if ann.get("iscrowd") == 1:
            continue
        if video:
            h, w = dims[ann["video_id"]]
            for f, seg in enumerate(ann.get("segmentations") or []):
                if seg:
                    segs.append(seg), hs.append(h), ws.append(w), keys.append((ann["video_id"], f)), cats.append(ann["category_id"])
        else:
            h, w = dims[ann["image_id"]]
            segs.append(ann["segmentation"]), hs.append(h), ws.append(w), keys.append(ann["image_id"]), cats.append(ann["category_id"])
    if not segs:
        return
    # polygons of one image are rasterized in one call
    for rle, key, cat in zip(masks.to_rles(segs, hs, ws, image_keys=None if video else keys), keys, cats, strict=True):
        per_frame.setdefault(key, []).append((rle, cat))


def _sensors(tally: dict, dataset: Dataset) -> dict:
    """The dataset's declared sensors, and frames per sensor where images or videos say."""
    known = set(Sensor.values)
    frames = {name: counts["frames"] for name, counts in tally["sensors"].items() if name in known}
    return {
        "declared": list(dataset.sensors or []),
        "frames": dict(sorted(frames.items())) or None,
        "unknown": sorted(name for name in tally["sensors"] if name not in known),
    }


def _diversity(tally: dict, dataset: Dataset) -> dict:
    if not tally["embodiments"] and not tally["tasks"]:
        return {
            "source": "dataset",
            "embodiments": {"count": dataset.embodiments.count(), "frames": None, "episodes": None},
            "tasks": {"count": dataset.tasks.count(), "frames": None, "episodes": None},
        }
    vocab = vocabulary_load([VocabularyKind.EMBODIMENT, VocabularyKind.TASK])
    out: dict[str, Any] = {"source": "annotations", "declared_frames": tally["declared_frames"], "undeclared_frames": tally["undeclared_frames"], "unknown": {}}
    for key, kind in (("embodiments", VocabularyKind.EMBODIMENT), ("tasks", VocabularyKind.TASK)):
        frames: dict[str, int] = {}
        episodes: dict[str, int] = {}
        unknown: list[str] = []
        for name, counts in tally[key].items():
            slug = vocab.resolve(kind, name)
            if slug is None:
                unknown.append(name)
                continue
            frames[slug] = frames.get(slug, 0) + counts["frames"]
            episodes[slug] = episodes.get(slug, 0) + counts["episodes"]
        out[key] = {"count": len(frames), "frames": dict(sorted(frames.items())), "episodes": dict(sorted(episodes.items()))}
        out["unknown"][key] = sorted(unknown)
    return out


def version_scene_statistics(*, files: list[tuple[str, Path, str]], dataset: Dataset, measured: dict[str, SceneComplexity] | None = None) -> dict:
    """``{"scene": ..., "diversity": ...}`` for the version's annotation files, each given as
    (path in the version, local copy, detected format); {} when none has instance masks.
    ``measured``: the scene of a file (by path) already measured from its reference cache
    (:func:`cache_scene`); only its declarations are read from the file."""
    total = SceneComplexity()
    splits: dict[str, dict] = {}
    declarations: list[Declaration] = []
    for path, local, fmt in files:
        if fmt not in SCENE_FORMATS:
            continue
        if measured and path in measured:
            scene, declared = measured[path], _declarations(local, fmt)[0]
        else:
            scene, declared = _file_scene(local, fmt)
        splits[split_name(path)] = scene.figures()
        total.merge(scene)
        declarations += declared
    if not splits:
        return {}
    tally = coverage(declarations)
    return {"scene": {**total.figures(), "splits": splits}, "diversity": _diversity(tally, dataset), "sensors": _sensors(tally, dataset)}
