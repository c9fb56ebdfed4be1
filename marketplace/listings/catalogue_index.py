"""The public catalogue as in-process columns: search filters, facets, counts and orders without SQL scans.

PostgreSQL stays the source of truth. Each API process keeps one :class:`CatalogueIndex`
(numpy columns of every public listing: figures, statuses, price in cents, frames, scene
minimums, flags, and a code per row for tier, annotation kind, seller and each
multi-valued attribute's combination of values). A search

1. reads the catalogue revision (one indexed row, see migration 0014: every write that can
   change what search shows bumps it in its own transaction, by trigger), together with the
   listings matching ``q`` when there is one (PostgreSQL's full text and ``ts_rank``, GIN
   index);
2. when the revision moved, reloads only the listings changed since (or rebuilds after a
   reset), before answering: a publish, suspension or price change made by any process is
   in the next search of every process;
3. evaluates the filters and counts the facets (disjunctive: each faceted filter left out
   of its own facet) in one compiled pass over the columns (marketplace.listings.catalogue_scan,
   two threads from 131,072 listings on; from 65,536 listings on, a facet whose group of
   rows is dense is counted from one bitmap of the listings per value, an AND and a popcount
   per 64 listings, instead of per row), or without it as numpy boolean masks and counts of
   codes under them (the reference: tests compare the two); and takes the page from a
   permutation per ordering computed once per catalogue state (no sort per request);
4. renders the page's result cards from their rows, read by primary key (one query), and
   keeps each card until its row changes (a page of kept cards reads no row).

Results, counts, facets and orders are the SQL path's (marketplace.listings.search), which
stays the reference and the path on SQLite; tests/listings/test_search_index.py compares
them.

Inside a transaction (tests, a script in ``atomic``), the state this connection sees may
never be committed: a search there that finds the revision moved builds a private model of
that state (cached by its (revision, token), which names it exactly) and leaves the shared
one alone, which only ever advances on committed states.
"""

from __future__ import annotations

import functools
import gc
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection

from datasets.states import VersionState
from datasets.vocabulary import VOCABULARY_REVISION_TABLE
from marketplace.listings import catalogue_scan
from marketplace.listings.models import Listing
from quality.figures import LISTING_FIGURES

# The columns the multi-valued facets group by (and the embodiment, task and sensor filters read).
FACET_COLUMNS = {"embodiment": "facet_embodiments", "task": "facet_tasks", "license": "facet_licenses", "sensor": "facet_sensors"}
SINGLE = {"tier": "tier", "annotation_kind": "annotation_kind", "seller": "seller_slug"}
_HIDDEN_STATES = [s for s in VersionState.values if s != VersionState.PUBLISHED]
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min

# A listing's scene types as the scene filter reads them on the SQL path (the ``scene=`` keys
# of facet_keys), sorted, space-separated. Embodiment, task and sensor filters read the
# facet_* columns, which hold the same values as their facet_keys keys (both are written
# from the same terms by models.facet_keys_text / facet_group_fields).
_SCENES = (
    "array_to_string(ARRAY(SELECT substr(k, 7) FROM unnest(string_to_array(l.facet_keys, ' ')) AS k "
    "WHERE k LIKE 'scene=%%' ORDER BY 1), ' ')"
)
# The columns read for the index, as (name, SQL, binary COPY type). Every value is NOT NULL
# (nulls become NaN or a flag), so each row of the binary COPY has the same layout and a
# whole chunk parses as one numpy structured array. Strings come as 64-bit hashes
# (hashtextextended), resolved through the distinct (hash, string) pairs read beside them.
_FIELDS: list[tuple[str, str, str]] = [
    ("pk", "l.id", ">i8"),
    *(
        item
        for f in LISTING_FIGURES
        for item in ((f, f"COALESCE(l.{f}, 'NaN')::float8", ">f8"), (f"{f}_status", f"l.{f}_status::int2", ">i2"))
    ),
    *((f"hash_{name}", f"hashtextextended(l.{column}, 0)", ">i8") for name, column in (("tier", "tier"), ("annotation_kind", "annotation_kind"), ("seller", "seller_slug"))),
    *((name, f"l.{name}", "?") for name in ("commercial_use", "derivatives", "share_alike", "has_tracks")),
    ("frames", "l.frames::int8", ">i8"),
    ("price_cents", "(l.price * 100)::int8", ">i8"),
    ("published_us", "COALESCE((EXTRACT(EPOCH FROM l.published_at) * 1000000)::int8, 0)", ">i8"),
    ("published_null", "l.published_at IS NULL", "?"),
    *((name, f"COALESCE(l.{name}, 'NaN')::float8", ">f8") for name in ("quality_adjusted_cost", "diversity", "instances_per_frame", "occlusion")),
    ("embodiment_count", "l.embodiment_count::int8", ">i8"),
    ("task_count", "l.task_count::int8", ">i8"),
    ("hash_scene", f"hashtextextended({_SCENES}, 0)", ">i8"),
    *((f"hash_facet_{facet}", f"hashtextextended(l.{column}, 0)", ">i8") for facet, column in FACET_COLUMNS.items()),
    ("hash_category", "hashtextextended(COALESCE(c.categories, ''), 0)", ">i8"),
]
_ROW_DTYPE = np.dtype(
    [("fields", ">i2"), *((item for name, _sql, kind in _FIELDS for item in ((f"len_{name}", ">i4"), (name, kind))))]
)
_FIELD_BYTES = {name: np.dtype(kind).itemsize for name, _sql, kind in _FIELDS}
# String columns: (family read from the hash column, SQL of the string).
_STRINGS = {
    "hash_tier": "l.tier",
    "hash_annotation_kind": "l.annotation_kind",
    "hash_seller": "l.seller_slug",
    "hash_scene": _SCENES,
    **{f"hash_facet_{facet}": f"l.{column}" for facet, column in FACET_COLUMNS.items()},
    "hash_category": "COALESCE(c.categories, '')",
}
_CATEGORY_SEPARATOR = "\x1f"  # category names may hold spaces: joined with the unit separator
ANY_OF_KEPT = 512  # any_of tables kept per attribute
_PUBLIC = "l.is_public AND NOT EXISTS (SELECT 1 FROM datasets_datasetversion v WHERE v.id = l.version_id AND v.state = ANY(%s))"
_CATEGORIES = (
    "LEFT JOIN (SELECT t.listing_id, string_agg(t.value, E'\\x1f' ORDER BY t.value) AS categories "
    "FROM listings_listingterm t WHERE t.kind = 'category'{ids} GROUP BY t.listing_id) c ON c.listing_id = l.id"
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


class CatalogueChangedWhileReading(Exception):
    """A string hash of the rows has no string in the distinct pairs read after them: read again."""


class _RowSink:
    """Receives the binary COPY stream; parses whole rows as they arrive (bounded memory)."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.header_done = False
        self.parts: list[dict[str, np.ndarray]] = []

    def write(self, data: bytes) -> int:
        self.pending += data
        if not self.header_done and len(self.pending) >= 19:
            if bytes(self.pending[:11]) != _COPY_SIGNATURE:
                raise ValueError("not a PostgreSQL binary COPY stream")
            extension = int.from_bytes(self.pending[15:19], "big")
            del self.pending[: 19 + extension]
            self.header_done = True
        if self.header_done and len(self.pending) >= 1 << 22:
            self._take()
        return len(data)

    def _take(self) -> None:
        whole = len(self.pending) // _ROW_DTYPE.itemsize * _ROW_DTYPE.itemsize
        if whole:
            self.parts.append(_native(np.frombuffer(bytes(self.pending[:whole]), dtype=_ROW_DTYPE)))
            del self.pending[:whole]

    def finish(self) -> dict[str, np.ndarray]:
        if self.pending[-2:] == b"\xff\xff":  # the trailer
            del self.pending[-2:]
        self._take()
        if self.pending:
            raise ValueError("the binary COPY stream ended inside a row")
        if not self.parts:
            return {name: np.zeros(0, dtype=np.dtype(kind).newbyteorder("=")) for name, _sql, kind in _FIELDS}
        return {name: np.concatenate([part[name] for part in self.parts]) for name, _sql, _kind in _FIELDS}


def _native(rows: np.ndarray) -> dict[str, np.ndarray]:
    """A chunk's columns in native byte order, after checking every row has the expected layout."""
    if not (rows["fields"] == len(_FIELDS)).all():
        raise ValueError("unexpected number of columns in the binary COPY stream")
    out = {}
    for name, _sql, kind in _FIELDS:
        if not (rows[f"len_{name}"] == _FIELD_BYTES[name]).all():
            raise ValueError(f"{name}: a NULL or a value of another size in the binary COPY stream")
        out[name] = rows[name].astype(np.dtype(kind).newbyteorder("="))
    return out


def _copy_rows(ids: list[int] | None) -> dict[str, np.ndarray]:
    """The index's columns of the public listings (only ``ids`` when given), one binary COPY."""
    where, params = _PUBLIC, [_HIDDEN_STATES]
    term_ids = ""
    if ids is not None:
        where, params = where + " AND l.id = ANY(%s)", [*params, ids]
        term_ids = " AND t.listing_id = ANY(%s)"
        params = [ids, *params]
    sql = (
        f"COPY (SELECT {', '.join(sql for _n, sql, _k in _FIELDS)} FROM listings_listing l "
        f"{_CATEGORIES.format(ids=term_ids)} WHERE {where}) TO STDOUT WITH (FORMAT binary)"
    )
    sink = _RowSink()
    with connection.cursor() as cur:
        raw = cur.cursor  # psycopg2's own cursor: COPY TO a file-like object
        raw.copy_expert(raw.mogrify(sql, params).decode(), sink)
    return sink.finish()


def _distinct_strings(ids: list[int] | None) -> dict[str, dict[int, str]]:
    """Per string column, its distinct values among the rows read, by hash (one scan, grouping sets)."""
    where, params = _PUBLIC, [_HIDDEN_STATES]
    term_ids = ""
    if ids is not None:
        where, params = where + " AND l.id = ANY(%s)", [*params, ids]
        term_ids = " AND t.listing_id = ANY(%s)"
        params = [ids, *params]
    names = list(_STRINGS)
    columns = [f"s{i}" for i in range(len(names))]
    value = f"COALESCE({', '.join(columns)})"
    sql = (
        f"SELECT GROUPING({', '.join(columns)}), hashtextextended({value}, 0), {value} FROM ("
        f"SELECT {', '.join(f'{expr} AS {col}' for expr, col in zip(_STRINGS.values(), columns, strict=True))} "
        f"FROM listings_listing l {_CATEGORIES.format(ids=term_ids)} WHERE {where}) AS x "
        f"GROUP BY GROUPING SETS ({', '.join(f'({col})' for col in columns)})"
    )
    found: dict[str, dict[int, str]] = {name: {} for name in names}
    with connection.cursor() as cur:
        cur.execute(sql, params)
        for bits, digest, text in cur.fetchall():
            # GROUPING() sets the bit of every column left out of the row's grouping set.
            position = next(i for i in range(len(names)) if not bits & (1 << (len(names) - 1 - i)))
            table = found[names[position]]
            if table.setdefault(digest, text) != text:
                raise ValueError(f"two strings of {names[position]} share a 64-bit hash: {text!r}, {table[digest]!r}")
    return found




class _Codes:
    """Strings to small integers, stable for the life of the index (new strings get new codes)."""

    def __init__(self) -> None:
        self.code: dict[Any, int] = {}
        self.values: list[Any] = []

    def of(self, value: Any) -> int:
        c = self.code.get(value)
        if c is None:
            c = self.code[value] = len(self.values)
            self.values.append(value)
        return c

    def top(self, counts: np.ndarray, limit: int, *, named_only: bool) -> list[dict[str, Any]]:
        """The counted codes' values and counts, most first, then by value, at most ``limit``
        (with ``named_only``, blank values left out): as sorting the (value, count) pairs by
        (-count, value) would list them, sorted here by the values' ranks (kept until a value
        is added) and only the listed ones made into dicts."""
        counts = counts[: len(self.values)]
        rank, named = self._ranks()
        rows = np.flatnonzero((counts != 0) & named[: len(counts)]) if named_only else np.flatnonzero(counts)
        rows = rows[np.lexsort((rank[rows], -counts[rows]))[:limit]]
        values = self.values
        return [{"value": values[i], "count": n} for i, n in zip(rows.tolist(), counts[rows].tolist(), strict=True)]

    def _ranks(self) -> tuple[np.ndarray, np.ndarray]:
        """Each code's place among the values in sorted order, and whether its value is not blank."""
        kept = getattr(self, "_kept_ranks", None)
        if kept is None or len(kept[0]) != len(self.values):
            rank = np.empty(len(self.values), dtype=np.int64)
            rank[sorted(range(len(self.values)), key=self.values.__getitem__)] = np.arange(len(self.values))
            kept = self._kept_ranks = (rank, np.fromiter(map(bool, self.values), dtype=bool, count=len(self.values)))
        return kept

    def lut(self, wanted: Iterable[Any]) -> np.ndarray:
        """A boolean per code: whether the code's value is one of ``wanted``."""
        table = np.zeros(len(self.values) + 1, dtype=bool)
        for w in wanted:
            c = self.code.get(w)
            if c is not None:
                table[c] = True
        return table


class _Combos(_Codes):
    """Codes of sets of values (a listing's embodiments, ...): filters and facets go through the
    distinct sets, and from sets to values through their incidence pairs (vectorized: a
    catalogue may hold tens of thousands of distinct sets of categories)."""

    def __init__(self) -> None:
        super().__init__()
        self.value_codes = _Codes()
        self._pair_combo: list[int] = []
        self._pair_value: list[int] = []
        self._pairs: tuple[np.ndarray, np.ndarray] | None = None
        # any_of's tables by the values asked for: a table walks every incidence pair (millions
        # for categories at 1M listings), and buyers ask for the same values again and again.
        self._any_of: dict[frozenset[str], np.ndarray] = {}

    def of(self, value: Any) -> int:
        c = self.code.get(value)
        if c is None:
            c = super().of(value)
            for v in value:
                self._pair_combo.append(c)
                self._pair_value.append(self.value_codes.of(v))
            self._pairs = None
        return c

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pairs is None:
            self._pairs = (np.array(self._pair_combo, dtype=np.int64), np.array(self._pair_value, dtype=np.int64))
        return self._pairs

    def any_of(self, wanted: Iterable[str]) -> np.ndarray:
        """A boolean per set: whether it holds one of ``wanted`` (read-only: it is kept for the next ask)."""
        key = frozenset(wanted)
        table = self._any_of.get(key)
        # Codes are only ever added: a kept table is current while no set was added since.
        if table is None or len(table) != len(self.values) + 1:
            pair_combo, pair_value = self.pairs()
            table = np.zeros(len(self.values) + 1, dtype=bool)
            hits = self.value_codes.lut(key)[pair_value]
            table[pair_combo[hits]] = True
            table.flags.writeable = False
            if len(self._any_of) >= ANY_OF_KEPT:
                self._any_of.clear()
            self._any_of[key] = table
        return table

    def value_counts(self, combo_counts: np.ndarray) -> np.ndarray:
        """Listings per value code, from listings per set."""
        pair_combo, pair_value = self.pairs()
        # Sums of integer counts below 2**53: exact in float64.
        return np.bincount(pair_value, weights=combo_counts[pair_combo], minlength=len(self.value_codes.values)).astype(np.int64)


@dataclass
class CatalogueIndex:
    """Columns of the public listings, one slot per listing (slots of hidden or deleted listings are dead)."""

    revision: int = 0
    token: str = ""
    pk: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    alive: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    cols: dict[str, np.ndarray] = field(default_factory=dict)
    codes: dict[str, _Codes] = field(default_factory=dict)
    slot_of: dict[int, int] = field(default_factory=dict)
    orders: dict[str, np.ndarray] = field(default_factory=dict)
    totals: dict[str, np.ndarray] = field(default_factory=dict)
    # Which build of an index this is, and per slot the revision its row was last read at:
    # together with the primary key they name a row's content (result cards are kept by them).
    uid: int = 0
    read_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # The counted facets' codes row by row (the compiled pass reads a counted row's codes in
    # one cache line), per set of facets counted, once per catalogue state.
    facet_rows: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)
    # Each slot's joint code of JOINT_FACETS and the table sizes it was made with, once per catalogue state.
    joint: tuple[np.ndarray, tuple[int, ...]] | None = None
    # Narrow copies of the columns the compiled pass reads (uint16 codes, int32 cents) where
    # every value fits, by the column they copy, once per catalogue state: half the bytes to read.
    narrow: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # A set filter's rows as one byte each, by column and table of matching codes, once per
    # catalogue state (see _set_mask).
    set_masks: OrderedDict[tuple[int, bytes], tuple[np.ndarray, np.ndarray]] = field(default_factory=OrderedDict)
    # Per facet, one bitmap of the slots per value, once per catalogue state (see _value_bitmaps).
    # Per figure column (and least status), its distinct values and each slot's rank among
    # them, once per catalogue state (see _at_least).
    value_bits: dict[str, np.ndarray] = field(default_factory=dict)
    ranks: dict[tuple[str, int | None], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    # -- loading ---------------------------------------------------------------------------

    def _empty_codes(self) -> None:
        self.codes = {name: _Codes() for name in SINGLE}
        for facet in FACET_COLUMNS:
            self.codes[f"facet_{facet}"] = _Combos()
        self.codes["key_scene"] = _Combos()
        self.codes["key_category"] = _Combos()

    def _load(self, ids: list[int] | None) -> dict[str, np.ndarray]:
        """The index's columns of the public listings (only ``ids`` when given), strings as codes."""
        for attempt in range(3):
            raw = _copy_rows(ids)
            strings = _distinct_strings(ids)
            try:
                return self._encode(raw, strings)
            except CatalogueChangedWhileReading:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _encode(self, raw: dict[str, np.ndarray], strings: dict[str, dict[int, str]]) -> dict[str, np.ndarray]:
        out = {name: column for name, column in raw.items() if not name.startswith("hash_")}
        for name in SINGLE:
            out[name] = _codes_of(raw[f"hash_{name}"], strings[f"hash_{name}"], self.codes[name].of)
        scenes = self.codes["key_scene"]
        out["key_scene"] = _codes_of(raw["hash_scene"], strings["hash_scene"], lambda text: scenes.of(frozenset(text.split())))
        for facet in FACET_COLUMNS:
            combos = self.codes[f"facet_{facet}"]
            out[f"facet_{facet}"] = _codes_of(
                raw[f"hash_facet_{facet}"], strings[f"hash_facet_{facet}"], lambda text, combos=combos: combos.of(tuple(text.split()))
            )
        categories = self.codes["key_category"]
        out["key_category"] = _codes_of(
            raw["hash_category"],
            strings["hash_category"],
            lambda text: categories.of(frozenset(text.split(_CATEGORY_SEPARATOR)) if text else frozenset()),
        )
        return out

    def build(self, revision: int, token: str) -> None:
        self._empty_codes()
        cols = self._load(None)
        self.pk = cols.pop("pk")
        self.cols = cols
        self.alive = np.ones(len(self.pk), dtype=bool)
        self.slot_of = {int(pk): slot for slot, pk in enumerate(self.pk.tolist())}
        self.orders, self.totals, self.facet_rows, self.joint, self.narrow, self.value_bits, self.ranks = {}, {}, {}, None, {}, {}, {}
        self.set_masks = OrderedDict()
        self.uid = next(_index_uids)
        self.read_at = np.full(len(self.pk), revision, dtype=np.int64)
        self.revision, self.token = revision, token

    def apply_changes(self, revision: int, token: str) -> None:
        """Reload the listings changed after this index's revision: update their slots, add new ones, kill removed ones."""
        with connection.cursor() as cur:
            cur.execute("SELECT listing_id FROM listings_catalogue_change WHERE revision > %s", [self.revision])
            changed = [pk for (pk,) in cur.fetchall()]
        if changed:
            cols = self._load(changed)
            present = cols.pop("pk")
            for pk in changed:
                slot = self.slot_of.get(pk)
                if slot is not None:
                    self.alive[slot] = False
                    self.read_at[slot] = revision
            fresh = [i for i, pk in enumerate(present.tolist()) if pk not in self.slot_of]
            for i, pk in enumerate(present.tolist()):
                slot = self.slot_of.get(pk)
                if slot is not None:
                    for name, column in cols.items():
                        self.cols[name][slot] = column[i]
                    self.alive[slot] = True
            if fresh:
                take = np.array(fresh, dtype=np.int64)
                start = len(self.pk)
                self.pk = np.concatenate([self.pk, present[take]])
                self.alive = np.concatenate([self.alive, np.ones(len(take), dtype=bool)])
                self.read_at = np.concatenate([self.read_at, np.full(len(take), revision, dtype=np.int64)])
                for name, column in cols.items():
                    self.cols[name] = np.concatenate([self.cols[name], column[take]])
                for j, pk in enumerate(present[take].tolist()):
                    self.slot_of[pk] = start + j
            self.orders, self.totals, self.facet_rows, self.joint, self.narrow, self.value_bits, self.ranks = {}, {}, {}, None, {}, {}, {}
        self.set_masks = OrderedDict()
        self.revision, self.token = revision, token

    # -- querying --------------------------------------------------------------------------

    def conditions(self, f) -> dict[str, Term]:
        """Each filter's term, keyed as search._conditions keys its conditions (``q`` is applied by the caller)."""
        from marketplace.listings.search import MIN_STATUS, SCENE_MINIMUMS

        c = self.cols
        m: dict[str, Term] = {}
        for figure, value in f.minimums.items():
            m[f"min_{figure}"] = self._at_least(figure, value, int(MIN_STATUS[figure]))
        if f.flags.get("verified_only"):
            m["verified_only"] = Term(EQUALS_INT16, c["mask_iou_status"], lo=3)
        for key in ("has_tracks", "commercial_use", "derivatives"):
            if key in f.flags:
                m[key] = Term(EQUALS_BOOL, c[key], lo=int(f.flags[key]))
        if f.flags.get("no_share_alike"):
            m["no_share_alike"] = Term(EQUALS_BOOL, c["share_alike"], lo=0)
        for key, column in (("embodiment", "facet_embodiment"), ("task", "facet_task"), ("sensor", "facet_sensor"), ("scene", "key_scene"), ("category", "key_category")):
            if f.multi.get(key):
                m[key] = Term(IN_TABLE, c[column], self.codes[column].any_of(f.multi[key]))
        for key, name in (("annotation_kind", "annotation_kind"), ("tier", "tier"), ("seller", "seller")):
            if f.multi.get(key):
                m[key] = Term(IN_TABLE, c[name], self.codes[name].lut(f.multi[key]))
        if f.price_min is not None:
            m["price_min"] = Term(RANGE_INT64, c["price_cents"], lo=_cents(f.price_min, ROUND_CEILING), hi=_INT64_MAX)
        if f.price_max is not None:
            m["price_max"] = Term(RANGE_INT64, c["price_cents"], lo=_INT64_MIN, hi=_cents(f.price_max, ROUND_FLOOR))
        if f.frames_min is not None:
            m["frames_min"] = Term(RANGE_INT64, c["frames"], lo=min(f.frames_min, _INT64_MAX), hi=_INT64_MAX)
        if f.frames_max is not None:
            m["frames_max"] = Term(RANGE_INT64, c["frames"], lo=_INT64_MIN, hi=min(f.frames_max, _INT64_MAX))
        for key, value in f.scene.items():
            column = c[SCENE_MINIMUMS[key][0]]
            if column.dtype == np.int64:  # a count: an integer is >= value exactly when it is >= ceil(value)
                m[key] = Term(RANGE_INT64, column, lo=max(min(math.ceil(value), _INT64_MAX), _INT64_MIN), hi=_INT64_MAX)
            else:
                m[key] = self._at_least(SCENE_MINIMUMS[key][0], value, None)
        return m

    def _at_least(self, name: str, value: float, least_status: int | None) -> Term:
        """``column >= value`` (and its status at least ``least_status``) as a range over the
        slots' ranks among the column's distinct values: x >= value exactly when x's rank is
        at least the place ``value`` would take among them. The pass then reads 32-bit ranks
        (a slot failing the status, or a null, ranks -1) instead of a float64 column and an
        int16 one: from 10 bytes per listing to 4."""
        kept = self.ranks.get((name, least_status))
        if kept is None:
            column = self.cols[name]
            known = ~np.isnan(column)
            if least_status is not None:
                known &= self.cols[f"{name}_status"] >= least_status
            distinct, rank = np.unique(column[known], return_inverse=True)
            ranks = np.full(len(column), -1, dtype=np.int64)
            ranks[known] = rank.reshape(-1)
            kept = self.ranks[(name, least_status)] = (distinct, ranks)
        distinct, ranks = kept
        # NaN sorts last: no rank reaches the place of a NaN value (nothing is >= NaN).
        return Term(RANGE_INT64, ranks, lo=int(np.searchsorted(distinct, value, side="left")), hi=_INT64_MAX)

    def order(self, ordering: str) -> np.ndarray:
        """Slots in the ordering's order (search.listing_search's ORDER BY), computed once per state."""
        perm = self.orders.get(ordering)
        if perm is None:
            perm = self.orders[ordering] = np.lexsort(self._sort_keys(ordering)[::-1])
        return perm

    def text_slots(self, q: str, ids: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """The slots matching ``q`` (its ids and ts_rank from PostgreSQL at this index's state), in
        relevance order (rank descending, then newest, then primary key), once per state and query."""
        key = f"q:{q}"
        slots = self.orders.get(key)
        if slots is None:
            found = self.slots_of(ids)
            known = found >= 0
            slots, rank = found[known], ranks[known]
            c = self.cols
            slots = slots[np.lexsort((self.pk[slots], -c["published_us"][slots], c["published_null"][slots], -rank))]
            if sum(k.startswith("q:") for k in self.orders) >= TEXT_MATCHES_KEPT:
                for old in [k for k in self.orders if k.startswith("q:")]:
                    del self.orders[old]
            self.orders[key] = slots
        return slots

    def slots_of(self, pks: np.ndarray) -> np.ndarray:
        """The slots of primary keys, -1 for those not in the index (vectorized: a query may match 100k listings)."""
        by_pk = self.orders.get("by_pk")
        if by_pk is None:
            by_pk = self.orders["by_pk"] = np.argsort(self.pk, kind="stable")
            self.orders["pk_sorted"] = self.pk[by_pk]
        pk_sorted = self.orders["pk_sorted"]
        if not len(pk_sorted):
            return np.full(len(pks), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(pk_sorted, pks), len(pk_sorted) - 1)
        return np.where(pk_sorted[pos] == pks, by_pk[pos], -1)

    def place(self, ordering: str) -> np.ndarray:
        """Each slot's place in the ordering (the inverse permutation)."""
        key = f"place:{ordering}"
        place = self.orders.get(key)
        if place is None:
            perm = self.order(ordering)
            place = self.orders[key] = np.empty(len(perm), dtype=np.int64)
            place[perm] = np.arange(len(perm))
        return place

    def _sort_keys(self, ordering: str) -> list[np.ndarray]:
        """Sort keys, most significant first, ascending (descending ones negated, NULLS as in SQL)."""
        c = self.cols
        newest = [c["published_null"], -c["published_us"]]  # published_at DESC NULLS LAST
        return {
            "-published_at": [*newest, self.pk],
            "-mask_iou": [-c["mask_iou_status"].astype(np.int16), -c["mask_iou"], *newest, self.pk],  # NaN (null) sorts last
            "price": [c["price_cents"], *newest, self.pk],
            "quality_adjusted_cost": [c["quality_adjusted_cost"], c["price_cents"], self.pk],
            "diversity": [-c["diversity"], c["quality_adjusted_cost"], self.pk],
        }[ordering]

    def _rows_or_complement(self, m: np.ndarray) -> tuple[bool, np.ndarray]:
        """The rows of a mask, or when it holds most live rows, the live rows outside it (fewer to count)."""
        n = int(np.count_nonzero(m))
        if 2 * n <= self.alive_count():
            return False, np.flatnonzero(m)
        return True, np.flatnonzero(self.alive & ~m)

    def alive_count(self) -> int:
        if "alive" not in self.totals:
            self.totals["alive"] = np.array([np.count_nonzero(self.alive)])
        return int(self.totals["alive"][0])

    def _alive_counts(self, column: str, size: int, values: np.ndarray | None = None) -> np.ndarray:
        """Per code of a column (or of ``values``, a column derived from them), its live rows
        (once per catalogue state): counts under a mask are these less the complement's."""
        counts = self.totals.get(column)
        if counts is None or len(counts) != size:
            values = self.cols[column] if values is None else values
            counts = self.totals[column] = np.bincount(values[self.alive], minlength=size)
        return counts

    def _narrow(self, column: np.ndarray) -> np.ndarray:
        """``column`` as uint16 (int32 codes) or int32 (int64 values) when every value fits, else itself."""
        kept = self.narrow.get(id(column))
        if kept is not None and kept[0] is column:
            return kept[1]
        narrow = column
        if len(column) and column.dtype == np.int32 and column.min() >= 0 and column.max() <= np.iinfo(np.uint16).max:
            narrow = column.astype(np.uint16)
        elif len(column) and column.dtype == np.int64 and column.min() >= np.iinfo(np.int32).min and column.max() <= np.iinfo(np.int32).max:
            narrow = column.astype(np.int32)
        self.narrow[id(column)] = (column, narrow)
        return narrow

    def _set_mask(self, term: Term) -> Term:
        """A set filter (IN_TABLE) as a flag per listing, kept for the next search with the same
        table: the pass then compares bytes (vectorized) instead of looking every listing's
        code up in the table (one dependent load per listing: 22 % of a worker's CPU at 1M
        listings). Kept up to SET_MASKS_BYTES per index; a filter asked once costs one numpy
        lookup more than the pass's own."""
        column, table = term.column, term.aux
        key = (id(column), table.tobytes())
        kept = self.set_masks.get(key)
        if kept is not None and kept[0] is column:
            self.set_masks.move_to_end(key)
            return Term(EQUALS_BOOL, kept[1], lo=1)
        if len(column) and int(column.max()) >= len(table):
            return term  # a code beyond the table: the pass fails it (a state this index never makes)
        mask = table[column]
        self.set_masks[key] = (column, mask)
        while len(self.set_masks) > 1 and sum(m.nbytes for _c, m in self.set_masks.values()) > SET_MASKS_BYTES:
            self.set_masks.popitem(last=False)
        return Term(EQUALS_BOOL, mask, lo=1)

    def _joint_codes(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """Each slot's joint code of JOINT_FACETS (mixed radix over their tables' sizes), and those sizes."""
        sizes = tuple(len(self.codes[_facet_column(facet)].values) for facet in JOINT_FACETS)
        if self.joint is None or self.joint[1] != sizes or len(self.joint[0]) != len(self.pk):
            code = np.zeros(len(self.pk), dtype=np.int64)
            for facet, size in zip(JOINT_FACETS, sizes, strict=True):
                code = code * size + self.cols[_facet_column(facet)]
            self.joint = (code.astype(np.int32), sizes)
        return self.joint

    def _value_bitmaps(self, facet: str) -> np.ndarray:
        """One bitmap of the slots per value of ``facet`` (values x words: a slot's bit is bit
        slot % 64 of word slot // 64), the values as the facet lists them: a facet of sets by
        its value codes, the others by their codes. The compiled pass counts a dense group from
        them: an AND and a popcount per 64 slots per value instead of an increment per row."""
        bits = self.value_bits.get(facet)
        if bits is None:
            column = self.cols[_facet_column(facet)]
            codes = self.codes[_facet_column(facet)]
            words = (len(column) + 63) // 64
            padded = np.zeros(words * 64, dtype=bool)
            if facet in FACET_COLUMNS:
                pair_combo, pair_value = codes.pairs()
                nvalues = len(codes.value_codes.values)
            else:
                nvalues = len(codes.values)
            bits = np.empty((nvalues, words), dtype=np.uint64)
            for value in range(nvalues):
                if facet in FACET_COLUMNS:
                    holds = np.zeros(len(codes.values) + 1, dtype=bool)
                    holds[pair_combo[pair_value == value]] = True
                    padded[: len(column)] = holds[column]
                else:
                    padded[: len(column)] = column == value
                # Little-endian words whatever the machine's order: bit i of byte j is slot 8j + i.
                bits[value] = np.packbits(padded, bitorder="little").view("<u8")
            self.value_bits[facet] = bits
        return bits

    def facets(self, masks: dict[str, np.ndarray], base: np.ndarray) -> tuple[dict[str, list[dict[str, Any]]], np.ndarray]:
        """Disjunctive facets as search._facets_one_query counts them, and the mask of every filter (numpy)."""
        from marketplace.listings.search import FACETS

        own = [k for k in OWN_FACETS if k in masks]
        for key, mask in masks.items():
            if key not in own:
                base = base & mask

        def passing(leave_out: str | None) -> np.ndarray:
            m = base
            for k in own:
                if k != leave_out:
                    m = m & masks[k]
            return m

        everything = passing(None)
        per_facet: dict[str, np.ndarray] = {}
        # Per mask (facets without a filter of their own share one): whether the rows are its
        # complement, and the rows. The mask is kept in the value so its id stays its own.
        rows_of: dict[int, tuple[np.ndarray, bool, np.ndarray]] = {}
        for facet in FACETS:
            m = everything if facet == "license" or facet not in own else passing(facet)
            if id(m) not in rows_of:
                rows_of[id(m)] = (m, *self._rows_or_complement(m))
            _mask, complement, rows = rows_of[id(m)]
            column = _facet_column(facet)
            size = len(self.codes[column].values)
            counts = np.bincount(self.cols[column][rows], minlength=size)
            per_facet[facet] = self._alive_counts(column, size) - counts if complement else counts
        return self._facet_lists(per_facet), everything

    def scan(self, kernel, terms: dict[str, Term]) -> tuple[dict[str, list[dict[str, Any]]], int, np.ndarray]:
        """Facets, count and each slot's byte (0: every filter passes) from the compiled pass
        (catalogue_scan): the same answer as conditions' masks through :meth:`facets`."""
        from marketplace.listings.search import FACETS

        base_bit = kernel.BASE_BIT
        terms = {key: self._set_mask(t) if t.kind == IN_TABLE else t for key, t in terms.items()}
        bits = {key: OWN_FACETS.index(key) for key in terms if key in OWN_FACETS}
        args = [
            (t.kind, bits.get(key, base_bit), self._narrow(t.column) if t.kind in (RANGE_INT64, IN_TABLE) else t.column, t.aux, float(t.value), int(t.lo), int(t.hi))
            for key, t in terms.items()
        ]
        counted = list(FACETS)
        columns = {facet: self.cols[_facet_column(facet)] for facet in FACETS}
        sizes = {facet: len(self.codes[_facet_column(facet)].values) for facet in FACETS}
        joint_sizes = tuple(sizes[facet] for facet in JOINT_FACETS)
        # Without a filter of their own, JOINT_FACETS count the same rows: one count of their
        # joint code per row instead of one of each, split into theirs afterwards.
        # From BITMAPS_FROM_SLOTS slots on, each facet is offered its values' bitmaps: the pass
        # counts a dense group from them and a sparse one per row (the joint code is not made).
        by_bitmaps = len(self.pk) >= BITMAPS_FROM_SLOTS
        joined = not by_bitmaps and not any(facet in bits for facet in JOINT_FACETS) and math.prod(joint_sizes) <= JOINT_CODES_MAX
        if joined:
            counted = [facet for facet in FACETS if facet not in JOINT_FACETS] + [JOINT]
            columns[JOINT], joint_sizes = self._joint_codes()
            sizes[JOINT] = math.prod(joint_sizes)
        counts = {facet: np.empty(sizes[facet], dtype=np.int64) for facet in counted}
        specs = [(self._narrow(columns[facet]), counts[facet], bits.get(facet, -1)) for facet in counted]
        value_counts = {}
        if by_bitmaps:
            for i, facet in enumerate(counted):
                bitmaps = self._value_bitmaps(facet)
                value_counts[facet] = np.empty(len(bitmaps), dtype=np.int64)
                specs[i] += (bitmaps, value_counts[facet])
        rows = self.facet_rows.get(tuple(counted))
        if rows is None:
            wide = max(sizes[facet] for facet in counted) > np.iinfo(np.uint16).max
            rows = np.stack([columns[facet] for facet in counted], axis=1).astype(np.uint32 if wide else np.uint16)
            self.facet_rows[tuple(counted)] = rows
        codes = np.empty(len(self.pk), dtype=np.uint8)
        threads = SCAN_THREADS if len(self.pk) >= SCAN_SPLIT_ROWS else 1
        count, modes = kernel.scan(self.alive, args, rows, specs, codes, threads)
        by_value = {}
        for facet, mode in zip(counted, modes, strict=True):
            if mode == COUNTED_BY_VALUES:
                by_value[facet] = value_counts[facet]
            elif mode == COUNTED_OUTSIDE:
                column = _facet_column(facet) if facet != JOINT else JOINT
                counts[facet] = self._alive_counts(column, sizes[facet], columns[facet]) - counts[facet]
        if joined:
            table = counts.pop(JOINT).reshape(joint_sizes)
            for axis, facet in enumerate(JOINT_FACETS):
                counts[facet] = table.sum(axis=tuple(a for a in range(len(JOINT_FACETS)) if a != axis))
        return self._facet_lists({facet: counts[facet] for facet in FACETS}, by_value), count, codes

    def _facet_lists(self, per_facet: dict[str, np.ndarray], by_value: dict[str, np.ndarray] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Each facet's values and counts, most listings first, as search._facets_one_query lists
        them, from its counts per code or, in ``by_value``, per value (see _value_bitmaps)."""
        from marketplace.listings.search import FACET_LIMIT

        by_value = by_value or {}
        facets = {}
        for facet, counts in per_facet.items():
            codes = self.codes[_facet_column(facet)]
            if facet in FACET_COLUMNS:
                per_value = by_value[facet] if facet in by_value else codes.value_counts(counts)
                facets[facet] = codes.value_codes.top(per_value, FACET_LIMIT, named_only=False)
            else:
                facets[facet] = codes.top(by_value.get(facet, counts), FACET_LIMIT, named_only=True)
        return facets


# The facets a filter of their own is left out of (disjunctive), in the order of their bit in
# the compiled pass; the license facet has no filter of its own.
OWN_FACETS = ("embodiment", "task", "tier", "annotation_kind", "sensor")
# The most bytes of set filters' flags kept per index (64 filters at 1M listings).
SET_MASKS_BYTES = 64 << 20
# Facets counted together as one joint code when none has a filter in the search (the license
# facet never has one), while their joint codes are at most JOINT_CODES_MAX (the counts stay
# in the processor's cache).
JOINT_FACETS = ("license", "tier", "annotation_kind")
JOINT = "joint"
JOINT_CODES_MAX = 1 << 15
# The compiled pass's modes of a facet's counts: its rows', the live rows' outside, or per value from bitmaps.
COUNTED_ROWS, COUNTED_OUTSIDE, COUNTED_BY_VALUES = 0, 1, 2
# Facets are offered their values' bitmaps from this many slots on (below, the per-row
# counts and the joint code are as fast, and there is nothing to build per catalogue state:
# at 1M listings, the bitmaps take about 13 MB and 0.2 s to make after a change).
BITMAPS_FROM_SLOTS = 1 << 16
# Threads of the compiled pass from SCAN_SPLIT_ROWS slots on (below, starting a thread costs
# more than half the pass).
SCAN_THREADS = 2
SCAN_SPLIT_ROWS = 1 << 17


def _facet_column(facet: str) -> str:
    return f"facet_{facet}" if facet in FACET_COLUMNS else facet


# A term's kind (the compiled pass's numbering).
MIN_WITH_STATUS, EQUALS_INT16, EQUALS_BOOL, RANGE_INT64, MIN_FLOAT64, IN_TABLE = range(6)


@dataclass(frozen=True)
class Term:
    """One filter over one column: figure >= value with its status >= lo, int16 or bool ==
    lo, lo <= int64 <= hi, float64 >= value, or the code's entry in the table ``aux``."""

    kind: int
    column: np.ndarray
    aux: np.ndarray | None = None
    value: float = 0.0
    lo: int = 0
    hi: int = 0

    def mask(self) -> np.ndarray:
        """The rows passing it (numpy: the reference of the compiled pass)."""
        x = self.column
        if self.kind == MIN_WITH_STATUS:
            return (x >= self.value) & (self.aux >= self.lo)
        if self.kind in (EQUALS_INT16, EQUALS_BOOL):
            return x == (bool(self.lo) if self.kind == EQUALS_BOOL else self.lo)
        if self.kind == RANGE_INT64:
            return (x >= self.lo) & (x <= self.hi)
        if self.kind == MIN_FLOAT64:
            return x >= self.value
        return self.aux[x]


def _cents(amount: Decimal, rounding: str) -> int:
    cents = int((amount * 100).to_integral_value(rounding=rounding))
    return max(min(cents, _INT64_MAX), _INT64_MIN)


def _codes_of(hashes: np.ndarray, table: dict[int, str], encode) -> np.ndarray:
    """Each row's code: its string's hash looked up in ``table`` (hash -> string), the string encoded once."""
    keys = np.fromiter(table.keys(), dtype=np.int64, count=len(table))
    codes = np.fromiter((encode(text) for text in table.values()), dtype=np.int32, count=len(table))
    order = np.argsort(keys)
    keys, codes = keys[order], codes[order]
    if not len(hashes):
        return np.zeros(0, dtype=np.int32)
    if not len(keys):
        raise CatalogueChangedWhileReading
    pos = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
    if not (keys[pos] == hashes).all():
        raise CatalogueChangedWhileReading
    return codes[pos]


# -- one index per process and database, kept current -----------------------------------------

_shared: dict[str, CatalogueIndex] = {}
_private: dict[str, tuple[tuple[int, str], CatalogueIndex]] = {}
# Threads of one process (gunicorn's gthread workers) share the index: one refreshes or reads it at a time.
_search_lock = threading.Lock()


def index_enabled() -> bool:
    """The in-process index serves search on PostgreSQL unless LISTINGS_SEARCH_INDEX is off (then the SQL path does)."""
    return connection.vendor == "postgresql" and bool(getattr(settings, "LISTINGS_SEARCH_INDEX", True))


def _database_key() -> str:
    return f"{connection.alias}:{connection.settings_dict['HOST']}:{connection.settings_dict['PORT']}:{connection.settings_dict['NAME']}"


def catalogue_index_current(revision: int, token: str, reset_revision: int) -> CatalogueIndex:
    """The index at the catalogue state (revision, token) this connection just read. Call with _search_lock held."""
    key = _database_key()
    index = _shared.get(key)
    if index is None:
        index = _shared[key] = CatalogueIndex()
    if index.token == token and index.revision == revision:
        return index
    if connection.in_atomic_block:
        # Possibly uncommitted: a private index for exactly this state, the shared one untouched.
        cached = _private.get(key)
        if cached is not None and cached[0] == (revision, token):
            return cached[1]
        private = CatalogueIndex()
        private.build(revision, token)
        _private[key] = ((revision, token), private)
        return private
    if not index.token or reset_revision > index.revision or revision < index.revision:
        _build_shared(index, revision, token)
    else:
        index.apply_changes(revision, token)
    return index


_index_uids = itertools.count(1)

# From this many listings, a shared index's Python containers (the codes' tables and sets,
# the slot map: hundreds of thousands of objects) are moved out of the cyclic collector's
# reach once built: a full collection walked them for 270 ms at 1M listings, stopping every
# thread of the process. Reference counting still frees them when the index is replaced.
FREEZE_FROM_LISTINGS = 50_000


def _build_shared(index: CatalogueIndex, revision: int, token: str) -> None:
    gc.unfreeze()  # what the last build froze can be collected again, the containers this build replaces among them
    index.build(revision, token)
    if len(index.pk) >= FREEZE_FROM_LISTINGS:
        gc.collect()  # cyclic garbage (of the replaced index, of the build) is not frozen with it
        gc.freeze()


def listings_by_pk(pks: list[int]) -> list[Listing]:
    """The listings' rows for result cards, in the order of ``pks`` (one query; a row deleted since is left out)."""
    if not pks:
        return []
    rows = Listing.objects.filter(pk__in=pks).defer("search_vector", "search_text", "description", "terms", "previews", "facet_keys")
    by_pk = {row.pk: row for row in rows}
    return [by_pk[pk] for pk in pks if pk in by_pk]


@dataclass(frozen=True)
class ResultRef:
    """One result of a page: the listing and the index state its card is kept under."""

    pk: int
    index_uid: int
    read_at: int


@dataclass
class SearchResult:
    """A search's answer from the index: its facets, count and order; a slice gives
    references (:class:`ResultRef`), whose cards :func:`result_cards` renders.

    The order is either the matching slots already sorted (relevance), or the ordering's
    permutation and the matches' mask, walked only as far as the page asked for: a page of a
    dense answer does not gather a million slots. A sparse answer also has ``in_order``,
    which puts every match in order at once; it is used when the walk would cost more (see
    :meth:`_walk_pays`)."""

    facets: dict[str, list[dict[str, Any]]]
    count: int
    index_uid: int
    slot_pk: np.ndarray
    slot_read_at: np.ndarray
    slots: np.ndarray | None = None
    perm: np.ndarray | None = None
    mask: np.ndarray | None = None
    failed: np.ndarray | None = None  # instead of mask: per slot, 0 when every filter passes (the compiled pass's bytes)
    in_order: Callable[[], np.ndarray] | None = None

    def __len__(self) -> int:
        return self.count

    def _walk_pays(self, stop: int) -> bool:
        """Whether walking the ordering to the page's end costs less than putting every match in
        order. The walk meets ``stop`` matches after about stop * n / count slots, each a read
        of the permutation (in order) and of a byte; ordering every match costs two reads far
        apart in memory per match (its place, and the slot at that place) and a pass over the
        bytes. Reads far apart cost about WALK_SLOTS_PER_MATCH near ones: at 1M listings, a
        page 5 of 15,000 matches walks 6,500 slots instead of ordering 15,000 matches, and a
        page of 100 matches orders them."""
        return stop * len(self.perm) <= WALK_SLOTS_PER_MATCH * self.count * self.count

    def _ordered_slots(self, stop: int) -> np.ndarray:
        stop = min(stop, self.count)
        if self.slots is None and self.in_order is not None and stop and not self._walk_pays(stop):
            self.slots = self.in_order()
        if self.slots is not None:
            return self.slots[:stop]
        assert self.perm is not None and (self.mask is not None or self.failed is not None)
        # The first chunk is about the walk's expected length (a quarter more), then four times longer.
        found, have, pos = [], 0, 0
        step = max(4096, stop * len(self.perm) // max(self.count, 1) * 5 // 4)
        while have < stop and pos < len(self.perm):
            chunk = self.perm[pos : pos + step]
            hits = chunk[self.mask[chunk]] if self.mask is not None else chunk[self.failed[chunk] == 0]
            found.append(hits)
            have, pos, step = have + len(hits), pos + step, step * 4
        return np.concatenate(found)[:stop] if found else np.zeros(0, dtype=np.int64)

    def _slice(self, item: slice) -> np.ndarray:
        start, stop, _step = item.indices(self.count)
        return self._ordered_slots(stop)[start:stop]

    @property
    def pks(self) -> np.ndarray:
        """Every match's primary key, in order."""
        return self.slot_pk[self._ordered_slots(self.count)]

    def __getitem__(self, item: slice) -> list[ResultRef]:
        slots = self._slice(item)
        return [
            ResultRef(pk=pk, index_uid=self.index_uid, read_at=at)
            for pk, at in zip(self.slot_pk[slots].tolist(), self.slot_read_at[slots].tolist(), strict=True)
        ]

    def listings(self, item: slice) -> list[Listing]:
        return listings_by_pk(self.slot_pk[self._slice(item)].tolist())


# Reads far apart in memory (a match's place, the slot at a place) per near one (the next slot
# of the ordering and its byte): when a walk of the ordering to a page's end pays (SearchResult).
WALK_SLOTS_PER_MATCH = 16

# Rendered result cards, per (variant: the answer's scheme and host, listing, index build,
# revision the row was read at): a card is rendered from its row once per change of the row.
_cards: OrderedDict[tuple[str, int, int, int], Any] = OrderedDict()
_cards_lock = threading.Lock()
CARDS_KEPT = 4000


def result_cards(refs: list[ResultRef], *, variant: str, render) -> list[Any]:
    """The cards of a page of results: kept ones as they are, the others rendered by
    ``render(listings)`` from their rows (one query for all of them) and kept."""
    keys = [(variant, ref.pk, ref.index_uid, ref.read_at) for ref in refs]
    with _cards_lock:
        found = [_cards.get(key) for key in keys]
        for key, card in zip(keys, found, strict=True):
            if card is not None:
                _cards.move_to_end(key)
    missing = [ref.pk for ref, card in zip(refs, found, strict=True) if card is None]
    if missing:
        rows = listings_by_pk(missing)
        rendered = dict(zip((row.pk for row in rows), render(rows), strict=True))
        with _cards_lock:
            for key, card in zip(keys, found, strict=True):
                if card is None and key[1] in rendered:
                    _cards[key] = rendered[key[1]]
            while len(_cards) > CARDS_KEPT:
                _cards.popitem(last=False)
        found = [card if card is not None else rendered.get(ref.pk) for ref, card in zip(refs, found, strict=True)]
    return [card for card in found if card is not None]


def catalogue_and_vocabulary_state() -> tuple[tuple[int, str, int], tuple[int, str]]:
    """The catalogue state (revision, token, reset) and the vocabulary's (revision, token), in one statement."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.revision, c.token, c.reset_revision, v.revision, v.token "
            f"FROM listings_catalogue_revision c, {VOCABULARY_REVISION_TABLE} v WHERE c.id = 1 AND v.id = 1"
        )
        row = cur.fetchone()
    return (row[0], row[1], row[2]), (row[3], row[4])


def catalogue_search(*, filters) -> SearchResult:
    """Facets, count and order of the public listings matching ``filters``, from the index (PostgreSQL).

    The catalogue state is the one parsing read for this request (filters.catalogue_state)
    when it read one, else read now."""
    revision, token, reset, matches = _revision_and_text_matches(filters.q, getattr(filters, "catalogue_state", None))
    with _search_lock:
        index = catalogue_index_current(revision, token, reset)
        return _search(index, filters, matches)


def _search(index: CatalogueIndex, filters, matches: tuple[np.ndarray, np.ndarray] | None) -> SearchResult:
    terms = index.conditions(filters)
    by_relevance = None
    if matches is not None:
        by_relevance = index.text_slots(filters.q, *matches)
        in_text = np.zeros(len(index.pk), dtype=bool)
        in_text[by_relevance] = True
        terms["q"] = Term(EQUALS_BOOL, in_text, lo=1)
    kernel = catalogue_scan.kernel()
    if kernel is not None:
        facets, count, codes = index.scan(kernel, terms)
        everything = None
    else:
        facets, everything = index.facets({key: term.mask() for key, term in terms.items()}, index.alive)
        count = int(np.count_nonzero(everything))
    found = functools.partial(SearchResult, facets=facets, index_uid=index.uid, slot_pk=index.pk, slot_read_at=index.read_at)
    ordering = filters.ordering
    if ordering == "relevance" and by_relevance is not None:
        slots = by_relevance[codes[by_relevance] == 0] if everything is None else by_relevance[everything[by_relevance]]
        return found(count=len(slots), slots=slots)
    ordering = "-published_at" if ordering == "relevance" else ordering
    perm = index.order(ordering)
    in_order = None
    if count * 32 <= len(index.pk):  # few matches: a page far into them is found by their place in the ordering
        place = index.place(ordering)
        if everything is None:

            def in_order() -> np.ndarray:
                slots = np.empty(count, dtype=np.int64)
                kernel.ordered_matches(codes, place, perm, slots)
                return slots

        else:

            def in_order() -> np.ndarray:
                slots = np.flatnonzero(everything)
                return slots[np.argsort(place[slots], kind="stable")]

    if everything is None:
        return found(count=count, perm=perm, failed=codes, in_order=in_order)
    return found(count=count, perm=perm, mask=everything, in_order=in_order)


# Full-text answers per query string, each valid for one catalogue state: (revision, token, ids, ranks).
_text_matches: OrderedDict[tuple[str, str], tuple[int, str, np.ndarray, np.ndarray]] = OrderedDict()
TEXT_MATCHES_KEPT = 256
_text_lock = threading.Lock()


def _revision_and_text_matches(q: str, state: tuple[int, str, int] | None = None) -> tuple[int, str, int, tuple[np.ndarray, np.ndarray] | None]:
    """The catalogue revision and, with ``q``, the public listings matching it and their rank.

    The matches of a query string are kept per process for the catalogue state they were
    read at (any listing change moves the revision): a repeated query costs the revision
    read alone. Otherwise a second query reads the revision again with the matches, so both
    come from one snapshot; it skips the full-text scan when the state turned out to be the
    kept one after all (OFFSET 0 keeps the subquery a subquery, so that condition gates the
    scan). The revision read stays a statement of its own: a statement holding the
    full-text scan is costly enough for PostgreSQL's JIT to compile it, even unexecuted.
    """
    with connection.cursor() as cur:
        if state is None:
            cur.execute("SELECT revision, token, reset_revision FROM listings_catalogue_revision WHERE id = 1")
            state = cur.fetchone()
        revision, token, reset = state
        if not q:
            return revision, token, reset, None
        key = (_database_key(), q)
        with _text_lock:
            cached = _text_matches.get(key)
        if cached is not None and (cached[0], cached[1]) == (revision, token):
            return revision, token, reset, (cached[2], cached[3])
        known = (cached[0], cached[1]) if cached is not None else (-1, "")
        cur.execute(
            "SELECT r.revision, r.token, r.reset_revision, m.id, m.rank FROM listings_catalogue_revision r "
            "LEFT JOIN LATERAL (SELECT l.id, ts_rank(l.search_vector, query.q) AS rank "
            "FROM listings_listing l, websearch_to_tsquery('english'::regconfig, %s) AS query(q) "
            "WHERE (r.revision <> %s OR r.token <> %s) AND l.is_public AND l.search_vector @@ query.q OFFSET 0) m ON TRUE "
            "WHERE r.id = 1",
            [q, *known],
        )
        rows = cur.fetchall()
    revision, token, reset = rows[0][:3]
    if cached is not None and (revision, token) == known:
        return revision, token, reset, (cached[2], cached[3])
    ids = np.fromiter((r[3] for r in rows if r[3] is not None), dtype=np.int64)
    ranks = np.fromiter((r[4] for r in rows if r[3] is not None), dtype=np.float64)
    with _text_lock:
        _text_matches[key] = (revision, token, ids, ranks)
        while len(_text_matches) > TEXT_MATCHES_KEPT:
            _text_matches.popitem(last=False)
    return revision, token, reset, (ids, ranks)
