"""Files read ahead by the command line give the evaluation what reading them in place gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quality.engine import readahead
from quality.engine.cocoeval import evaluate
from quality.engine.errors import EngineInputError
from tests.quality.engine.coco_parity_helpers import random_case

pytestmark = pytest.mark.usefixtures("compiled_kernels")  # the readers ahead are the compiled ones


@pytest.fixture
def files(tmp_path):
    gt, dt = random_case(21, n_images=14)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "dt.json").write_text(json.dumps(dt))
    return tmp_path / "gt.json", tmp_path / "dt.json"


def test_read_ahead_is_taken_and_gives_the_same_result(files):
    gt, dt = files
    in_place = evaluate(str(gt), str(dt))
    readahead.start("coco", str(gt))
    readahead.start("results", str(dt))
    ahead = evaluate(str(gt), str(dt))
    # both reads were taken by the evaluation, none is left waiting
    assert readahead.take("coco", str(gt)) is None and readahead.take("results", str(dt)) is None
    for k in ("precision", "recall", "scores"):
        assert np.array_equal(getattr(in_place, k), getattr(ahead, k))
    assert in_place.stats == ahead.stats


def test_unreadable_file_read_ahead_raises_as_in_place(files, tmp_path):
    gt, _ = files
    missing = tmp_path / "absent.json"
    readahead.start("results", str(missing))
    with pytest.raises(FileNotFoundError):
        evaluate(str(gt), str(missing))


def test_bad_results_read_ahead_give_the_located_error(files, tmp_path):
    gt, dt = files
    rows = json.loads(dt.read_text())
    rows[3]["image_id"] = 10**9
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(rows))
    with pytest.raises(EngineInputError) as in_place:
        evaluate(str(gt), str(bad))
    readahead.start("results", str(bad))
    with pytest.raises(EngineInputError) as ahead:
        evaluate(str(gt), str(bad))
    assert (ahead.value.code, ahead.value.location, str(ahead.value)) == (in_place.value.code, in_place.value.location, str(in_place.value))
