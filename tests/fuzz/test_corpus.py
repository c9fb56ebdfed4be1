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
