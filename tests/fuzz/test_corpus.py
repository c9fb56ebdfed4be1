"""Every input of the fuzz corpus (the seeds and every crash the fuzzer ever found, kept as
regression cases) replayed through its target against the normal build of the kernels.
The fuzzing itself runs under the sanitizers in ``make fuzz-native`` (tests/fuzz/run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quality.engine import native
from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
K = native.kernels()
CASES = sorted((target, p.name) for target in TARGETS for p in (CORPUS / target).iterdir() if p.is_file())


def test_every_target_has_seeds():
    assert {t for t, _ in CASES} == set(TARGETS)


@pytest.mark.skipif(K is None, reason="the compiled kernels are not built (test_native_eval checks they are in CI)")
@pytest.mark.parametrize(("target", "name"), CASES)
def test_corpus_input_replays_cleanly(target, name):
    TARGETS[target](K, (CORPUS / target / name).read_bytes())


@pytest.mark.skipif(K is None, reason="the compiled kernels are not built (test_native_eval checks they are in CI)")
def test_the_seeds_reach_the_kernels_behind_the_readers():
    assert K.parse_results((CORPUS / "results_reader" / "seed-rle.json").read_bytes())["n"] == 3
    assert K.parse_results((CORPUS / "results_reader" / "seed-escapes.json").read_bytes())["n"] == 1
    assert K.parse_coco((CORPUS / "reference_reader" / "seed-coco.json").read_bytes())["n_annotations"] == 4
    # raw UTF-8 in names, keys and values: taken, not declined
    assert K.parse_results((CORPUS / "results_reader" / "seed-utf8.json").read_bytes())["n"] == 1
    assert K.parse_coco((CORPUS / "reference_reader" / "seed-utf8.json").read_bytes())["n_annotations"] == 4


@pytest.mark.skipif(K is None, reason="the compiled kernels are not built (test_native_eval checks they are in CI)")
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
