"""The compiled catalogue scan (marketplace/listings/_native) answers as the numpy evaluation:
facets, count and order of every filter combination, on one thread and on two, with dead
slots; and it refuses arrays it cannot read safely."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from decimal import Decimal

import numpy as np
import pytest
from django.db import transaction

from marketplace.listings import catalogue_index, catalogue_scan, search
from marketplace.listings.catalogue_index import (
    EQUALS_BOOL,
    EQUALS_INT16,
    IN_TABLE,
    MIN_FLOAT64,
    MIN_WITH_STATUS,
    RANGE_INT64,
    CatalogueIndex,
    Term,
)
from marketplace.listings.search import FACETS, ListingFilters
from tests import factories
from tests.listings import varied_catalogue as vc
from tests.listings.test_search_index import FIXED, _filters


@pytest.fixture
def kernel():
    if os.environ.get("QUALITY_NATIVE") == "0":
        pytest.skip("QUALITY_NATIVE=0 turns the compiled kernels off on purpose")
    module = catalogue_scan.kernel()
    assert module is not None, catalogue_scan.status()
    return module


# -- a synthetic index: every term kind, dead slots, two threads ------------------------------

EMBODIMENTS = ["arm", "humanoid", "drone", "quadruped", "aloha"]
TIERS = ["", "rough", "fine", "premium"]


def synthetic_index(n: int, seed: int) -> CatalogueIndex:
    rng = np.random.default_rng(seed)
    index = CatalogueIndex()
    index._empty_codes()
    cols: dict[str, np.ndarray] = {}
    for facet in catalogue_index.FACET_COLUMNS:
        combos = index.codes[f"facet_{facet}"]
        values = [f"{facet}-{i}" for i in range(6)] if facet != "embodiment" else EMBODIMENTS
        sets = [tuple(sorted(rng.choice(values, size=rng.integers(0, 3), replace=False))) for _ in range(40)]
        cols[f"facet_{facet}"] = np.array([combos.of(sets[i]) for i in rng.integers(0, len(sets), n)], dtype=np.int32)
    for name, values in (("tier", TIERS), ("annotation_kind", ["instances", "video", "panoptic"]), ("seller", ["a", "b", "c"])):
        codes = index.codes[name]
        cols[name] = np.array([codes.of(values[i]) for i in rng.integers(0, len(values), n)], dtype=np.int32)
    for name in ("key_scene", "key_category"):
        combos = index.codes[name]
        sets = [frozenset(rng.choice(["kitchen", "office", "mug", "tote"], size=rng.integers(0, 3), replace=False)) for _ in range(10)]
        cols[name] = np.array([combos.of(sets[i]) for i in rng.integers(0, len(sets), n)], dtype=np.int32)
    figure = rng.random(n)
    figure[rng.random(n) < 0.1] = np.nan
    cols["mask_iou"] = figure
    cols["mask_iou_status"] = rng.integers(0, 4, n).astype(np.int16)
    cols["commercial_use"] = rng.random(n) < 0.5
    cols["price_cents"] = rng.integers(0, 100_000, n).astype(np.int64)
    cols["occlusion"] = rng.random(n)
    cols["published_us"] = rng.integers(0, 1000, n).astype(np.int64)  # ties: the primary key decides
    cols["published_null"] = rng.random(n) < 0.05
    cols["quality_adjusted_cost"] = rng.random(n)
    cols["diversity"] = rng.random(n)
    index.cols = cols
    index.pk = np.arange(1, n + 1, dtype=np.int64)
    index.alive = rng.random(n) < 0.9
    index.read_at = np.zeros(n, dtype=np.int64)
    return index


def random_terms(index: CatalogueIndex, rng: random.Random) -> dict[str, Term]:
    c = index.cols
    pool = {
        "min_mask_iou": lambda: Term(MIN_WITH_STATUS, c["mask_iou"], c["mask_iou_status"], value=rng.random(), lo=rng.randint(0, 3)),
        "verified_only": lambda: Term(EQUALS_INT16, c["mask_iou_status"], lo=3),
        "commercial_use": lambda: Term(EQUALS_BOOL, c["commercial_use"], lo=rng.randint(0, 1)),
        "price_min": lambda: Term(RANGE_INT64, c["price_cents"], lo=rng.randint(-5, 100_000), hi=np.iinfo(np.int64).max),
        "price_max": lambda: Term(RANGE_INT64, c["price_cents"], lo=np.iinfo(np.int64).min, hi=rng.randint(-5, 100_000)),
        "min_occlusion": lambda: Term(MIN_FLOAT64, c["occlusion"], value=rng.random()),
        "embodiment": lambda: Term(IN_TABLE, c["facet_embodiment"], index.codes["facet_embodiment"].any_of(rng.sample(EMBODIMENTS, 2))),
        "task": lambda: Term(IN_TABLE, c["facet_task"], index.codes["facet_task"].any_of([f"task-{rng.randint(0, 6)}"])),
        "tier": lambda: Term(IN_TABLE, c["tier"], index.codes["tier"].lut(rng.sample(TIERS, 2))),
        "annotation_kind": lambda: Term(IN_TABLE, c["annotation_kind"], index.codes["annotation_kind"].lut(["video"])),
        "sensor": lambda: Term(IN_TABLE, c["facet_sensor"], index.codes["facet_sensor"].any_of(["sensor-1", "sensor-2", "nothing"])),
        "scene": lambda: Term(IN_TABLE, c["key_scene"], index.codes["key_scene"].any_of(["kitchen"])),
    }
    return {key: pool[key]() for key in rng.sample(sorted(pool), rng.randint(0, 6))}


def both(index: CatalogueIndex, kernel, terms: dict[str, Term]):
    facets, count, codes = index.scan(kernel, terms)
    np_facets, everything = index.facets({key: t.mask() for key, t in terms.items()}, index.alive)
    place = index.place("price")
    slots = np.empty(count, dtype=np.int64)
    kernel.ordered_matches(codes, place, index.order("price"), slots)
    np_slots = np.flatnonzero(everything)
    np_slots = np_slots[np.argsort(place[np_slots], kind="stable")]
    return (facets, count, slots.tolist(), (codes == 0).tolist()), (
        np_facets,
        int(np.count_nonzero(everything)),
        np_slots.tolist(),
        everything.tolist(),
    )


class Recording:
    """The compiled module, recording the mode the pass counted each facet in."""

    def __init__(self, kernel) -> None:
        self.kernel, self.BASE_BIT, self.modes = kernel, kernel.BASE_BIT, []

    def scan(self, *args):
        count, modes = self.kernel.scan(*args)
        self.modes.extend(modes)
        return count, modes

    def ordered_matches(self, *args):
        return self.kernel.ordered_matches(*args)


@pytest.mark.parametrize("bitmaps", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_scan_answers_as_numpy_on_a_synthetic_index(kernel, monkeypatch, threads, bitmaps):
    monkeypatch.setattr(catalogue_index, "SCAN_THREADS", threads)
    monkeypatch.setattr(catalogue_index, "SCAN_SPLIT_ROWS", 0)
    if bitmaps:
        monkeypatch.setattr(catalogue_index, "BITMAPS_FROM_SLOTS", 0)
    index = synthetic_index(5003, seed=threads)  # odd: the halves, the 16-byte tails and the last word are uneven
    rng = random.Random(7)
    counts = set()
    recording = Recording(kernel)
    for _ in range(300):
        terms = random_terms(index, rng)
        compiled, reference = both(index, recording, terms)
        assert compiled == reference, sorted(terms)
        counts.add(compiled[1])
    assert 0 in counts and len(counts) > 100  # the comparisons compare answers of every size
    # With bitmaps offered, dense groups are counted from them and sparse ones per row.
    expected = {catalogue_index.COUNTED_ROWS, catalogue_index.COUNTED_OUTSIDE}
    assert set(recording.modes) == (expected | {catalogue_index.COUNTED_BY_VALUES} if bitmaps else expected)


def test_facet_codes_wider_than_16_bits(kernel):
    index = synthetic_index(400, seed=3)
    combos = index.codes["facet_task"]
    for i in range(70_000):  # more sets than uint16 codes: the row matrix is uint32
        combos.of((f"rare-{i}",))
    index.cols["facet_task"][::7] = len(combos.values) - 1
    terms = {"commercial_use": Term(EQUALS_BOOL, index.cols["commercial_use"], lo=1)}
    compiled, reference = both(index, kernel, terms)
    assert [rows.dtype for rows in index.facet_rows.values()] == [np.uint32]
    assert compiled == reference


@pytest.mark.parametrize("dead", [False, True])
def test_facets_without_a_filter_of_their_own_are_counted_jointly_and_split_exactly(kernel, dead):
    """License, tier and annotation kind without a filter of their own are counted as one joint
    code per row; split again, their facets are those counted one by one, directly and
    complemented, with dead slots; a filter on one of them counts them one by one."""
    index = synthetic_index(3000, seed=11)
    if dead:  # besides the tenth the synthetic index kills
        index.alive[::5] = False
    few = {"commercial_use": Term(EQUALS_BOOL, index.cols["commercial_use"], lo=1)}
    rare = {"tier": Term(IN_TABLE, index.cols["tier"], index.codes["tier"].lut(["nothing"]))}  # nothing passes
    for terms in ({}, few, {**few, "price_max": Term(RANGE_INT64, index.cols["price_cents"], lo=0, hi=10**9)}):
        compiled, reference = both(index, kernel, terms)
        assert compiled == reference
        assert ("embodiment", "task", "sensor", catalogue_index.JOINT) in index.facet_rows
    compiled, reference = both(index, kernel, {**few, **rare})
    assert compiled == reference
    assert tuple(FACETS) in index.facet_rows


def test_joint_codes_past_their_bound_are_counted_one_by_one(kernel, monkeypatch):
    index = synthetic_index(500, seed=12)
    monkeypatch.setattr(catalogue_index, "JOINT_CODES_MAX", 10)
    compiled, reference = both(index, kernel, {"commercial_use": Term(EQUALS_BOOL, index.cols["commercial_use"], lo=1)})
    assert compiled == reference
    assert list(index.facet_rows) == [tuple(FACETS)]


# -- the boundary: arrays it cannot read safely are refused ----------------------------------


def _call(kernel, n=64, *, alive=None, terms=(), matrix=None, facets=None, codes=None):
    alive = np.ones(n, dtype=bool) if alive is None else alive
    col = np.zeros(n, dtype=np.int32)
    matrix = np.zeros((n, 1), dtype=np.uint16) if matrix is None else matrix
    facets = [(col, np.zeros(1, dtype=np.int64), -1)] if facets is None else facets
    codes = np.empty(n, dtype=np.uint8) if codes is None else codes
    return kernel.scan(alive, list(terms), matrix, facets, codes, 1)


def test_the_scan_refuses_wrong_arrays(kernel):
    n = 64
    assert _call(kernel, n)[0] == n
    with pytest.raises(ValueError, match="term column"):  # float32 where float64 is read
        _call(kernel, n, terms=[(MIN_FLOAT64, 7, np.zeros(n, dtype=np.float32), None, 0.5, 0, 0)])
    with pytest.raises(ValueError, match="term column"):  # one element short
        _call(kernel, n, terms=[(RANGE_INT64, 7, np.zeros(n - 1, dtype=np.int64), None, 0.0, 0, 9)])
    with pytest.raises(ValueError, match="term status"):
        _call(kernel, n, terms=[(MIN_WITH_STATUS, 7, np.zeros(n), np.zeros(n, dtype=np.int32), 0.5, 1, 0)])
    with pytest.raises(ValueError, match="not C-contiguous|contiguous"):
        _call(kernel, n, terms=[(RANGE_INT64, 7, np.zeros(2 * n, dtype=np.int64)[::2], None, 0.0, 0, 9)])
    with pytest.raises(ValueError, match="bit"):
        _call(kernel, n, terms=[(EQUALS_BOOL, 5, np.zeros(n, dtype=bool), None, 0.0, 1, 0)])
    with pytest.raises(ValueError, match="unknown term kind"):
        _call(kernel, n, terms=[(9, 7, np.zeros(n, dtype=bool), None, 0.0, 1, 0)])
    with pytest.raises(ValueError, match="table is empty"):
        _call(kernel, n, terms=[(IN_TABLE, 0, np.zeros(n, dtype=np.int32), np.zeros(0, dtype=bool), 0.0, 0, 0)])
    with pytest.raises(ValueError, match="facet codes"):
        _call(kernel, n, matrix=np.zeros((n, 2), dtype=np.uint16))
    with pytest.raises(ValueError, match="codes"):
        _call(kernel, n, codes=np.empty(n, dtype=np.int8))
    with pytest.raises(ValueError, match="read-only"):
        _call(kernel, n, codes=np.frombuffer(bytes(n), dtype=np.uint8))
    with pytest.raises(ValueError, match="term column"):  # a narrow form only where a term kind has one
        _call(kernel, n, terms=[(MIN_FLOAT64, 7, np.zeros(n, dtype=np.int32), None, 0.5, 0, 0)])
    with pytest.raises(ValueError, match="term column"):  # int16 is no narrow form of int64
        _call(kernel, n, terms=[(RANGE_INT64, 7, np.zeros(n, dtype=np.int16), None, 0.0, 0, 9)])
    with pytest.raises(ValueError, match="term column"):  # signed 16-bit codes are not read
        _call(kernel, n, terms=[(IN_TABLE, 0, np.zeros(n, dtype=np.int16), np.ones(1, dtype=bool), 0.0, 0, 0)])
    with pytest.raises(ValueError, match="facet column"):
        _call(kernel, n, facets=[(np.zeros(n, dtype=np.int16), np.zeros(1, dtype=np.int64), -1)])
    col, counts = np.zeros(n, dtype=np.int32), np.zeros(1, dtype=np.int64)
    words = (n + 63) // 64
    assert _call(kernel, n, facets=[(col, counts, -1, np.zeros((2, words), dtype=np.uint64), np.zeros(2, dtype=np.int64))])[0] == n
    with pytest.raises(ValueError, match="facet bitmaps"):  # a word short per value
        _call(kernel, n, facets=[(col, counts, -1, np.zeros((2, words), dtype=np.uint64)[:, :-1].copy(), np.zeros(2, dtype=np.int64))])
    with pytest.raises(ValueError, match="facet bitmaps"):  # a value more than the counts
        _call(kernel, n, facets=[(col, counts, -1, np.zeros((3, words), dtype=np.uint64), np.zeros(2, dtype=np.int64))])
    with pytest.raises(ValueError, match="facet bitmaps"):  # 32-bit words
        _call(kernel, n, facets=[(col, counts, -1, np.zeros((2, 2 * words), dtype=np.uint32), np.zeros(2, dtype=np.int64))])
    with pytest.raises(ValueError, match="value counts"):
        _call(kernel, n, facets=[(col, counts, -1, np.zeros((2, words), dtype=np.uint64), np.zeros(2, dtype=np.float64))])
    with pytest.raises(ValueError, match="come with"):
        _call(kernel, n, facets=[(col, counts, -1, np.zeros((2, words), dtype=np.uint64), None)])


def test_bitmap_counts_are_each_values_rows_in_the_group(kernel):
    # 130 slots (the last word holds two), one facet with three values; slot i holds value
    # i % 3, every fifth slot fails the facet's own filter and the slots from 100 on fail
    # another one. The group of the facet's own counts is the slots below 100.
    n = 130
    col = (np.arange(n) % 3).astype(np.int32)
    words = (n + 63) // 64
    bitmaps = np.stack([np.packbits(np.pad(col == v, (0, words * 64 - n)), bitorder="little").view("<u8") for v in range(3)])
    value_counts = np.full(3, -1, dtype=np.int64)
    terms = [
        (IN_TABLE, 0, np.arange(n, dtype=np.int32) % 5, np.array([False, True, True, True, True]), 0.0, 0, 0),
        (RANGE_INT64, 7, np.arange(n, dtype=np.int64), None, 0.0, 0, 99),
    ]
    count, modes = _call(kernel, n, terms=terms, facets=[(col, np.zeros(3, dtype=np.int64), 0, bitmaps, value_counts)])
    assert count == 80 and modes == (catalogue_index.COUNTED_BY_VALUES,)
    assert value_counts.tolist() == [int(np.count_nonzero(col[:100] == v)) for v in range(3)]


INT32 = np.iinfo(np.int32)
INT64 = np.iinfo(np.int64)


@pytest.mark.parametrize(
    "lo, hi",
    [
        (INT64.min, INT64.max),
        (INT64.min, 0),
        (-5, 7),
        (INT32.min, INT32.max),
        (INT32.min - 1, INT32.min),  # only the smallest int32 passes
        (INT32.max, INT32.max + 1),
        (INT32.max + 1, INT64.max),  # nothing in int32 reaches it
        (INT64.min, INT32.min - 1),
        (9, 3),  # an empty range
        (INT64.max, INT64.min),
    ],
)
def test_a_range_over_int32_values_passes_the_rows_the_int64_column_passes(kernel, lo, hi):
    rng = np.random.default_rng(5)
    values = np.concatenate([rng.integers(-20, 20, 200), [INT32.min, INT32.max, INT32.min + 1, INT32.max - 1, 0]]).astype(np.int64)
    n = len(values)
    got = {}
    for column in (values, values.astype(np.int32)):
        codes = np.empty(n, dtype=np.uint8)
        matches, _ = _call(kernel, n, terms=[(RANGE_INT64, 7, column, None, 0.0, lo, hi)], codes=codes)
        got[column.dtype.name] = (matches, (codes == 0).tolist())
    assert got["int32"] == got["int64"]
    assert got["int64"][1] == ((values >= lo) & (values <= hi)).tolist()


def test_uint16_codes_filter_and_count_as_their_int32_codes(kernel):
    rng = np.random.default_rng(6)
    n, size = 5000, 300
    codes32 = rng.integers(0, size, n).astype(np.int32)
    codes32[::97] = 65535  # beyond the table: fails the filter
    table = rng.random(size) < 0.4
    some = rng.random(n) < 0.3  # a filter without a facet: the facets count the rows passing it, one by one
    results = []
    for column in (codes32, codes32.astype(np.uint16)):
        counted = np.zeros(1 << 16, dtype=np.int64)
        other = rng.integers(0, 4, n).astype(np.int32)  # a second facet, for the row matrix
        matrix = np.stack([codes32, other], axis=1).astype(np.uint16)
        row_bytes = np.empty(n, dtype=np.uint8)
        matches, complemented = kernel.scan(
            np.ones(n, dtype=bool),
            [(IN_TABLE, 0, column, table, 0.0, 0, 0), (EQUALS_BOOL, 7, some, None, 0.0, 1, 0)],
            matrix,
            [(column, counted, 0), (other, np.zeros(4, dtype=np.int64), -1)],
            row_bytes,
            1,
        )
        results.append((matches, complemented, counted.tolist(), row_bytes.tolist()))
    assert results[0] == results[1]
    passing = np.concatenate([table, [False]])[np.minimum(codes32, size)]
    assert results[0][0] == int((passing & some).sum())
    assert results[0][1] == (False, False)  # counted directly, not as the complement
    assert results[0][2] == np.bincount(codes32[some], minlength=1 << 16).tolist()


def test_values_past_the_narrow_forms_keep_their_columns(kernel):
    """The pass reads uint16 codes and int32 cents where every value fits, else the columns
    themselves; the answers are the same."""
    index = synthetic_index(600, seed=13)
    terms = lambda: {  # noqa: E731
        "price_max": Term(RANGE_INT64, index.cols["price_cents"], lo=np.iinfo(np.int64).min, hi=50_000),
        "task": Term(IN_TABLE, index.cols["facet_task"], index.codes["facet_task"].any_of(["task-1", "task-2"])),
    }
    compiled, reference = both(index, kernel, terms())
    assert compiled == reference
    assert index._narrow(index.cols["price_cents"]).dtype == np.int32
    assert index._narrow(index.cols["facet_task"]).dtype == np.uint16
    index.cols["price_cents"][0] = 2**40
    index.narrow = {}
    compiled, reference = both(index, kernel, terms())
    assert compiled == reference
    assert index._narrow(index.cols["price_cents"]) is index.cols["price_cents"]


def test_a_code_beyond_its_table_fails_the_filter_and_one_beyond_its_counts_raises(kernel):
    n = 64
    col = np.arange(n, dtype=np.int32)  # codes 0..63 against a table of 4
    lut = np.ones(4, dtype=bool)
    codes = np.empty(n, dtype=np.uint8)
    matches, _ = _call(kernel, n, terms=[(IN_TABLE, 7, col, lut, 0.0, 0, 0)], codes=codes)
    assert matches == 4 and (codes[:4] == 0).all() and (codes[4:] == 0x80).all()
    # The four matching rows are counted (directly: they are few), with codes 63..60 of 4.
    beyond = (n - 1 - col).astype(np.int32)
    term = (IN_TABLE, 7, col, lut, 0.0, 0, 0)
    with pytest.raises(ValueError, match="beyond its counts"):  # one facet: its column
        _call(kernel, n, terms=[term], matrix=beyond.astype(np.uint16).reshape(n, 1), facets=[(beyond, np.zeros(4, dtype=np.int64), -1)])
    with pytest.raises(ValueError, match="beyond its counts"):  # two facets: the row matrix
        _call(
            kernel,
            n,
            terms=[term],
            matrix=np.stack([beyond, beyond], axis=1).astype(np.uint16),
            facets=[(beyond, np.zeros(4, dtype=np.int64), -1), (beyond, np.zeros(4, dtype=np.int64), -1)],
        )
    counts = np.zeros(64, dtype=np.int64)
    _call(kernel, n, terms=[term], matrix=beyond.astype(np.uint16).reshape(n, 1), facets=[(beyond, counts, -1)])
    assert counts[60:].tolist() == [1, 1, 1, 1] and counts.sum() == 4


def test_ordered_matches_refuses_a_place_outside_the_rows(kernel):
    codes = np.zeros(4, dtype=np.uint8)
    perm = np.arange(4, dtype=np.int64)
    out = np.empty(4, dtype=np.int64)
    assert kernel.ordered_matches(codes, perm, perm, out) == 4
    with pytest.raises(ValueError, match="do not fit"):
        kernel.ordered_matches(codes, np.array([0, 1, 2, 9], dtype=np.int64), perm, out)
    with pytest.raises(ValueError, match="do not fit"):
        kernel.ordered_matches(codes, perm, perm, np.empty(3, dtype=np.int64))


# -- the real index: the compiled and the numpy path answer alike ----------------------------


@pytest.fixture(scope="module")
def varied(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        sellers = [factories.make_seller(username=f"scan-seller-{i}").org for i in range(3)]
        vc.build_varied_catalogue(sellers=sellers)
        yield [s.slug for s in sellers]
        transaction.set_rollback(True)


def answer(filters: ListingFilters) -> dict:
    result = catalogue_index.catalogue_search(filters=filters)
    return {"pks": result.pks.tolist(), "count": len(result), "facets": result.facets, "page": [r.pk for r in result[3:9]]}


@pytest.mark.django_db
@pytest.mark.parametrize("bitmaps", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_the_compiled_and_the_numpy_path_answer_alike(varied, kernel, monkeypatch, threads, bitmaps):
    monkeypatch.setattr(catalogue_index, "SCAN_THREADS", threads)
    monkeypatch.setattr(catalogue_index, "SCAN_SPLIT_ROWS", 0)
    if bitmaps:
        monkeypatch.setattr(catalogue_index, "BITMAPS_FROM_SLOTS", 0)
    rng = random.Random(threads)
    cases = [*FIXED, *(_filters(rng, varied) for _ in range(60)), ListingFilters(price_min=Decimal("1e30"))]
    for filters in cases:
        compiled = answer(filters)
        with catalogue_scan.disabled():
            assert catalogue_scan.kernel() is None
            reference = answer(filters)
        assert compiled == reference, filters
    assert search.FACETS  # every case above compared all facets


# -- the switch: the quality engine's loader, with the scan's own error -----------------------


def test_required_but_stale_raises_scan_unavailable_with_the_reason(kernel):
    # A library built from other sources than those beside it, as the loader sees it: a sources
    # digest that cannot match (the real import and check, not a patched kernel()).
    code = (
        "import quality.engine._native.sources as s; s.source_sha256 = lambda directory: 'not-the-build'\n"
        "from marketplace.listings import catalogue_scan as c\n"
        "try:\n    c.kernel()\nexcept c.ScanUnavailable as e:\n    print('raised', e)\nelse:\n    print('ran')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "QUALITY_NATIVE": "required"}, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("raised QUALITY_NATIVE=required but the catalogue scan is off: "), out.stdout
    assert out.stdout.rstrip().endswith("was built from other sources than those beside it; rebuild (make native)"), out.stdout


def test_set_filters_are_kept_as_flags_per_table_and_bounded(kernel, monkeypatch):
    """A set filter's rows are kept as one flag per listing for the next search with the same
    table (the answers stay the reference's), within SET_MASKS_BYTES; a code beyond its table
    keeps the table lookup, which fails it."""
    index = synthetic_index(2000, seed=21)
    monkeypatch.setattr(catalogue_index, "SET_MASKS_BYTES", 2 * 2000)  # two flag columns
    combos = index.codes["facet_embodiment"]
    asks = [["arm", "drone"], ["humanoid"], ["aloha", "quadruped"], ["arm", "drone"]]
    for wanted in asks:
        terms = {"embodiment": Term(IN_TABLE, index.cols["facet_embodiment"], combos.any_of(wanted))}
        compiled, reference = both(index, kernel, terms)
        assert compiled == reference
        assert len(index.set_masks) <= 2
    assert [catalogue_index.CatalogueIndex._set_mask(index, Term(IN_TABLE, index.cols["facet_embodiment"], combos.any_of(w))).kind for w in asks[-2:]] == [
        EQUALS_BOOL,
        EQUALS_BOOL,
    ]
    scenes = index.codes["key_scene"]
    beyond = index.cols["key_scene"].copy()  # a filter without a facet: its codes are only looked up
    beyond[::9] = len(scenes.values) + 5
    index.cols["key_scene"] = beyond
    term = Term(IN_TABLE, beyond, scenes.any_of(["kitchen"]))
    assert index._set_mask(term) is term
    _facets, count, codes = index.scan(kernel, {"scene": term})
    table = np.concatenate([term.aux, np.zeros(len(beyond), dtype=bool)])  # past the table: fails
    expected = table[beyond] & index.alive
    assert count == int(expected.sum()) and ((codes == 0) == expected).all()
