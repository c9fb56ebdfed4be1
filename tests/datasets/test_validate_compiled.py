"""The compiled validation pass against the Python path, file by file: the same decision,
the same report (codes, JSON paths, messages), the same statistics and result fields.

The compiled pass (``datasets.validation.validate_compiled``) accepts the annotations
it can and hands the others to the Python checks; a file it cannot read strictly goes
to the streaming Python path. The corpus: every hostile mask and image-size case
(tests/hostile_masks.py), the hostile JSON cases of test_hostile.py, the fixtures, and
mutations of valid COCO, COCO-video and YouTube-VIS files (each field of an annotation,
image, video, category and license removed or replaced by values of every JSON type;
duplicate keys, encodings, nesting, numbers at the edges; seeded byte-level mutations).
Valid files of every handled format must be accepted by the compiled pass (else it would
be a slow path in disguise).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from datasets.limits import Limits
from datasets.validation import validate_annotation_file, validate_compiled
from marketplace.demo import video_dataset
from quality.engine import native
from tests.datasets.helpers import coco
from tests.datasets.test_hostile import JSON_CASES
from tests.hostile_masks import CASES as HOSTILE
from tests.hostile_masks import MASK_CASES, coco_text, encode_runs
from tests.security.test_hostile_corpus import IN_FILE, instances_file, ytvis_file

LIM = replace(Limits(), json_max_bytes=512 * 1024 * 1024)
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"



pytestmark = pytest.mark.usefixtures("compiled_kernels")  # this comparison needs both paths


def _fields(r) -> tuple:
    # the statistics as JSON text too: the order of keys (a histogram's, a dict's) is part of
    # what is stored and shown
    return (r.format, r.report, r.statistics, json.dumps(r.statistics), r.images, r.image_ids, r.categories, r.valid)


def both(path, lim: Limits = LIM, **kw) -> tuple[bool, tuple, tuple]:
    """(whether the compiled pass took the file, the result validate_annotation_file gives,
    the Python path's result)."""
    took = validate_compiled(str(path), lim, kw.get("check_image_files"), kw.get("image_sizes")) is not None
    compiled = _fields(validate_annotation_file(path, lim=lim, **kw))
    with native.disabled():
        python = _fields(validate_annotation_file(path, lim=lim, **kw))
    return took, compiled, python


def _handle(tmp_path, text: str, lim: Limits = LIM, **kw) -> tuple[bool, bool]:
    """(whether the compiled pass took the file, whether it is valid), after checking that
    both paths give the same result."""
    path = tmp_path / "ann.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    took, compiled, python = both(path, lim, **kw)
    assert compiled == python, text[:300]
    return took, python[-1]


def _check(tmp_path, text: str, lim: Limits = LIM, **kw) -> bool:
    """Whether the compiled pass accepted the file (took it, and it is valid)."""
    took, valid = _handle(tmp_path, text, lim, **kw)
    return took and valid


# --------------------------------------------------------------------------------------
# valid files


def coco_rich() -> dict:
    """Polygons, compressed and uncompressed RLE, crowd flags of every accepted spelling,
    area null or absent, no bbox, extra keys, non-ASCII names, images without annotations."""
    d = coco(n_images=5)
    anns = d["annotations"]
    anns[0]["segmentation"] = {"size": [24, 32], "counts": encode_runs([100, 20, 648])}
    anns[0]["iscrowd"] = 1
    anns[1]["segmentation"] = {"size": [24, 32], "counts": [700, 68], "extra": "kept"}
    anns[1]["iscrowd"] = True
    anns[2]["iscrowd"] = 1.0
    anns[2]["area"] = None
    del anns[3]["area"]
    del anns[3]["bbox"]
    anns[4]["attributes"] = {"occluded": False, "notes": ["ünïcödé", None, 1.5e-300]}
    anns[5]["segmentation"] = [[0, 0, 33, 0, 33, 25, 0, 25], [1, 1, 2, 1, 2, 2]]  # on the border, within the margin
    anns[6]["area"] = 4**12 + 0.5
    anns[7]["area"] = 0
    d["annotations"] = [a for a in anns if a["image_id"] != 4]
    d["categories"][0]["name"] = "schraube \u00e9\u4e2d"  # (escaped surrogate pairs: see test_surrogate_pairs)
    d["images"][2]["file_name"] = "dir/sub dir/\u00e9t\u00e9.png"
    d["info"] = {"description": "x", "year": 2026, "nested": [[[1]]]}
    return d


def coco_video() -> dict:
    d = coco(n_images=6)
    for img in d["images"]:
        img["video_id"] = 1 + (img["id"] - 1) // 3
        img["frame_index"] = (img["id"] - 1) % 3
    for a in d["annotations"]:
        a["video_id"] = 1 + (a["image_id"] - 1) // 3
        a["track_id"] = a["id"] % 2
    return d


def coco_tracks_mixed() -> dict:
    """A COCO file with track ids on some annotations only and a null video_id."""
    d = coco(n_images=3)
    d["annotations"][1]["track_id"] = 5
    d["annotations"][2]["track_id"] = 5
    d["annotations"][2]["video_id"] = None
    d["annotations"][3]["track_id"] = 5
    d["annotations"][3]["video_id"] = 2
    return d


def ytvis() -> dict:
    return {
        "videos": [
            {"id": 7, "width": 8, "height": 6, "file_names": ["v7/a.jpg", "v7/b.jpg", "v7/c.jpg"], "license": 1},
            {"id": 3, "width": 5, "height": 4, "file_names": ["v3/a.jpg"]},
            {"id": 9, "width": 5, "height": 4, "file_names": ["v9/a.jpg"]},
        ],
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "categories": [{"id": 1, "name": "x"}, {"id": 2, "name": "y"}],
        "annotations": [
            {
                "id": 10, "video_id": 7, "category_id": 1, "iscrowd": 0, "area": 12.0,
                "segmentations": [None, {"size": [6, 8], "counts": [0, 48]}, [[0, 0, 8, 0, 8, 6]]],
                "bboxes": [None, [0, 0, 8, 6], [0, 0, 8, 6]], "areas": [None, 48, 24],
            },
            {"id": 11, "video_id": 3, "category_id": 2, "segmentations": [{"size": [4, 5], "counts": encode_runs([3, 4, 13])}]},
            {"id": 12, "video_id": 7, "category_id": 2, "segmentations": [None, None, None], "track_id": "ignored for YouTube-VIS"},
        ],
    }  # fmt: skip


def _fixture_jsons() -> list[Path]:
    return sorted(FIXTURES.glob("ytvis/case_*/gt.json")) + sorted(FIXTURES.glob("panoptic/case_*/gt.json"))


VALID = {
    "coco": lambda: json.dumps(coco()),
    "coco_rich": lambda: json.dumps(coco_rich(), ensure_ascii=False),
    "coco_rich_ascii": lambda: json.dumps(coco_rich()),
    "coco_rich_pretty": lambda: json.dumps(coco_rich(), indent="\t"),
    "coco_video": lambda: json.dumps(coco_video()),
    "coco_tracks_mixed": lambda: json.dumps(coco_tracks_mixed()),
    "ytvis": lambda: json.dumps(ytvis()),
    "no_licenses_section": lambda: json.dumps({k: v for k, v in coco().items() if k != "licenses"}),  # warnings
    "empty_sections": lambda: '{"images": [], "annotations": [], "categories": []}',
    "no_annotations": lambda: json.dumps({**coco(), "annotations": []}),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_files_are_accepted_compiled_with_the_same_result(tmp_path, name):
    assert _check(tmp_path, VALID[name]()), "the compiled pass declined a valid file it handles"


@pytest.mark.parametrize("kind", ["reference", "ytvis", "coco"])
def test_the_demo_video_datasets(tmp_path, kind):
    for seed, noise, swap_at in ((5, 0.1, None), (7, 0.3, 2)):
        data = video_dataset(videos=3, frames=4, seed=seed, noise=noise, swap_at=swap_at)[kind]
        assert _check(tmp_path, json.dumps(data)), (kind, seed)


@pytest.mark.parametrize("path", _fixture_jsons(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_fixture_files(path):
    accepted, compiled, python = both(path)
    assert compiled == python
    assert python[-1], python[1]
    assert accepted == (python[0] != "coco_panoptic")  # panoptic files are left to the Python path


def test_the_benchmark_file_is_accepted(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ingest_bench import generate

    path = tmp_path / "train.json"
    generate(path, 300, 7.3, seed=3)
    accepted, compiled, python = both(path)
    assert accepted and compiled == python and python[-1]


def test_image_files_and_sizes_from_the_caller(tmp_path):
    text = json.dumps(coco())
    present = {"img1.png", "img2.png", "img3.png"}
    assert _check(tmp_path, text, check_image_files=present.__contains__, image_sizes={n: (24, 32) for n in present})
    assert not _check(tmp_path, text, check_image_files=lambda n: n != "img2.png")
    assert not _check(tmp_path, text, image_sizes={"img1.png": (24, 32), "imgs/img2.png": (48, 64)})


# --------------------------------------------------------------------------------------
# the hostile corpus


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_masks(tmp_path, name):
    took, valid = _handle(tmp_path, coco_text(HOSTILE[name]))
    assert not valid
    # a file that is strict JSON is checked by the compiled pass, only the annotation it
    # does not accept by the Python checks
    assert took == (HOSTILE[name].code not in ("non_finite_number", "number_out_of_range"))


@pytest.mark.parametrize("name", sorted(JSON_CASES))
def test_hostile_json(tmp_path, name):
    obj = JSON_CASES[name][0]
    assert not _check(tmp_path, obj if isinstance(obj, str) else json.dumps(obj))


@pytest.mark.parametrize("name", sorted(MASK_CASES))
def test_hostile_masks_in_youtube_vis(tmp_path, name):
    one, _ = ytvis_file([])
    for frames in ("{seg}, null", "null, {seg}"):
        ann = '{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [' + frames.format(seg=MASK_CASES[name].segmentation) + "]}"
        assert not _check(tmp_path, one.replace('"annotations": []', f'"annotations": [{ann}]'))


def test_the_security_corpus_files(tmp_path):
    """The files tests/security/test_hostile_corpus.py sends through every untrusted path."""
    text, _ = instances_file()
    assert not _check(tmp_path, text)
    text, _ = ytvis_file([n for n in IN_FILE if n != "segmentation-null"])
    assert not _check(tmp_path, text)
    text, _ = ytvis_file([])  # its second video names a file outside the version
    assert not _check(tmp_path, text)


VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, -0.0, 2**63, 2**70, 1e300, "", "x", "7", [], [0], [1, 2, 3, 4], {}, {"a": 1}]


def _mutations(base: dict) -> list[tuple[str, dict]]:
    """Each field of one item of each section removed or replaced by each of VALUES."""
    out = []
    for section in ("annotations", "images", "videos", "categories", "licenses"):
        items = base.get(section)
        if not items:
            continue
        k = min(1, len(items) - 1)
        for key in list(items[k]) + ["unknown"]:
            if key in items[k]:
                d = copy.deepcopy(base)
                del d[section][k][key]
                out.append((f"{section}[{k}] -{key}", d))
            for v in VALUES:
                d = copy.deepcopy(base)
                d[section][k][key] = v
                out.append((f"{section}[{k}].{key}={v!r}", d))
        for v in VALUES:
            d = copy.deepcopy(base)
            d[section][k] = v
            out.append((f"{section}[{k}]={v!r}", d))
    for key in list(base):
        for v in (None, 1, "x", {}, [1]):
            d = copy.deepcopy(base)
            d[key] = v
            out.append((f"{key}={v!r}", d))
    return out


BASES = {"coco": coco_rich, "coco_video": coco_video, "coco_tracks_mixed": coco_tracks_mixed, "ytvis": ytvis}


@pytest.mark.parametrize("base", sorted(BASES))
def test_field_mutations(tmp_path, base):
    accepted = 0
    for label, d in _mutations(BASES[base]()):
        try:
            accepted += _check(tmp_path, json.dumps(d))
        except AssertionError as exc:
            raise AssertionError(f"{base}: {label}") from exc
    assert accepted  # some mutations keep the file valid (an extra key, an equal value)


def _text_cases() -> dict[str, tuple[str, bool | None]]:
    """Text the json module would not write. (text, whether the compiled pass must accept it:
    None when either way is right)."""
    good = json.dumps(coco())
    ann = '{"id": 9, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 5, 1, 5, 5]]'
    with_ann = lambda a: good[:-2] + ", " + a + "]}"  # noqa: E731 (annotations is the last section)
    assert good.endswith("}]}")
    return {
        "duplicate top-level key": ('{"images": [], "images": [], "annotations": [], "categories": []}', False),
        "duplicate annotation key": (with_ann(ann + ', "id": 10}'), True),  # the last one counts (marked, then read by Python)
        "duplicate image key": (good.replace('"id": 2,', '"id": 2, "id": 2,', 1), None),
        "duplicate id in segmentation": (with_ann(ann.replace('"segmentation"', '"segmentation": 1, "segmentation"') + "}"), True),
        "bom": ("\ufeff" + good, False),
        "trailing garbage": (good + " x", False),
        "trailing comma": (good[:-2] + ",]}", False),
        "trailing whitespace": (good + " \n\t\r", True),
        "two objects": (good + good, False),
        "single quotes": (good.replace('"id"', "'id'", 1), False),
        "lone surrogate": (good.replace("img1.png", "img1\\ud800.png"), False),
        "escaped surrogate pair": (good.replace("img1.png", "img1\\ud83d\\ude00.png"), True),
        "escapes in names": (good.replace("img1.png", "i\\u006dg\\/1\\t.png"), None),
        "control char in string": (good.replace("img1.png", "img1\x01.png"), False),
        "overlong utf-8": (good.encode().replace(b"img1.png", b"img1\xc0\xaf.png"), False),
        "invalid utf-8": (good.encode().replace(b"img1.png", b"img1\xff.png"), False),
        "truncated utf-8": (good.encode().replace(b"img1.png", b"img1\xe4\xb8.png"), False),
        "utf-8 4 bytes": (good.replace("img1.png", "img1\U0001f600.png"), True),
        "non-ascii key": (with_ann(ann + ', "h\u00e9": 1}'), None),
        "escaped key": (with_ann(ann.replace('"id"', '"\\u0069d"') + "}"), None),
        "underflow": (with_ann(ann + ', "x": 1e-400}'), None),
        "minus zero": (with_ann(ann + ', "area": -0, "bbox": [-0.0, 0, -0.0, 0E5]}'), True),
        "leading zero": (with_ann(ann + ', "x": 01}'), False),
        "big int elsewhere": (with_ann(ann + ', "x": 123456789012345678901234567890}'), False),
        "19-digit id": (with_ann(ann.replace('"id": 9', '"id": 1234567890123456789') + "}"), None),
        "nan elsewhere": (with_ann(ann + ', "x": NaN}'), False),
        "exponent coordinates": (with_ann(ann.replace("[[1, 1, 5,", "[[1e0, 10E-1, 5.000000000000000000001,") + "}"), True),
        "rle with escapes": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", '{"size": [24, 32], "counts": "\\\\\\/0"}') + "}"), False),
        "rle escaped valid": (
            with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", json.dumps({"size": [24, 32], "counts": encode_runs([700, 68])}).replace("0", "\\u0030")) + "}"),
            None,
        ),
        "iscrowd 2": (with_ann(ann + ', "iscrowd": 2}'), False),
        "iscrowd 1e0": (with_ann(ann + ', "iscrowd": 1e0}'), True),
        "iscrowd null": (with_ann(ann + ', "iscrowd": null}'), False),
        "bbox null": (with_ann(ann + ', "bbox": null}'), False),
        "bbox negative size": (with_ann(ann + ', "bbox": [0, 0, -1, 2]}'), False),
        "bbox five": (with_ann(ann + ', "bbox": [0, 0, 1, 2, 3]}'), False),
        "area negative": (with_ann(ann + ', "area": -1}'), False),
        "polygon on the margin": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[-1, -1, 33, -1, 33, 25]]") + "}"), True),
        "polygon past the margin": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[-1.0001, -1, 33, -1, 33, 25]]") + "}"), False),
        "empty key": (with_ann(ann + ', "": 1}'), True),
        # coordinates at the image's edge (32 + 1 pixel of margin) written with more digits
        # than a double holds: the value is the correctly rounded double either way
        "edge rounds inside": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 33.0000000000000001, 1, 5, 5]]") + "}"), True),
        "edge just outside": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 33.00000000000001, 1, 5, 5]]") + "}"), False),
        "edge negative inside": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[-1.00000000000000001, 1, 5, 1, 5, 5]]") + "}"), True),
        "edge 17 digits": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 32.999999999999999, 1, 5, 5]]") + "}"), True),
        "edge exponent": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 0.33e2, 1, 5, 5]]") + "}"), True),
        "leading zeros in the fraction": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[0.000001, 1, 5.0, 1, 5, 5.00]]") + "}"), True),
        "int coordinate of 18 digits": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 100000000000000000, 1, 5, 5]]") + "}"), False),
        "coordinate dot without digits": (with_ann(ann.replace("[[1, 1, 5, 1, 5, 5]]", "[[1, 1, 5., 1, 5, 5]]") + "}"), False),
    }


TEXT = _text_cases()


@pytest.mark.parametrize("name", sorted(TEXT))
def test_text_cases(tmp_path, name):
    text, must = TEXT[name]
    accepted = _check(tmp_path, text)
    if must is not None:
        assert accepted == must


def test_nesting_at_the_depth_limit(tmp_path):
    d = coco()
    d["info"] = [[[["deep"]]]]  # the file's object and four arrays: five levels
    info_deep = json.dumps(d)
    assert _check(tmp_path, info_deep, replace(LIM, json_max_depth=5))
    assert not _check(tmp_path, info_deep, replace(LIM, json_max_depth=4))
    # inside the annotations (which the compiled pass reads in its second kernel): polygons
    # lie five levels deep, RLE sizes too, YouTube-VIS polygons six, an extra key seven
    d = coco_rich()
    d["annotations"][-1]["extra"] = [[[["deep"]]]]
    for text, deepest in ((json.dumps(coco()), 5), (json.dumps(d), 7), (json.dumps(ytvis()), 6)):
        for depth in range(2, deepest + 2):
            assert _check(tmp_path, text, replace(LIM, json_max_depth=depth)) == (depth >= deepest), (depth, text[:80])
    # the limits on image sizes hold on the compiled pass (the images are checked by the
    # same code either way)
    assert not _check(tmp_path, info_deep, replace(LIM, image_max_side=30))
    assert not _check(tmp_path, info_deep, replace(LIM, image_max_pixels=700))


def test_byte_mutations(tmp_path):
    """Seeded random edits of a valid file's text: truncations, deletions, insertions and
    substitutions of the bytes JSON and the masks are made of."""
    rng = random.Random(18)
    texts = [json.dumps(coco_rich()).encode(), json.dumps(ytvis()).encode(), json.dumps(coco_video()).encode()]
    alphabet = b'{}[],:"0123456789-+.eE \\/ntfuabx\x00\x7f\xc3\xa9\xff'
    for k in range(600):
        data = bytearray(rng.choice(texts))
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            at = rng.randrange(len(data))
            op = rng.randrange(4)
            if op == 0:
                data = data[:at]
            elif op == 1:
                del data[at]
            elif op == 2:
                data.insert(at, rng.choice(alphabet))
            else:
                data[at] = rng.choice(alphabet)
            if not data:
                break
        try:
            _check(tmp_path, bytes(data))
        except AssertionError as exc:
            raise AssertionError(f"mutation {k}: {bytes(data)[:400]!r}") from exc


def _paths(obj, at=()):
    yield at
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*at, i))


EDGES = [*VALUES, 0.5, -1e-9, 65535, 65536, 1e6, 1e6 + 1, -1e6, 2**32, 2**32 - 1, "0", "PPYo0a", [[1, 1, 5, 1, 5, 5]], {"size": [24, 32], "counts": [768]}]


@pytest.mark.parametrize("base", sorted(BASES))
def test_value_mutations_at_every_path(tmp_path, base):
    """Every value of the file, at any depth (a polygon's coordinate, an RLE's size, one run
    of its counts, a frame of a track), replaced by a few seeded picks of edge values."""
    rng = random.Random(base)
    original = BASES[base]()
    for at in [p for p in _paths(original) if p]:
        for v in rng.sample(EDGES, 3):
            d = copy.deepcopy(original)
            parent = d
            for k in at[:-1]:
                parent = parent[k]
            parent[at[-1]] = v
            try:
                _check(tmp_path, json.dumps(d))
            except AssertionError as exc:
                raise AssertionError(f"{base}: {at} = {v!r}") from exc


# --------------------------------------------------------------------------------------
# \uXXXX surrogate escapes: json.dumps writes a character above U+FFFF as a high and a low
# surrogate escape (ensure_ascii, its default), so many sellers' files hold them

EMOJI = "\U0001f600"
LONE = "not valid JSON: the escape {} is half of a surrogate pair without its other half"


def _emoji_files() -> dict[str, dict]:
    d = coco()
    d["categories"][0]["name"] = f"{EMOJI} cat"
    d["categories"][1]["name"] = f"cat {EMOJI}{EMOJI}\U0010ffff"
    d["images"][0]["file_name"] = f"{EMOJI}/img{EMOJI}.png"
    d["images"][2]["file_name"] = f"img3{EMOJI}"
    d["licenses"][0]["name"] = f"CC BY {EMOJI}"
    d["annotations"][1]["attributes"] = {f"k{EMOJI}": [f"{EMOJI}", "\U00010000"]}
    d["info"] = {"description": EMOJI * 3}
    y = ytvis()
    y["videos"][0]["file_names"] = [f"v7/{EMOJI}a.jpg", "v7/b.jpg", f"v7/c{EMOJI}.jpg"]
    y["categories"][1]["name"] = EMOJI
    v = coco_video()
    v["images"][4]["file_name"] = f"{EMOJI}.png"
    v["categories"][0]["name"] = f"a{EMOJI}"
    return {"coco": d, "ytvis": y, "coco_video": v}


@pytest.mark.parametrize("name", sorted(_emoji_files()))
def test_surrogate_pairs_are_one_code_point(tmp_path, name):
    d = _emoji_files()[name]
    text = json.dumps(d)  # ensure_ascii: every emoji as an escaped pair
    assert "\\ud83d\\ude00" in text and EMOJI not in text
    assert _check(tmp_path, text)  # the compiled pass takes it, valid, and the Python path agrees
    r = validate_annotation_file(tmp_path / "ann.json", lim=LIM)
    assert r.categories == [{"id": c["id"], "name": c["name"]} for c in d["categories"]]
    assert [c["name"] for c in r.statistics["categories"]] == [c["name"] for c in d["categories"]]
    if name == "coco":
        assert [i["file_name"] for i in r.images] == [i["file_name"] for i in d["images"]]
        assert r.statistics["licenses"][0]["name"] == f"CC BY {EMOJI}"
    # the same file with the characters as UTF-8: the same result
    path = tmp_path / "utf8.json"
    path.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    assert _fields(validate_annotation_file(path, lim=LIM))[1:] == _fields(r)[1:]


def _lone_cases() -> dict[str, tuple[str, str, str]]:
    """(text, the escape reported, its location)."""
    good = json.dumps(_emoji_files()["coco"])
    pair = "\\ud83d\\ude00"
    cat = good.index('"name": "' + pair + ' cat"')
    at_cat = lambda new: good[:cat] + good[cat:].replace(pair, new, 1)  # noqa: E731 (in categories[0].name)
    return {
        "lone high": (good.replace(pair, "\\ud83d", 1), "\\ud83d", "licenses[0].name"),
        "lone low": (good.replace(pair, "\\ude00", 1), "\\ude00", "licenses[0].name"),
        "reversed pair": (good.replace(pair, "\\ude00\\ud83d", 1), "\\ude00", "licenses[0].name"),
        "pair split by a character": (good.replace(pair, "\\ud83dx\\ude00", 1), "\\ud83d", "licenses[0].name"),
        "pair split by an escape": (good.replace(pair, "\\ud83d\\n\\ude00", 1), "\\ud83d", "licenses[0].name"),
        "two highs": (good.replace(pair, "\\ud83d\\ud83d\\ude00", 1), "\\ud83d", "licenses[0].name"),
        "high then a plain escape": (good.replace(pair, "\\uD83D\\u0041", 1), "\\uD83D", "licenses[0].name"),
        "high at the end of a string": (good.replace(pair + '.png"', '\\ud83d"', 1), "\\ud83d", "images[0].file_name"),
        "lone high in a category name": (at_cat("\\udbff"), "\\udbff", "categories[0].name"),
        "lone low in a category name": (at_cat("\\udfff"), "\\udfff", "categories[0].name"),
        "lone high in an annotation": (good.replace('["' + pair + '"', '["\\ud800"', 1), "\\ud800", "annotations[1].attributes.k\U0001f600[0]"),
        "lone high in a key": (good.replace('"k' + pair, '"k\\ud83d', 1), "\\ud83d", "annotations[1].attributes"),
        "lone in info after the annotations": (good.replace(pair * 3, pair * 2 + "\\ud83d", 1), "\\ud83d", "info.description"),
    }


@pytest.mark.parametrize("name", sorted(_lone_cases()))
def test_a_lone_surrogate_is_refused_located(tmp_path, name):
    text, escape, location = _lone_cases()[name]
    took, valid = _handle(tmp_path, text)  # the same report on both paths
    assert not took and not valid
    r = validate_annotation_file(tmp_path / "ann.json", lim=LIM)
    assert r.report["error_count"] == 1, r.report
    (error,) = r.report["errors"]
    assert (error["code"], error["location"]) == ("invalid_json", location)
    assert error["message"].startswith(LONE.format(escape)), error["message"]


@pytest.mark.parametrize(
    ("escaped", "name"),
    [
        ("a\\\\ud83d", "a\\ud83d"),  # an escaped backslash, then the text "ud83d"
        ("\\\\\\\\ude00", "\\\\ude00"),
        ("\\\\\\ud83d\\ude00", "\\" + EMOJI),  # an escaped backslash, then a pair
    ],
)
def test_backslashes_before_a_u_are_not_a_surrogate_escape(tmp_path, escaped, name):
    text = json.dumps(coco()).replace('"cat1"', f'"{escaped}"')
    assert json.loads(text)["categories"][0]["name"] == name
    assert _check(tmp_path, text)
    assert validate_annotation_file(tmp_path / "ann.json", lim=LIM).categories[0]["name"] == name


# --------------------------------------------------------------------------------------
# raw UTF-8 (json.dumps(..., ensure_ascii=False), Go, JS): well-formed sequences (RFC 3629)
# are taken by the compiled pass, malformed ones are refused by both paths with one report

UTF8_GOOD = {
    "2 bytes": "caf\u00e9".encode(),
    "3 bytes": "\u628a\u624b".encode(),
    "4 bytes": "\U0001f600".encode(),
    "edges": "\u0080\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff".encode(),
}
UTF8_BAD = {
    "overlong 2 bytes": b"\xc0\xaf",
    "overlong 2 bytes c1": b"\xc1\xbf",
    "overlong 3 bytes": b"\xe0\x9f\xbf",
    "overlong 4 bytes": b"\xf0\x8f\xbf\xbf",
    "surrogate high": b"\xed\xa0\x80",
    "surrogate low": b"\xed\xbf\xbf",
    "above 10ffff": b"\xf4\x90\x80\x80",
    "lead f5": b"\xf5\x80\x80\x80",
    "byte ff": b"\xff",
    "continuation alone": b"\x80",
    "continuation after ascii": b"a\xbf",
    "truncated 2 bytes": b"\xc3",
    "truncated 3 bytes": b"\xe4\xb8",
    "truncated 4 bytes": b"\xf0\x9f\x98",
    "lead then ascii": b"\xe4\xb8A",
}


def _utf8_places() -> dict:
    """Where the bytes go: names, keys and values, before and after the annotations, and in
    the annotations the compiled pass reads itself (the first and a later one)."""
    good = json.dumps(coco()).encode()
    assert good.endswith(b"}]}") and b'"cat1"' in good and b'"annotations": [' in good
    first = good.index(b'"annotations": [') + len(b'"annotations": [{')
    return {
        "file name": lambda x: good.replace(b"img1.png", b"img1" + x + b".png"),
        "category name": lambda x: good.replace(b'"cat1"', b'"cat1' + x + b'"'),
        "top-level key": lambda x: b'{"' + x + b'": 1, ' + good[1:],
        "image key": lambda x: good.replace(b'"file_name"', b'"k' + x + b'": [1], "file_name"', 1),
        "first annotation key": lambda x: good[:first] + b'"' + x + b'": null, ' + good[first:],
        "first annotation value": lambda x: good[:first] + b'"note": "' + x + b'", ' + good[first:],
        "last annotation key and value": lambda x: good[:-3] + b', "' + x + b'": {"a": ["' + x + b'"]}}]}',
        "after the annotations": lambda x: good[:-1] + b', "info": {"description": "' + x + b'"}}',
        "end of file": lambda x: good[:-1] + b', "info": "' + x,
    }


@pytest.mark.parametrize("place", sorted(set(_utf8_places()) - {"end of file"}))  # cut inside a string: refused whatever its bytes
@pytest.mark.parametrize("seq", sorted(UTF8_GOOD))
def test_raw_utf8_is_taken_by_the_compiled_pass(tmp_path, seq, place):
    text = _utf8_places()[place](UTF8_GOOD[seq])
    assert _check(tmp_path, text)  # taken, valid, the same result on the Python path
    # the same file written escaped: the same result
    escaped = tmp_path / "escaped.json"
    escaped.write_text(json.dumps(json.loads(text)), encoding="utf-8")
    r = validate_annotation_file(tmp_path / "ann.json", lim=LIM)
    assert _fields(validate_annotation_file(escaped, lim=LIM)) == _fields(r)


UTF8_LOCATIONS = {
    "file name": "images[0].file_name",
    "category name": "categories[0].name",
    "top-level key": "$",
    "image key": "images[0].id",  # a bad key: located at the key before it
    "first annotation key": "annotations[0]",
    "first annotation value": "annotations[0].note",
    "last annotation key and value": "annotations[5].iscrowd",
    "after the annotations": "info.description",
}


@pytest.mark.parametrize("place", sorted(_utf8_places()))
@pytest.mark.parametrize("seq", sorted(UTF8_BAD))
def test_malformed_utf8_is_refused_located_on_both_paths(tmp_path, seq, place):
    text = _utf8_places()[place](UTF8_BAD[seq])
    with pytest.raises(UnicodeDecodeError):
        text.decode("utf-8")
    took, valid = _handle(tmp_path, text)  # the same report on both paths
    assert not took and not valid
    r = validate_annotation_file(tmp_path / "ann.json", lim=LIM)
    assert r.report["error_count"] == 1, r.report
    (error,) = r.report["errors"]
    assert error["code"] == "invalid_json", error
    if place != "end of file":  # (there the file ends inside a string: premature end or bad bytes)
        assert error["message"] == "not valid JSON: a string is not valid UTF-8 text", error
        assert error["location"] == UTF8_LOCATIONS[place], error
