"""The command line finds files named by a JSON in a folder's listing, never by joining the
name onto the folder: '..', absolute names and symbolic links reach nothing outside it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from quality.engine.errors import EngineInputError
from quality.engine.files import FolderIndex
from quality.engine.panoptic import panoptic_quality


def _png(path, value: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.zeros((4, 4, 3), dtype=np.uint8)
    arr[:2, :2, 0] = value
    Image.fromarray(arr).save(path)


def test_the_index_holds_the_folders_own_regular_files_only(tmp_path):
    inside = tmp_path / "inside"
    _png(inside / "a.png")
    _png(inside / "sub" / "b.png")
    _png(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", inside / "link.png")
    os.symlink(tmp_path, inside / "up")
    index = FolderIndex(inside)
    assert sorted(index) == ["a.png", "sub/b.png"]
    for name in ("../secret.png", str(tmp_path / "secret.png"), "link.png", "up/secret.png", "sub/../a.png"):
        assert index.get(name) is None


@pytest.mark.parametrize("name", ["../secret.png", "/SECRET", "link.png", "sub/../a.png"])
def test_panoptic_names_leaving_the_folder_find_no_png(tmp_path, name):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    _png(gt_dir / "a.png")
    _png(pred_dir / "a.png")
    _png(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", pred_dir / "link.png")
    name = name.replace("/SECRET", str(tmp_path / "secret.png"))
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "height": 4, "width": 4}],
        "categories": [{"id": 1, "name": "thing", "isthing": 1}],
        "annotations": [{"image_id": 1, "file_name": "a.png", "segments_info": [{"id": 1, "category_id": 1, "area": 4, "iscrowd": 0}]}],
    }
    pred = json.loads(json.dumps(doc))
    pred["annotations"][0]["file_name"] = name
    assert panoptic_quality(doc, doc, gt_dir=gt_dir, pred_dir=pred_dir).all.pq == pytest.approx(1.0)
    with pytest.raises(EngineInputError) as err:
        panoptic_quality(doc, pred, gt_dir=gt_dir, pred_dir=pred_dir)
    assert err.value.code == "missing_png" and err.value.location == name
