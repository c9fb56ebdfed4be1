"""The hostile corpus over every untrusted path, end to end: real worker process, live
server, every file through the API over HTTP.

Every case of ``tests/hostile_masks.py`` (malformed RLEs, among them
``{"size": [10, 10], "counts": "0Xo0"}`` and ``{"size": [48, 64], "counts": "!!!not-rle"}``'s
kind, malformed polygons, non-masks, oversized dimensions), plus a declared size that
differs from the image file's header and file names that leave the version, goes into:

* a seller's annotations and second pass (an instances version),
* a seller's YouTube-VIS file (a video version),
* a seller's panoptic JSON (a panoptic version),
* an auditor's reference (``POST versions/{id}/audit/reference/``),
* a buyer's results (``POST listings/{slug}/evaluations/``).

Each is refused at validation with its code and its JSON path (the seller reads them in
the version's validation report; the auditor and the buyer get a 400). The worker stays
up, no step hangs, and what the seller can read of the jobs holds no traceback.

Cases that the structure pass refuses before any mask is looked at (numbers past 64 bits
or past the float range, NaN) stop the reading of their file, so each of those is a file
of its own.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from PIL import Image

from tests.hostile_masks import MASK_CASES, SIZE_CASES, Case, coco_text, location
from tests.workers.shapes_api import Person, jobs, seller_submit, wait_sample, wait_state

pytestmark = [pytest.mark.worker, pytest.mark.timeout(900)]

WORKER_ENV = {"QUALITY_DEVICE": "cpu", "PIPELINE_MAX_RETRIES": "1", "PIPELINE_RETRY_BACKOFF_MAX": "2"}
IN_PIPELINE = ("submitted", "processing")
STRUCTURAL = {name for name, c in MASK_CASES.items() if c.code in ("number_out_of_range", "non_finite_number")}
IN_FILE = sorted(set(MASK_CASES) - STRUCTURAL)
TRAVERSAL = "../../etc/passwd.png"
GOOD = "[[1, 1, 5, 1, 5, 5, 1, 5]]"


def _png(width: int, height: int, seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (seed * 40 % 256, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _ann(ann_id: int, image_id: int, segmentation: str) -> str:
    return f'{{"id": {ann_id}, "image_id": {image_id}, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": {segmentation}}}'


def _image(image_id: int, file_name: str, dims: str = '"height": 10, "width": 10') -> str:
    return json.dumps({"id": image_id, "file_name": file_name})[:-1] + f", {dims}}}"


def instances_file() -> tuple[str, set[tuple[str, str]]]:
    """One COCO file holding every in-file mask case (annotations[1..], on image 2), every
    size case (an image each), a header mismatch (image 3) and a traversal name (image 4);
    with what the gate must report for each."""
    images = [_image(1, "img1.png"), _image(2, "img2.png"), _image(3, "img3.png"), _image(4, TRAVERSAL), _image(5, "img48.png", '"height": 48, "width": 64')]
    expected = {("image_size_mismatch", "images[2]"), ("unsafe_path", "images[3].file_name")}
    for name in sorted(SIZE_CASES):
        case = SIZE_CASES[name]
        index = len(images)
        images.append(_image(100 + index, "img1.png", case.image))
        expected.add((case.code, case.where.replace("images[1]", f"images[{index}]")))
    anns = [_ann(1, 1, GOOD)]
    for name in IN_FILE:
        case = MASK_CASES[name]
        expected.add((case.code, location(case, f"annotations[{len(anns)}].segmentation")))
        anns.append(_ann(len(anns) + 1, 2, case.segmentation))
    # the issue's own example, on a 48x64 image
    expected.add(("rle_bad_character", f"annotations[{len(anns)}].segmentation.counts"))
    anns.append(_ann(len(anns) + 1, 5, '{"size": [48, 64], "counts": "!!!not-rle"}'))
    text = '{"images": [' + ", ".join(images) + '], "categories": [{"id": 1, "name": "thing"}], "annotations": [' + ", ".join(anns) + "]}"
    return text, expected


def structural_files(prefix: str) -> dict[str, tuple[str, tuple[str, str]]]:
    return {f"{prefix}{name}.json": (coco_text(MASK_CASES[name]), (MASK_CASES[name].code, location(MASK_CASES[name], "annotations[1].segmentation"))) for name in sorted(STRUCTURAL)}


def ytvis_file(cases: list[str]) -> tuple[str, set[tuple[str, str]]]:
    """A YouTube-VIS file: each case as the first frame's mask of a track (a null frame is a
    frame without the object there: not a case here), a video 70000 pixels high and a frame
    named outside the version."""
    videos = [
        '{"id": 1, "width": 10, "height": 10, "length": 2, "file_names": ["v1/0.png", "v1/1.png"]}',
        f'{{"id": 2, "width": 10, "height": 70000, "length": 1, "file_names": ["{TRAVERSAL}"]}}',
    ]
    expected = {("image_too_large", "videos[1].height"), ("unsafe_path", "videos[1].file_names[0]")}
    anns = []
    for k, name in enumerate(cases):
        case = MASK_CASES[name]
        expected.add((case.code, location(case, f"annotations[{k}].segmentations[0]")))
        anns.append(
            f'{{"id": {k + 1}, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [{case.segmentation}, null], '
            '"areas": [16.0, null], "bboxes": [[1, 1, 4, 4], null]}'
        )
    text = '{"videos": [' + ", ".join(videos) + '], "categories": [{"id": 1, "name": "thing"}], "annotations": [' + ", ".join(anns) + "]}"
    return text, expected


def _report(person: Person, version_id: int) -> list[dict]:
    body = person.ok("GET", f"versions/{version_id}/")
    assert body["state"] == "failed_validation", body["state"]
    return body["validation_report"]["errors"]


def _assert_refused(errors: list[dict], file: str, expected: set[tuple[str, str]]) -> None:
    got = {(e["code"], e["location"]) for e in errors if e.get("file") == file}
    missing = expected - got
    assert not missing, f"{file}: not reported: {sorted(missing)}; got {sorted(got)}"


def _no_traceback(person: Person, version_id: int) -> None:
    text = json.dumps(person.ok("GET", f"versions/{version_id}/jobs/"))
    assert "Traceback" not in text and 'File \\"' not in text, text


def _results_code(case: Case, name: str) -> str:
    # What the gate says of the case once Python's json has read it (it reads NaN, and
    # integers of any size, which the compiled reader refuses as text).
    if name == "counts-huge":
        return "rle_run_overflow"
    return case.code if case.engine == "invalid_json" else case.engine_code


def test_every_untrusted_path_refuses_the_hostile_corpus_located(worker_factory, live_server, seller, auditor, moderator, buyer):
    worker = worker_factory(extra_env=WORKER_ENV)
    people = {name: Person(live_server.url, actor) for name, actor in (("seller", seller), ("auditor", auditor), ("moderator", moderator), ("buyer", buyer))}
    s, a, m, b = people["seller"], people["auditor"], people["moderator"], people["buyer"]

    # The seller's files: annotations and second pass (instances), YouTube-VIS, panoptic.
    images = _zip({"img1.png": _png(10, 10, 1), "img2.png": _png(10, 10, 2), "img3.png": _png(10, 12, 3), "img48.png": _png(64, 48, 4)})
    text, instances_expected = instances_file()
    files = {("images", "images.zip"): images, ("annotations", "annotations.json"): text.encode(), ("second_pass", "second_pass.json"): text.encode()}
    structural = structural_files("hostile-") | structural_files("second_pass-")
    for name, (body, _) in structural.items():
        files[("second_pass" if name.startswith("second_pass") else "annotations", name)] = body.encode()
    instances = seller_submit(s, slug="hostile-instances", annotation_kind="instances", files=files)

    video_cases = [n for n in IN_FILE if n != "segmentation-null"]
    ytvis, ytvis_expected = ytvis_file(video_cases)
    video_files = {("images", "frames.zip"): _zip({"v1/0.png": _png(10, 10), "v1/1.png": _png(10, 10, 1)}), ("video", "tracks.json"): ytvis.encode()}
    video_structural = {}
    for name in sorted(STRUCTURAL):
        one, _ = ytvis_file([])
        one = one.replace('"annotations": []', '"annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "segmentations": [' + MASK_CASES[name].segmentation + ', null]}]')
        video_structural[f"tracks-{name}.json"] = (MASK_CASES[name].code, location(MASK_CASES[name], "annotations[0].segmentations[0]"))
        video_files[("video", f"tracks-{name}.json")] = one.encode()
    video = seller_submit(s, slug="hostile-video", annotation_kind="video", files=video_files)

    panoptic_doc = {
        "images": [{"id": 1, "file_name": "img1.png", "height": 10, "width": 10}, {"id": 2, "file_name": "img2.png", "height": 70000, "width": 10}],
        "categories": [{"id": 1, "name": "thing", "isthing": 1}],
        "annotations": [
            {"image_id": 1, "file_name": "pan/1.png", "segments_info": [{"id": 1, "category_id": 1, "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0}]},
            {"image_id": 2, "file_name": TRAVERSAL, "segments_info": [{"id": 1, "category_id": 1, "area": 4, "bbox": [0, 0, 2, 2], "iscrowd": 0}]},
        ],
    }
    panoptic = seller_submit(
        s, slug="hostile-panoptic", annotation_kind="panoptic",
        files={("images", "images.zip"): _zip({"img1.png": _png(10, 10), "img2.png": _png(10, 10)}), ("panoptic", "pan.zip"): _zip({"pan/1.png": _png(10, 10)}),
               ("panoptic", "panoptic.json"): json.dumps(panoptic_doc).encode()},
    )

    # A sound version (10x10 images) for the auditor's reference and the buyer's results.
    good = {
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": [{"id": i, "file_name": f"good/{i}.png", "height": 10, "width": 10, "license": 1} for i in range(1, 13)],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "area": 16.0, "bbox": [1, 1, 4, 4], "iscrowd": 0, "segmentation": json.loads(GOOD)} for i in range(1, 13)],
    }
    sound = seller_submit(
        s, slug="hostile-target", annotation_kind="instances",
        files={("images", "images.zip"): _zip({f"good/{i}.png": _png(10, 10, i) for i in range(1, 13)}), ("annotations", "annotations.json"): json.dumps(good).encode()},
    )

    # The seller reads each refusal, located, in the validation report.
    for version_id in (instances, video, panoptic):
        wait_state(s, version_id, leave=IN_PIPELINE, timeout=300)
    errors = _report(s, instances)
    _assert_refused(errors, "annotations.json", instances_expected)
    second_pass_expected = {e for e in instances_expected if not e[1].startswith("images[")}  # no image file checks on a second pass
    _assert_refused(errors, "second_pass.json", second_pass_expected)
    for name, (_, where) in structural.items():
        _assert_refused(errors, name, {where})
    errors = _report(s, video)
    _assert_refused(errors, "tracks.json", ytvis_expected)
    for name, where in video_structural.items():
        _assert_refused(errors, name, {where})
    errors = _report(s, panoptic)
    _assert_refused(errors, "panoptic.json", {("unsafe_path", "annotations[1].file_name"), ("image_too_large", "images[1].height")})
    for version_id in (instances, video, panoptic):
        assert jobs(s, version_id)["ingest"]["state"] == "failed_validation"
        _no_traceback(s, version_id)

    # The auditor's reference: refused whole, located, nothing stored.
    sample = wait_sample(a, sound)["image_ids"]
    ref_anns = [_ann(1, sample[0], GOOD)]
    ref_expected = set()
    for name in IN_FILE:
        case = MASK_CASES[name]
        ref_expected.add((case.code, location(case, f"annotations[{len(ref_anns)}].segmentation")))
        ref_anns.append(_ann(len(ref_anns) + 1, sample[0], case.segmentation))
    ref_images = ", ".join(_image(i, f"good/{i}.png") for i in sample)
    reference = '{"images": [' + ref_images + '], "categories": [{"id": 1, "name": "thing"}], "annotations": [' + ", ".join(ref_anns) + "]}"
    status, body = a.call("POST", f"versions/{sound}/audit/reference/", raw=reference.encode())
    assert status == 400 and body["code"] == "invalid_reference", body
    missing = ref_expected - {(d["code"], d["location"]) for d in body["details"]}
    assert not missing, sorted(missing)
    for name in sorted(STRUCTURAL):
        status, body = a.call("POST", f"versions/{sound}/audit/reference/", raw=coco_text(MASK_CASES[name]).encode())
        assert status == 400 and (MASK_CASES[name].code, location(MASK_CASES[name], "annotations[1].segmentation")) in {(d["code"], d["location"]) for d in body["details"]}, (name, body)
    assert "quality_audit" not in jobs(s, sound) or jobs(s, sound)["quality_audit"]["state"] == "waiting"

    # A sound reference; the version goes on, is approved, and a buyer tries hostile results.
    sound_ref = {**good, "images": [i for i in good["images"] if i["id"] in sample], "annotations": [x for x in good["annotations"] if x["image_id"] in sample]}
    a.ok("POST", f"versions/{sound}/audit/reference/", raw=json.dumps(sound_ref).encode())
    assert wait_state(s, sound, leave=IN_PIPELINE, timeout=300)["state"] == "in_review"
    m.ok("POST", f"moderation/versions/{sound}/decision/", {"decision": "approve", "reason": "fine"})
    split = b.ok("GET", "listings/hostile-target/evaluation-split/")["results"]
    target = split[0]["id"]
    results_cases = [n for n in sorted(MASK_CASES) if MASK_CASES[n].engine != "ok"]  # polygons past the edge are clipped, as pycocotools does
    for start in range(0, len(results_cases), 15):
        chunk = results_cases[start : start + 15]
        entries = [f'{{"image_id": {target}, "category_id": 1, "score": 0.5, "segmentation": {MASK_CASES[n].segmentation}}}' for n in chunk]
        status, body = b.call("POST", "listings/hostile-target/evaluations/", raw=("[" + ", ".join(entries) + "]").encode())
        assert status == 400 and body["code"] == "invalid_results", body
        got = {(d["code"], d["location"]) for d in body["details"]}
        want = {(_results_code(MASK_CASES[n], n), location(MASK_CASES[n], f"[{k}].segmentation")) for k, n in enumerate(chunk)}
        assert want <= got, (sorted(want - got), body)

    # Nothing hung, the worker never died.
    assert worker.proc.poll() is None
    for version_id in (instances, video, panoptic, sound):
        assert all(j["state"] not in ("queued", "running") for j in jobs(s, version_id).values())
