"""Every input of the fuzz corpus (the seeds and every crash the fuzzer ever found, kept as
regression cases) replayed through its target against the normal build of the kernels.
The fuzzing itself runs under the sanitizers in ``make fuzz-native`` (tests/fuzz/run.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quality.engine import native
from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
K = native.kernels()
CASES = sorted((target, p.name) for target in TARGETS for p in (CORPUS / target).iterdir() if p.is_file())


def test_every_target_has_seeds():
    assert {t for t, _ in CASES} == set(TARGETS)


@pytest.mark.usefixtures("compiled_kernels")
@pytest.mark.parametrize(("target", "name"), CASES)
def test_corpus_input_replays_cleanly(target, name):
    TARGETS[target](K, (CORPUS / target / name).read_bytes())


@pytest.mark.usefixtures("compiled_kernels")
def test_the_seeds_reach_the_kernels_behind_the_readers():
    assert K.parse_results((CORPUS / "results_reader" / "seed-rle.json").read_bytes())["n"] == 3
    assert K.parse_results((CORPUS / "results_reader" / "seed-escapes.json").read_bytes())["n"] == 1
    assert K.parse_coco((CORPUS / "reference_reader" / "seed-coco.json").read_bytes())["n_annotations"] == 4
    # raw UTF-8 in names, keys and values: taken, not declined
    assert K.parse_results((CORPUS / "results_reader" / "seed-utf8.json").read_bytes())["n"] == 1
    assert K.parse_coco((CORPUS / "reference_reader" / "seed-utf8.json").read_bytes())["n_annotations"] == 4


@pytest.mark.usefixtures("compiled_kernels")
def test_the_validation_seeds_are_accepted():
    """The seeds of validation_reader get past json_outline and check_annotations (else the
    fuzzer would start from inputs the kernels decline at once)."""
    from tests.fuzz.targets import _CATS, _IMG

    modes = {"seed-coco.json": 0, "seed-ytvis.json": 2, "seed-escapes.json": 0, "seed-utf8.json": 0}
    for name, mode in modes.items():
        data = (CORPUS / "validation_reader" / name).read_bytes()
        outline = {key: (a, b) for key, _kind, a, b, _fa, _fb in K.json_outline(data, 32, "annotations")}
        r = K.check_annotations(data, *outline["annotations"], mode, 32, 1.0, *_IMG, _CATS)
        assert r is not None and r["n"] >= 1, name


@pytest.mark.usefixtures("compiled_kernels")
def test_the_video_and_scene_seeds_reach_the_compiled_paths(tmp_path):
    """The YouTube-VIS seeds are read whole by parse_ytvis and give scene figures on the
    compiled path; the scene seeds draw masks that touch and masks that do not."""
    from quality.engine.scene import occluded_flags, ytvis_scene
    from tests.fuzz.targets import Reader, scene_inputs

    for name, masks_ in (("seed-fixture.json", None), ("seed-forms.json", 7)):
        data = (CORPUS / "ytvis_reader" / name).read_bytes()
        r = K.parse_ytvis(data)
        assert r is not None and r["n_masks"] > 0 and (masks_ is None or r["n_masks"] == masks_), name
        path = tmp_path / name
        path.write_bytes(data)
        assert ytvis_scene(path) is not None, name
    assert set(np.frombuffer(K.parse_ytvis((CORPUS / "ytvis_reader" / "seed-forms.json").read_bytes())["kind"], np.uint8).tolist()) == {0, 1, 2}
    from quality.engine import masks

    segs, frame, _cats, frames = scene_inputs(Reader((CORPUS / "scene_masks" / "seed-all").read_bytes()))
    rles = masks.to_rles(segs, [s["size"][0] for s in segs], [s["size"][1] for s in segs])
    frame = np.array(frame)
    flags = np.concatenate([occluded_flags([rles[i] for i in np.flatnonzero(frame == f)]) for f in range(frames)])
    assert frames == 2 and len(rles) == 9 and 0 < flags.sum() < len(flags)
