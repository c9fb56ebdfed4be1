"""Scene complexity and coverage measured by version_ingest (real PostgreSQL and S3
endpoint) on hand-made image and video versions whose figures are known."""

import io
import zipfile

import numpy as np
import pytest

from datasets.ingest import version_ingest
from datasets.services import version_transition
from datasets.states import VersionState
from tests.datasets.helpers import add_file, json_bytes, png_bytes
from tests.factories import make_dataset, make_version
from tests.quality.engine.test_scene import box, rle

pytestmark = pytest.mark.django_db
LICENSES = [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}]
CATEGORIES = [{"id": c, "name": f"cat{c}"} for c in (1, 2)]


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _ingested(seller, files: dict, images: dict, **dataset):
    version = make_version(seller=seller, dataset=make_dataset(seller=seller, **dataset))
    for (role, path), doc in files.items():
        add_file(version, role=role, path=path, data=json_bytes(doc))
    add_file(version, role="images", path="images.zip", data=_zip(images))
    for state in (VersionState.SUBMITTED, VersionState.PROCESSING):
        version_transition(version=version, to_state=state, actor=seller.user)
    assert version_ingest(version_id=version.pk) == "ok", version.validation_report
    version.refresh_from_db()
    return version


def _ann(aid: int, image_id: int, cat: int, mask: np.ndarray) -> dict:
    ys, xs = np.nonzero(mask)
    bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
    return {"id": aid, "image_id": image_id, "category_id": cat, "segmentation": rle(mask), "area": int(mask.sum()), "bbox": bbox, "iscrowd": 0}


def _image(iid: int, size: int, **declared) -> dict:
    return {"id": iid, "file_name": f"img{iid}.png", "width": size, "height": size, "license": 1, **declared}


def _listed(version, moderator):
    from marketplace.listings.services import listing_sync

    for state in (VersionState.IN_REVIEW, VersionState.PUBLISHED):
        version_transition(version=version, to_state=state, actor=moderator.user)
    return listing_sync(dataset=version.dataset)


def _found(api_client, **query) -> list[str]:
    resp = api_client.get("/api/v1/listings/", query)
    assert resp.status_code == 200, resp.content
    return [r["slug"] for r in resp.json()["results"]]


def test_image_version_per_version_and_per_split(seller, moderator, api_client):
    s = 40
    train = {
        "licenses": LICENSES,
        "categories": CATEGORIES,
        # img1: two touching squares and a far one (2 categories); img2: one 35x35 square;
        # img3: nothing. Embodiments and tasks declared per image, by alias.
        "images": [
            _image(1, s, embodiment=["Franka", "octobot"], sensor=["rgb", "depth"]),
            _image(2, s, embodiment="ur5-e", task="PnP", sensor="thermal"),
            _image(3, s, robot_type="so100_follower"),
        ],
        "annotations": [
            _ann(1, 1, 1, box(s, s, (0, 10), (0, 10))),
            _ann(2, 1, 2, box(s, s, (0, 10), (10, 20))),
            _ann(3, 1, 1, box(s, s, (30, 40), (30, 40))),
            _ann(4, 2, 1, box(s, s, (0, 35), (0, 35))),
            # a crowd region is no instance
            {**_ann(5, 2, 2, box(s, s, (36, 40), (36, 40))), "iscrowd": 1},
        ],
    }
    val = {"licenses": LICENSES, "categories": CATEGORIES, "images": [_image(4, 100)], "annotations": [_ann(1, 4, 2, box(100, 100, (0, 100), (0, 100)))]}
    images = {"img1.png": png_bytes(s, s), "img2.png": png_bytes(s, s), "img3.png": png_bytes(s, s), "img4.png": png_bytes(100, 100)}
    version = _ingested(seller, {("annotations", "annotations/train.json"): train, ("annotations", "annotations/val.json"): val}, images, sensors=["rgb"])
    scene = version.statistics["scene"]
    assert scene["splits"]["train"] == {
        "frames": 3,
        "instances": 4,
        "instances_per_frame": {"mean": round(4 / 3, 6), "p90": 3},
        "occlusion": 0.5,
        "sizes": {"small": 0.75, "medium": 0.25, "large": 0.0},
        "categories_per_frame": {"mean": 1.0, "p90": 2},
    }
    assert scene["splits"]["val"]["sizes"] == {"small": 0.0, "medium": 0.0, "large": 1.0}
    assert {k: scene[k] for k in ("frames", "instances", "instances_per_frame", "occlusion", "sizes", "categories_per_frame")} == {
        "frames": 4,
        "instances": 5,
        "instances_per_frame": {"mean": 1.25, "p90": 3},
        "occlusion": 0.4,
        "sizes": {"small": 0.6, "medium": 0.2, "large": 0.2},
        "categories_per_frame": {"mean": 1.0, "p90": 2},
    }
    diversity = version.statistics["diversity"]
    assert diversity["source"] == "annotations"
    assert diversity["embodiments"] == {"count": 3, "frames": {"franka-panda": 1, "so100": 1, "ur5e": 1}, "episodes": {"franka-panda": 0, "so100": 0, "ur5e": 0}}
    assert diversity["tasks"] == {"count": 1, "frames": {"pick-and-place": 1}, "episodes": {"pick-and-place": 0}}
    assert diversity["unknown"] == {"embodiments": ["octobot"], "tasks": []}
    assert diversity["undeclared_frames"] == 1  # img4 (val) declares nothing
    assert version.statistics["sensors"] == {"declared": ["rgb"], "frames": {"depth": 1, "rgb": 1, "thermal": 1}, "unknown": []}

    # published, the listing filters by what ingest measured
    listing = _listed(version, moderator)
    assert (listing.instances_per_frame, listing.occlusion, listing.embodiment_count, listing.task_count) == (1.25, 0.4, 3, 1)
    slug = listing.slug
    assert _found(api_client, embodiment="UR5e", min_occlusion="0.4", min_instances_per_frame="1.25", min_embodiments="3") == [slug]
    assert _found(api_client, min_occlusion="0.41") == [] and _found(api_client, min_embodiments="4") == []
    assert _found(api_client, embodiment="so100", task="pick-and-place") == [slug]
    assert listing.sensors == ["rgb", "depth", "thermal"]  # the dataset's, then those its images declare
    assert listing.coverage["embodiments"] == {k: {"frames": 1, "episodes": 0} for k in ("franka-panda", "so100", "ur5e")}
    assert listing.coverage["sensor_frames"] == {"depth": 1, "rgb": 1, "thermal": 1}
    assert _found(api_client, sensor="thermal") == [slug]


def test_video_version_counts_frames_and_episodes(seller, moderator, api_client):
    s = 20
    track1 = [rle(box(s, s, (0, 5), (0, 5)))] * 3
    track2 = [None, rle(box(s, s, (0, 5), (5, 10))), rle(box(s, s, (10, 15), (10, 15)))]  # touches track1 in frame 1 only
    names = [f"v1/{f}.png" for f in range(3)]
    doc = {
        "licenses": LICENSES,
        "categories": CATEGORIES,
        "videos": [{"id": 1, "width": s, "height": s, "length": 3, "file_names": names, "license": 1, "embodiment": "ALOHA", "task": "cloth folding"}],
        "annotations": [
            {"id": 1, "video_id": 1, "category_id": 1, "segmentations": track1, "iscrowd": 0},
            {"id": 2, "video_id": 1, "category_id": 2, "segmentations": track2, "iscrowd": 0},
        ],
    }
    version = _ingested(seller, {("video", "tracks.json"): doc}, {n: png_bytes(s, s) for n in names}, annotation_kind="video")
    scene = version.statistics["scene"]
    assert scene["frames"] == 3 and scene["instances"] == 5
    assert scene["instances_per_frame"] == {"mean": round(5 / 3, 6), "p90": 2}
    assert scene["occlusion"] == 0.4 and scene["sizes"] == {"small": 1.0, "medium": 0.0, "large": 0.0}
    assert scene["categories_per_frame"] == {"mean": round(5 / 3, 6), "p90": 2}
    assert list(scene["splits"]) == ["tracks"]
    d = version.statistics["diversity"]
    assert d["embodiments"] == {"count": 1, "frames": {"aloha": 3}, "episodes": {"aloha": 1}}
    assert d["tasks"] == {"count": 1, "frames": {"folding": 3}, "episodes": {"folding": 1}}
    assert version.statistics["sensors"] == {"declared": [], "frames": None, "unknown": []}
    listing = _listed(version, moderator)
    slug = listing.slug
    assert listing.coverage["embodiments"] == {"aloha": {"frames": 3, "episodes": 1}}
    assert _found(api_client, annotation_kind="video", embodiment="aloha", min_instances_per_frame="1.6", min_occlusion="0.4") == [slug]
    assert _found(api_client, min_instances_per_frame="1.7") == []


def test_without_declarations_the_dataset_declares(seller):
    from tests.listings.catalogue import term

    s = 40
    doc = {"licenses": LICENSES, "categories": CATEGORIES, "images": [_image(1, s)], "annotations": [_ann(1, 1, 1, box(s, s, (0, 10), (0, 10)))]}
    version = _ingested(
        seller, {("annotations", "annotations.json"): doc}, {"img1.png": png_bytes(s, s)}, embodiments=[term("embodiment", "ur5e"), term("embodiment", "spot")]
    )
    d = version.statistics["diversity"]
    assert d["source"] == "dataset" and d["embodiments"]["count"] == 2 and d["embodiments"]["frames"] is None and d["tasks"]["count"] == 0
    assert version.statistics["scene"]["occlusion"] == 0.0


def test_coco_with_tracks_counts_episodes_by_video(seller):
    s = 40

    def frame(iid: int, video: int, index: int, **declared) -> dict:
        return {**_image(iid, s, **declared), "video_id": video, "frame_index": index}

    def tracked(aid: int, image_id: int, track: int, mask) -> dict:
        return {**_ann(aid, image_id, 1, mask), "track_id": track}

    doc = {
        "licenses": LICENSES,
        "categories": CATEGORIES,
        # two episodes: video 1 on the Spot; video 2 on the Spot, then the Stretch
        "images": [frame(1, 1, 0, embodiment="spot"), frame(2, 1, 1, embodiment="spot"), frame(3, 2, 0, embodiment="spot"), frame(4, 2, 1, embodiment="Stretch 3")],
        "annotations": [
            tracked(1, 1, 1, box(s, s, (0, 5), (0, 5))),
            tracked(2, 2, 1, box(s, s, (1, 6), (0, 5))),
            tracked(3, 3, 2, box(s, s, (0, 5), (0, 5))),
            tracked(4, 3, 3, box(s, s, (5, 10), (5, 10))),  # touches track 2 at a corner
        ],
    }
    version = _ingested(seller, {("annotations", "tracks.json"): doc}, {f"img{i}.png": png_bytes(s, s) for i in range(1, 5)}, annotation_kind="video")
    assert version.statistics["format"] == "coco_video"
    scene = version.statistics["scene"]
    assert scene["instances_per_frame"] == {"mean": 1.0, "p90": 2} and scene["occlusion"] == 0.5
    d = version.statistics["diversity"]
    assert d["embodiments"] == {"count": 2, "frames": {"spot": 3, "stretch": 1}, "episodes": {"spot": 2, "stretch": 1}}


def test_annotation_order_does_not_change_the_figures(seller, tmp_path):
    import json

    from datasets.ingest.scene import version_scene_statistics

    s = 40
    anns = [_ann(i + 1, 1 + i % 3, 1 + i % 2, box(s, s, (i, i + 4), (2 * i, 2 * i + 3))) for i in range(9)]
    doc = {"licenses": LICENSES, "categories": CATEGORIES, "images": [_image(i, s) for i in (1, 2, 3, 4)], "annotations": anns}
    figures = []
    for order in (anns, sorted(anns, key=lambda a: a["image_id"]), anns[::-1]):
        path = tmp_path / f"{len(figures)}.json"
        path.write_text(json.dumps({**doc, "annotations": order}))
        figures.append(version_scene_statistics(files=[("train.json", path, "coco_instances")], dataset=make_dataset(seller=seller))["scene"])
    assert figures[0] == figures[1] == figures[2]
    assert figures[0]["frames"] == 4 and figures[0]["instances"] == 9 and figures[0]["instances_per_frame"]["p90"] == 3
