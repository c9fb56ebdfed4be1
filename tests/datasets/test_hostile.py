"""Hostile archives and hostile annotation JSON: each refused with a specific code and
location, nothing written outside the scratch directory."""

import io
import json
import os
import tarfile
import zipfile
from dataclasses import replace

import pytest

from datasets.ingest.archive import ArchiveError, safe_extract
from datasets.ingest.images import check_image
from datasets.limits import Limits
from datasets.validation import validate_annotation_file
from quality.engine import native
from tests.datasets.helpers import coco, png_bytes
from tests.hostile_masks import CASES as HOSTILE
from tests.hostile_masks import coco_text, location

LIM = replace(Limits(), archive_max_files=50, archive_max_ratio=100.0, archive_max_total=64 * 1024 * 1024, json_max_bytes=512 * 1024 * 1024)


def _zip(path, members: dict, attrs: dict | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if attrs and name in attrs:
                info.external_attr = attrs[name] << 16
            zf.writestr(info, data)
    return path


def _tar(path, build):
    with tarfile.open(path, "w:gz") as tf:
        build(tf)
    return path


def _add(tf, name, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if data else None)


def _zip_bomb(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.png", b"\0" * (50 * 1024 * 1024))
    return path


def _nested(path, tmp_path):
    inner = _zip_bomb(tmp_path / "inner.zip")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.write(inner, "images/inner.png")  # an archive disguised as an image
    return path


CASES = {
    "zip_path_escape": (lambda p, t: _zip(p, {"../../evil.png": b"x"}), "path_escape", "../../evil.png"),
    "zip_absolute": (lambda p, t: _zip(p, {"/etc/evil.png": b"x"}), "absolute_path", "/etc/evil.png"),
    "zip_symlink": (lambda p, t: _zip(p, {"link.png": b"/etc/passwd"}, {"link.png": 0o120777}), "symlink", "link.png"),
    "zip_device": (lambda p, t: _zip(p, {"dev.png": b""}, {"dev.png": 0o020666}), "special_file", "dev.png"),
    "zip_bomb": (lambda p, t: _zip_bomb(p), "compression_ratio", "a.png"),
    "nested_bomb": (lambda p, t: _nested(p, t), "nested_archive", "images/inner.png"),
    "many_tiny_files": (lambda p, t: _zip(p, {f"f{i}.png": b"x" for i in range(51)}), "too_many_files", None),
    "tar_path_escape": (lambda p, t: _tar(p, lambda tf: _add(tf, "a/../../evil.png", b"x")), "path_escape", "a/../../evil.png"),
    "tar_absolute": (lambda p, t: _tar(p, lambda tf: _add(tf, "/tmp/evil.png", b"x")), "absolute_path", "/tmp/evil.png"),
    "tar_symlink": (lambda p, t: _tar(p, lambda tf: _add(tf, "s.png", type=tarfile.SYMTYPE, linkname="/etc/passwd")), "symlink", "s.png"),
    "tar_hardlink": (
        lambda p, t: _tar(p, lambda tf: (_add(tf, "a.png", b"x"), _add(tf, "h.png", type=tarfile.LNKTYPE, linkname="a.png"))),
        "hardlink",
        "h.png",
    ),
    "tar_device": (
        lambda p, t: _tar(p, lambda tf: _add(tf, "dev.png", type=tarfile.CHRTYPE, devmajor=1, devminor=3)),
        "special_file",
        "dev.png",
    ),
    "tar_fifo": (lambda p, t: _tar(p, lambda tf: _add(tf, "fifo.png", type=tarfile.FIFOTYPE)), "special_file", "fifo.png"),
    "tar_bomb": (lambda p, t: _tar(p, lambda tf: _add(tf, "big.png", b"\0" * (80 * 1024 * 1024))), "compression_ratio", "big.png"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_archive_is_refused(tmp_path, case):
    build, code, location = CASES[case]
    src = tmp_path / "src"
    src.mkdir()
    archive = build(src / ("a.zip" if case.startswith(("zip", "nested", "many")) else "a.tar.gz"), src)
    scratch = tmp_path / "scratch"
    before = set(tmp_path.parent.iterdir())
    with pytest.raises(ArchiveError) as err:
        safe_extract(archive, scratch, lim=LIM)
    assert err.value.code == code
    if location:
        assert err.value.location == location
    # nothing outside the scratch directory
    assert set(tmp_path.parent.iterdir()) == before
    assert not (tmp_path / "evil.png").exists() and not os.path.exists("/tmp/evil.png")
    for path in scratch.rglob("*"):
        assert path.resolve().is_relative_to(scratch.resolve())
        assert not path.is_symlink()


def test_good_archive_extracts(tmp_path):
    archive = _zip(tmp_path / "ok.zip", {"images/a.png": png_bytes(), "images/b.png": png_bytes()})
    out = safe_extract(archive, tmp_path / "x", lim=LIM)
    assert sorted(m.path for m in out) == ["images/a.png", "images/b.png"]
    assert all(check_image(m.local, lim=LIM) is None for m in out)


def test_image_checks(tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"this is not a png")
    assert check_image(fake, lim=LIM)[0] == "not_an_image"
    big = tmp_path / "bomb.png"
    big.write_bytes(png_bytes(400, 300))
    assert check_image(big, lim=replace(LIM, image_max_pixels=100_000))[0] == "decompression_bomb"
    assert check_image(big, lim=replace(LIM, image_max_side=399))[0] == "image_too_large"
    sizes: dict = {}
    assert check_image(big, lim=LIM, sizes=sizes, name="imgs/bomb.png") is None
    assert sizes == {"imgs/bomb.png": (300, 400)}


def _write(tmp_path, obj) -> str:
    p = tmp_path / "ann.json"
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(p)


def _mut(fn):
    d = coco()
    fn(d)
    return d


JSON_CASES = {
    "not_object": ("[1, 2]", "wrong_type", "$"),
    "missing_section": (_mut(lambda d: d.pop("categories")), "missing_section", "categories"),
    "wrong_type_section": (_mut(lambda d: d.__setitem__("images", {"a": 1})), "wrong_type", "images"),
    "wrong_type_id": (_mut(lambda d: d["annotations"][2].__setitem__("id", "7")), "wrong_type", "annotations[2].id"),
    "dangling_image": (_mut(lambda d: d["annotations"][3].__setitem__("image_id", 99)), "dangling_image_id", "annotations[3].image_id"),
    "dangling_category": (
        _mut(lambda d: d["annotations"][1].__setitem__("category_id", 42)),
        "dangling_category_id",
        "annotations[1].category_id",
    ),
    "duplicate_image_id": (_mut(lambda d: d["images"][1].__setitem__("id", 1)), "duplicate_id", "images[1].id"),
    "duplicate_annotation_id": (_mut(lambda d: d["annotations"][4].__setitem__("id", 1)), "duplicate_id", "annotations[4].id"),
    "odd_polygon": (
        _mut(lambda d: d["annotations"][0].__setitem__("segmentation", [[1, 1, 5, 1, 5, 5, 9]])),
        "polygon_odd_length",
        "annotations[0].segmentation[0]",
    ),
    "short_polygon": (
        _mut(lambda d: d["annotations"][5].__setitem__("segmentation", [[1, 1, 5, 5, 1, 9, 2, 2], [1, 1, 5, 5]])),
        "polygon_too_short",
        "annotations[5].segmentation[1]",
    ),
    "nan": (
        '{"images": [{"id": 1, "width": 4, "height": 4, "file_name": "a.png"}], "categories": [], "annotations": [{"id": 1, "segmentation": [[1, 2, NaN, 4, 5, 6]]}]}',
        "non_finite_number",
        "annotations[0].segmentation[0][2]",
    ),
    "infinity": (
        '{"images": [], "categories": [], "annotations": [{"id": 1, "area": Infinity}]}',
        "non_finite_number",
        "annotations[0].area",
    ),
    "overflow": (_mut(lambda d: d["annotations"][0].__setitem__("area", 1e999)), "non_finite_number", "annotations[0].area"),
    # the parser quotes the file around its error: a key like "info" there is no Infinity
    "bare_word_beside_info": (
        '{"info": {"version": v1}, "images": [], "categories": [], "annotations": []}',
        "invalid_json",
        "info.version",
    ),
    "lowercase_inf": ('{"images": [], "categories": [], "annotations": [{"id": 1, "area": inf}]}', "non_finite_number", "annotations[0].area"),
    "rle_size": (
        _mut(lambda d: d["annotations"][2].__setitem__("segmentation", {"size": [10, 10], "counts": "abc"})),
        "rle_size_mismatch",
        "annotations[2].segmentation.size",
    ),
    "rle_outside": (
        _mut(lambda d: d["annotations"][2].__setitem__("segmentation", {"size": [24, 32], "counts": [10, 800]})),
        "rle_sum_mismatch",
        "annotations[2].segmentation.counts",
    ),
    "polygon_outside": (
        _mut(lambda d: d["annotations"][1].__setitem__("segmentation", [[1, 1, 50, 1, 50, 5]])),
        "mask_outside_image",
        "annotations[1].segmentation[0]",
    ),
    "rle_runs_past_the_image": (
        _mut(lambda d: d["annotations"][2].__setitem__("segmentation", {"size": [24, 32], "counts": "0Xo0"})),
        "rle_sum_mismatch",
        "annotations[2].segmentation.counts",
    ),
    "rle_not_rle": (
        _mut(lambda d: d["annotations"][2].__setitem__("segmentation", {"size": [24, 32], "counts": "!!!not-rle"})),
        "rle_bad_character",
        "annotations[2].segmentation.counts",
    ),
    "image_too_large": (
        _mut(lambda d: d["images"][1].update(height=70000, width=70000)),
        "image_too_large",
        "images[1].height",
    ),
    "deep_nesting": ('{"images": ' + "[" * 5000 + "]" * 5000 + "}", "too_deep", None),
    "invalid_json": ('{"images": [1, 2,', "invalid_json", None),
}


@pytest.mark.parametrize("case", sorted(JSON_CASES))
def test_hostile_json_is_refused(tmp_path, case):
    obj, code, location = JSON_CASES[case]
    result = validate_annotation_file(_write(tmp_path, obj), lim=LIM)
    assert not result.valid
    first = result.report["errors"][0]
    assert first["code"] == code, result.report
    if location:
        assert first["location"] == location, result.report
    assert first["message"]
    assert result.statistics == {}


@pytest.mark.parametrize("shift", range(-10, 3))
@pytest.mark.parametrize(("word", "code"), [("NaN", "non_finite_number"), ("-Infinity", "non_finite_number"), ("tru", "invalid_json")])
def test_a_bare_word_is_judged_whole_where_the_parser_reads_it_in_two_pieces(tmp_path, shift, word, code):
    """The parser reads the file in 64 KiB pieces and quotes only the piece it stopped in:
    a word across the boundary is read from the file itself."""
    head = '{"info": {"description": "'
    tail = '"}, "images": [], "categories": [], "annotations": [{"id": 1, "area": '
    text = head + "a" * (64 * 1024 - len(head) - len(tail) + shift) + tail + word + "}]}"
    result = validate_annotation_file(_write(tmp_path, text), lim=LIM)
    first = result.report["errors"][0]
    assert (first["code"], first["location"]) == (code, "annotations[0].area"), result.report


def test_declared_size_is_compared_with_the_image_file(tmp_path):
    sizes = {"img1.png": (24, 32), "imgs/img2.png": (48, 64)}  # (height, width) from the headers
    result = validate_annotation_file(_write(tmp_path, coco()), image_sizes=sizes, lim=LIM)
    assert [(e["code"], e["location"]) for e in result.report["errors"]] == [("image_size_mismatch", "images[1]")]
    assert "48x64" in result.report["errors"][0]["message"] and "24x32" in result.report["errors"][0]["message"]


def test_image_limits_come_from_the_settings(tmp_path):
    small = replace(LIM, image_max_side=30)
    result = validate_annotation_file(_write(tmp_path, coco()), lim=small)  # 24x32 images
    first = result.report["errors"][0]
    assert (first["code"], first["location"]) == ("image_too_large", "images[0].width")
    result = validate_annotation_file(_write(tmp_path, coco()), lim=replace(LIM, image_max_pixels=700))
    assert (result.report["errors"][0]["code"], result.report["errors"][0]["location"]) == ("image_too_large", "images[0]")


def test_limits_cannot_exceed_the_engines_bounds(settings):
    from django.core.exceptions import ImproperlyConfigured

    from datasets.limits import limits

    settings.DATASETS_LIMITS = {"image_max_side": 100_000}
    with pytest.raises(ImproperlyConfigured):
        limits()
    settings.DATASETS_LIMITS = {"image_max_side": 4096}
    assert limits().image_max_side == 4096


def test_referenced_image_missing(tmp_path):
    result = validate_annotation_file(_write(tmp_path, coco()), check_image_files=lambda name: name != "img2.png", lim=LIM)
    assert [(e["code"], e["location"]) for e in result.report["errors"]] == [("image_file_missing", "images[1].file_name")]


def test_one_gigabyte_file_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.json"
    with open(path, "wb") as fh:  # sparse: 1 GB on paper, a few bytes on disk
        fh.write(b'{"images": [')
        fh.seek(1024**3 - 2)
        fh.write(b"]}")
    result = validate_annotation_file(path, lim=LIM)
    assert result.report["errors"][0]["code"] == "file_too_large" and result.report["errors"][0]["location"] == "$"


def test_valid_file_statistics(tmp_path):
    result = validate_annotation_file(_write(tmp_path, coco(n_images=3)), lim=LIM)
    assert result.valid, result.report
    s = result.statistics
    assert s["images"] == 3 and s["instances"] == 6 and s["frames"] == 3 and s["has_tracks"] is False
    assert sum(c["count"] for c in s["categories"]) == 6
    assert s["licenses"] == [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/", "images": 3}]
    assert s["images_without_license"] == 0
    assert set(s) >= {"instances_per_image", "area_histogram"}


def test_format_detection(tmp_path):
    ytvis = {
        "videos": [{"id": 1, "width": 8, "height": 8, "file_names": ["a.jpg", "b.jpg"]}],
        "categories": [{"id": 1, "name": "x"}],
        "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "segmentations": [None, {"size": [8, 8], "counts": [0, 64]}]}],
    }
    r = validate_annotation_file(_write(tmp_path, ytvis), lim=LIM)
    assert r.valid and r.format == "youtube_vis" and r.statistics["frames"] == 2 and r.statistics["has_tracks"]
    d = coco()
    for a in d["annotations"]:
        a["track_id"] = a["id"] % 3
    assert validate_annotation_file(_write(tmp_path, d), lim=LIM).format == "coco_video"
    pan = {
        "images": [{"id": 1, "width": 8, "height": 8, "file_name": "a.jpg"}],
        "categories": [{"id": 1, "name": "x", "isthing": 1}],
        "annotations": [
            {"image_id": 1, "file_name": "a.png", "segments_info": [{"id": 5, "category_id": 1, "area": 3, "bbox": [0, 0, 1, 3]}]}
        ],
    }
    r = validate_annotation_file(_write(tmp_path, pan), lim=LIM)
    assert r.valid and r.format == "coco_panoptic", r.report


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_masks_give_the_same_report_on_both_paths(tmp_path, name):
    """The mask gate's report, word for word, with the compiled kernels and on the Python path."""
    case = HOSTILE[name]
    path = tmp_path / "ann.json"
    path.write_text(coco_text(case), encoding="utf-8")
    compiled = validate_annotation_file(path, lim=LIM).report
    with native.disabled():
        python = validate_annotation_file(path, lim=LIM).report
    assert compiled == python
    assert not compiled["valid"]
    first = compiled["errors"][0]
    assert (first["code"], first["location"]) == (case.code, location(case, "annotations[1].segmentation")), compiled



@pytest.mark.parametrize(
    "name",
    ["../../x.png", "imgs/../../../etc/passwd", "/etc/passwd", "C:/x.png", "imgs\\..\\x.png", "imgs/x\x00.png", ".."],
)
def test_file_names_that_leave_the_version_are_refused_located(tmp_path, name):
    data = coco()
    data["images"][1]["file_name"] = name
    # refused even where the caller checks no files (a second pass) and whatever a file
    # lookup would say
    for present in (None, lambda n: True):
        result = validate_annotation_file(_write(tmp_path, data), check_image_files=present, lim=LIM)
        assert [(e["code"], e["location"]) for e in result.report["errors"]] == [("unsafe_path", "images[1].file_name")]


def test_panoptic_png_names_that_leave_the_version_are_refused_located(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 24, "width": 32}, {"id": 2, "file_name": "b.png", "height": 24, "width": 32}],
        "categories": [{"id": 1, "name": "bolt", "isthing": 1}],
        "annotations": [
            {"image_id": 1, "file_name": "pan/a.png", "segments_info": [{"id": 1, "category_id": 1, "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0}]},
            {"image_id": 2, "file_name": "../../b.png", "segments_info": [{"id": 1, "category_id": 1, "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0}]},
        ],
    }
    result = validate_annotation_file(_write(tmp_path, data), check_image_files=lambda n: True, lim=LIM)
    assert [(e["code"], e["location"]) for e in result.report["errors"]] == [("unsafe_path", "annotations[1].file_name")]
