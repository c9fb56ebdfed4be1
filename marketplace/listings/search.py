"""Listing search: validated filters, full-text query, ordering and facets.

Semantics (documented for the README):

* Repeatable filters (``embodiment``, ``task``, ``scene``, ``category``, ``annotation_kind``,
  ``sensor``, ``tier``, ``seller``) mean *any of* the values; different filters combine
  with AND. Vocabulary values (embodiment, task, scene) are found by slug, name or alias
  (``ur5e``, ``UR5e``, ``ur5-e``); an unknown one answers 400 with the closest known values.
* ``min_<figure>`` compares the **verified** figure only (mask IoU, AP): a measured or
  self-declared figure never satisfies it. ``min_agreement`` and ``min_temporal_iou``
  compare figures that can only be *measured* (from the seller's own data: there is no
  reference for them), so they accept measured figures, never self-declared ones.
  ``verified_only=true`` keeps listings whose mask IoU is verified (audited against a
  reference).
* ``commercial_use=true`` / ``derivatives=true`` keep listings whose effective terms allow
  it (``false`` keeps those that do not); ``no_share_alike=true`` drops share-alike ones.
* Facets are *disjunctive*: the counts of a facet are computed with every filter applied
  except that facet's own filter (so ``embodiment=a`` still shows how many listings ``b``
  would add). The ``license`` facet has no filter of its own and uses all filters.
* ``q``: PostgreSQL full-text search (websearch syntax, English config, stored tsvector with
  a GIN index; title weighs A, summary B, the rest C); on SQLite every word must occur
  (icontains) in the title, summary or search text.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, QuerySet, TextField

from datasets.models import AnnotationKind, Sensor, VocabularyKind
from datasets.vocabulary import unknown_message, vocabulary_at, vocabulary_load
from marketplace.core.errors import InvalidInput, field_error
from marketplace.listings import catalogue_index
from marketplace.listings.errors import ListingErrorCode
from marketplace.listings.models import FACET_KEY_KINDS, FigureStatus, Listing, ListingTerm, TermKind
from marketplace.listings.selectors import listings_public
from quality.engine.tiers import Tier
from quality.figures import LISTING_FIGURES, MEASURED_ONLY

MIN_FIGURES = LISTING_FIGURES
# The least a figure must be backed by to satisfy its ``min_`` filter.
MIN_STATUS = {figure: FigureStatus.MEASURED if figure in MEASURED_ONLY else FigureStatus.VERIFIED for figure in MIN_FIGURES}
ORDERINGS = ("relevance", "-published_at", "-mask_iou", "price", "quality_adjusted_cost", "diversity")
TIERS = tuple(Tier)
FACETS = ("embodiment", "task", "license", "tier", "annotation_kind", "sensor")
MULTI = ("embodiment", "task", "scene", "category", "annotation_kind", "sensor", "tier", "seller")
# Closed lists of the repeatable filters that have one.
CHOICES = {"annotation_kind": tuple(AnnotationKind.values), "sensor": tuple(Sensor.values), "tier": TIERS}
# Parameters that were renamed: asked for by the old name, the error says the new one.
RENAMED = {"modality": "renamed: annotation_kind (instances, video, panoptic) is the annotation format, sensor the sensor modality"}
# Scene complexity and coverage minimums: parameter -> (Listing column, kind of number).
SCENE_MINIMUMS = {
    "min_instances_per_frame": ("instances_per_frame", "number"),
    "min_occlusion": ("occlusion", "fraction"),
    "min_embodiments": ("embodiment_count", "integer"),
    "min_tasks": ("task_count", "integer"),
}
BOOLS = ("verified_only", "has_tracks", "commercial_use", "derivatives", "no_share_alike")
KNOWN_PARAMS = frozenset(
    {
        *(f"min_{f}" for f in MIN_FIGURES),
        *MULTI,
        *BOOLS,
        "price_min",
        "price_max",
        "frames_min",
        "frames_max",
        *SCENE_MINIMUMS,
        "q",
        "ordering",
        "page",
        "page_size",
    }
)
MAX_VALUES = 20  # per repeatable filter (API4: bounded work per request)
FACET_LIMIT = 50
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(kw_only=True)
class ListingFilters:
    minimums: dict[str, float] = field(default_factory=dict)
    multi: dict[str, list[str]] = field(default_factory=dict)
    flags: dict[str, bool] = field(default_factory=dict)
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    frames_min: int | None = None
    frames_max: int | None = None
    scene: dict[str, float] = field(default_factory=dict)  # SCENE_MINIMUMS parameter -> value
    q: str = ""
    ordering: str = "relevance"
    # The catalogue state (revision, token, reset) read with the vocabulary revision while
    # parsing, so the search of the same request needs no read of its own. Not a filter.
    catalogue_state: tuple[int, str, int] | None = field(default=None, compare=False, repr=False)


class _QueryReader:
    """Reads query parameters, collecting every error with its parameter as location."""

    def __init__(self, params) -> None:
        self.params = params
        self.errors: list[dict[str, str]] = []
        self._getlist = params.getlist if hasattr(params, "getlist") else (lambda k: list(params.get(k, [])))

    def error(self, key: str, message: str, code: str) -> None:
        self.errors.append(field_error(key, message, code))

    def values(self, key: str) -> list[str]:
        """Every non-empty value of a repeatable parameter, stripped and de-duplicated."""
        if key not in self.params:  # most parameters are absent from a request
            return []
        return list(dict.fromkeys(v.strip() for v in self._getlist(key) if v.strip()))

    def one(self, key: str) -> str | None:
        if key not in self.params:
            return None
        values = [v for v in self._getlist(key) if v != ""]
        if len(values) > 1:
            self.error(key, "give this filter once", "repeated")
        return values[0] if values else None

    def fraction(self, key: str) -> float | None:
        raw = self.one(key)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.error(key, "a number between 0 and 1", "invalid")
            return None
        if not 0.0 <= value <= 1.0:
            self.error(key, "a number between 0 and 1", "out_of_range")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        raw = self.one(key)
        if raw is None:
            return None
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.error(key, "true or false", "invalid")
        return None

    def decimal(self, key: str) -> Decimal | None:
        raw = self.one(key)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            self.error(key, "a number", "invalid")
            return None
        if not value.is_finite() or value < 0:
            self.error(key, "a non-negative number", "out_of_range")
            return None
        return value

    def number(self, key: str) -> float | None:
        raw = self.one(key)
        if raw is None:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.error(key, "a non-negative number", "invalid")
            return None
        if not (value >= 0 and value < 1e9):  # NaN and infinities fail too
            self.error(key, "a non-negative number below 1e9", "out_of_range")
            return None
        return value

    def integer(self, key: str) -> int | None:
        raw = self.one(key)
        if raw is None:
            return None
        if not raw.isdigit() or len(raw) > 15:
            self.error(key, "a non-negative integer", "invalid")
            return None
        return int(raw)


def listing_filters_parse(params) -> ListingFilters:
    """Parse and validate query parameters (a QueryDict or a dict of lists). Raises
    InvalidInput with every error located. A new filter: a name in KNOWN_PARAMS, a line in
    the reader function of its family below, and its condition in ``_conditions``."""
    reader = _QueryReader(params)
    f = ListingFilters()
    for key in params:
        if key in RENAMED:
            reader.error(key, RENAMED[key], "renamed")
        elif key not in KNOWN_PARAMS:
            reader.error(key, "unknown filter", "unknown_filter")
    _read_minimums(reader, f)
    _read_flags(reader, f)
    _read_terms(reader, f)
    _read_ranges(reader, f)
    _read_scene(reader, f)
    _read_text_and_ordering(reader, f)
    if reader.errors:
        raise InvalidInput("The search filters are not valid.", code=ListingErrorCode.INVALID_FILTER, details=reader.errors)
    return f


def _read_minimums(reader: _QueryReader, f: ListingFilters) -> None:
    for figure in MIN_FIGURES:
        value = reader.fraction(f"min_{figure}")
        if value is not None:
            f.minimums[figure] = value


def _read_flags(reader: _QueryReader, f: ListingFilters) -> None:
    for key in BOOLS:
        value = reader.boolean(key)
        if value is not None:
            f.flags[key] = value


def _read_terms(reader: _QueryReader, f: ListingFilters) -> None:
    """Repeatable filters; closed lists are checked here, vocabularies in one query."""
    for key in MULTI:
        values = reader.values(key)
        if len(values) > MAX_VALUES:
            reader.error(key, f"at most {MAX_VALUES} values", "too_many")
        elif values:
            f.multi[key] = values
    for key, allowed in CHOICES.items():
        for value in f.multi.get(key, []):
            if value not in allowed:
                reader.error(key, f"unknown value {value!r}; one of {sorted(allowed)}", "unknown_value")
    vocab_kinds = {"embodiment": VocabularyKind.EMBODIMENT, "task": VocabularyKind.TASK, "scene": VocabularyKind.SCENE}
    wanted = [(key, kind) for key, kind in vocab_kinds.items() if f.multi.get(key)]
    if not wanted:
        return
    kinds = [kind for _key, kind in wanted]
    if catalogue_index.index_enabled():
        f.catalogue_state, vocabulary_state = catalogue_index.catalogue_and_vocabulary_state()
        vocab = vocabulary_at(kinds, vocabulary_state)
    else:
        vocab = vocabulary_load(kinds)
    for key, kind in wanted:
        slugs = []
        for value in f.multi[key]:
            slug = vocab.resolve(kind, value)
            if slug is None:
                reader.error(key, unknown_message(key, value, vocab.suggest(kind, value)), "unknown_value")
            elif slug not in slugs:
                slugs.append(slug)
        f.multi[key] = slugs


def _read_ranges(reader: _QueryReader, f: ListingFilters) -> None:
    f.price_min, f.price_max = reader.decimal("price_min"), reader.decimal("price_max")
    f.frames_min, f.frames_max = reader.integer("frames_min"), reader.integer("frames_max")
    if f.price_min is not None and f.price_max is not None and f.price_min > f.price_max:
        reader.error("price_min", "price_min is above price_max", "bad_range")
    if f.frames_min is not None and f.frames_max is not None and f.frames_min > f.frames_max:
        reader.error("frames_min", "frames_min is above frames_max", "bad_range")


def _read_scene(reader: _QueryReader, f: ListingFilters) -> None:
    for key, (_column, kind) in SCENE_MINIMUMS.items():
        value = {"number": reader.number, "fraction": reader.fraction, "integer": reader.integer}[kind](key)
        if value is not None:
            f.scene[key] = value


def _read_text_and_ordering(reader: _QueryReader, f: ListingFilters) -> None:
    q = reader.one("q") or ""
    if len(q) > 200:
        reader.error("q", "at most 200 characters", "too_long")
    f.q = q.strip()
    ordering = reader.one("ordering") or "relevance"
    if ordering not in ORDERINGS:
        reader.error("ordering", f"one of {list(ORDERINGS)}", "unknown_value")
    f.ordering = ordering


def _has_term(kind: str, values: list[str]) -> Any:
    if connection.vendor == "postgresql" and kind in FACET_KEY_KINDS:
        # Read from the keys copied into the covering index (Listing.facet_keys), no ListingTerm
        # probe per listing: ' kind=value ' occurs in ' <keys> ' (keys hold no spaces). A
        # substring test is about twice as fast per row as splitting the keys into an array.
        from django.db.models import Value
        from django.db.models.functions import Concat, StrIndex
        from django.db.models.lookups import GreaterThan

        padded = Concat(Value(" "), F("facet_keys"), Value(" "), output_field=TextField())
        cond = Q()
        for value in values:
            cond |= Q(GreaterThan(StrIndex(padded, Value(f" {kind}={value} ")), 0))
        return cond
    return Exists(ListingTerm.objects.filter(listing=OuterRef("pk"), kind=kind, value__in=values))


def _text_condition(q: str) -> tuple[Q | None, Any]:
    """The full-text filter and, on PostgreSQL, the query to rank with."""
    if not q:
        return None, None
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery

        query = SearchQuery(q, search_type="websearch", config="english")
        return Q(search_vector=query), query
    cond = Q()
    for word in q.split()[:10]:
        cond &= Q(title__icontains=word) | Q(summary__icontains=word) | Q(search_text__icontains=word)
    return cond, None


def _conditions(f: ListingFilters) -> dict[str, Any]:
    """Each filter's condition, keyed by the facet/filter it belongs to (so a facet can leave its own out)."""
    c: dict[str, Any] = {}
    for figure, value in f.minimums.items():
        c[f"min_{figure}"] = Q(**{f"{figure}__gte": value, f"{figure}_status__gte": MIN_STATUS[figure]})
    if f.flags.get("verified_only"):
        c["verified_only"] = Q(mask_iou_status=FigureStatus.VERIFIED)
    for key in ("has_tracks", "commercial_use", "derivatives"):
        if key in f.flags:
            c[key] = Q(**{key: f.flags[key]})
    if f.flags.get("no_share_alike"):
        c["no_share_alike"] = Q(share_alike=False)
    for key, kind in (
        ("embodiment", TermKind.EMBODIMENT),
        ("task", TermKind.TASK),
        ("scene", TermKind.SCENE),
        ("category", TermKind.CATEGORY),
        ("sensor", TermKind.SENSOR),
    ):
        if f.multi.get(key):
            c[key] = _has_term(kind, f.multi[key])
    if f.multi.get("annotation_kind"):
        c["annotation_kind"] = Q(annotation_kind__in=f.multi["annotation_kind"])
    if f.multi.get("tier"):
        c["tier"] = Q(tier__in=f.multi["tier"])
    if f.multi.get("seller"):
        c["seller"] = Q(seller_slug__in=f.multi["seller"])
    if f.price_min is not None:
        c["price_min"] = Q(price__gte=f.price_min)
    if f.price_max is not None:
        c["price_max"] = Q(price__lte=f.price_max)
    if f.frames_min is not None:
        c["frames_min"] = Q(frames__gte=f.frames_min)
    if f.frames_max is not None:
        c["frames_max"] = Q(frames__lte=f.frames_max)
    for key, value in f.scene.items():
        c[key] = Q(**{f"{SCENE_MINIMUMS[key][0]}__gte": value})
    text, _ = _text_condition(f.q)
    if text is not None:
        c["q"] = text
    return c


def _apply(qs: QuerySet[Listing], conditions: dict[str, Any], *, leave_out: str | None = None) -> QuerySet[Listing]:
    for key, cond in conditions.items():
        if key != leave_out:
            qs = qs.filter(cond)
    return qs


def listing_search(*, filters: ListingFilters) -> QuerySet[Listing]:
    """Public listings matching the filters, in the requested order."""
    conditions = _conditions(filters)
    # The result page does not show these (the detail does): not read for every page.
    qs = _apply(listings_public(), conditions).defer("search_vector", "search_text", "description", "terms", "previews", "facet_keys")
    _, query = _text_condition(filters.q)
    ordering = filters.ordering
    if ordering == "relevance":
        if query is not None:
            from django.contrib.postgres.search import SearchRank

            qs = qs.annotate(rank=SearchRank(F("search_vector"), query))
            return qs.order_by("-rank", F("published_at").desc(nulls_last=True), "pk")
        ordering = "-published_at"  # no query: relevance is recency
    order = {
        "-published_at": [F("published_at").desc(nulls_last=True), "pk"],
        # Quality: verified figures first (a self-declared 0.95 does not outrank a verified 0.94).
        "-mask_iou": ["-mask_iou_status", F("mask_iou").desc(nulls_last=True), F("published_at").desc(nulls_last=True), "pk"],
        "price": ["price", F("published_at").desc(nulls_last=True), "pk"],
        "quality_adjusted_cost": [F("quality_adjusted_cost").asc(nulls_last=True), "price", "pk"],
        # Broad coverage first (marketplace.listings.diversity); among equals, the cheaper per usable frame.
        "diversity": [F("diversity").desc(nulls_last=True), F("quality_adjusted_cost").asc(nulls_last=True), "pk"],
    }[ordering]
    return qs.order_by(*order)


class ListingPaginator(Paginator):
    """Finds the page's ids first, then fetches only those rows (a "late row lookup").

    The id query filters and sorts over the narrow covering index (listing_public_facts)
    without reading the ~3 kB listing rows of every match; the outer query then reads the
    page's 20 rows by primary key. Same rows, same order, still one query.
    """

    def __init__(self, *args: Any, known_count: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if known_count is not None:  # counted by the facets query already: no COUNT(*) query
            self.__dict__["count"] = known_count

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        qs = self.object_list
        return self._get_page(qs.filter(pk__in=qs.values("pk")[bottom:top]), number, self)


def listing_facets(*, filters: ListingFilters) -> dict[str, list[dict[str, Any]]]:
    """Facet counts (disjunctive: each facet ignores its own filter)."""
    if connection.vendor == "postgresql":
        return _facets_one_query(filters)[0]
    return _facets_per_facet(filters)


def _facets_one_query(filters: ListingFilters) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Every facet in one pass over the covering index (PostgreSQL).

    The rows matching every filter *but* the faceted ones (embodiment, task, tier,
    annotation kind, sensor)
    are read once, each with one boolean per faceted filter; a facet then counts the rows
    that pass every faceted filter except its own (conditional aggregation). The
    multi-valued facets group by the row's value strings (facet_embodiments, ...: few
    distinct combinations) and each group's count is added to each of its values here,
    instead of joining ListingTerm or unnesting every row's values in SQL.
    Same counts as one query per facet (_facets_per_facet), which SQLite still uses.
    Also returns the number of listings matching every filter (the result count), which
    the same pass gives for free.
    """
    conditions = _conditions(filters)
    own = [f for f in ("embodiment", "task", "tier", "annotation_kind", "sensor") if f in conditions]
    base = _apply(listings_public(), {k: v for k, v in conditions.items() if k not in own})
    flags = {f"f_{f}": ExpressionWrapper(conditions[f], output_field=BooleanField()) for f in own}
    columns = ("tier", "annotation_kind", "facet_embodiments", "facet_tasks", "facet_licenses", "facet_sensors")
    base = base.annotate(**flags).values(*columns, *flags).order_by()
    sql, params = base.query.sql_with_params()

    def passes(leave_out: str | None) -> str:
        wanted = [f"f_{f}" for f in own if f != leave_out]
        return " AND ".join(f"b.{w}" for w in wanted) or "TRUE"

    # One scan, five groupings; GROUPING() tells which grouping a row belongs to.
    query = f"""
        SELECT GROUPING(b.tier, b.annotation_kind, b.facet_embodiments, b.facet_tasks, b.facet_licenses, b.facet_sensors),
               b.tier, b.annotation_kind, b.facet_embodiments, b.facet_tasks, b.facet_licenses, b.facet_sensors,
               count(*) FILTER (WHERE {passes("tier")}), count(*) FILTER (WHERE {passes("annotation_kind")}),
               count(*) FILTER (WHERE {passes("embodiment")}), count(*) FILTER (WHERE {passes("task")}),
               count(*) FILTER (WHERE {passes("sensor")}), count(*) FILTER (WHERE {passes(None)})
        FROM ({sql}) AS b
        GROUP BY GROUPING SETS ((b.tier, b.annotation_kind), (b.facet_embodiments), (b.facet_tasks), (b.facet_licenses), (b.facet_sensors))
    """
    totals: dict[str, dict[str, int]] = {facet: {} for facet in FACETS}

    def add(facet: str, values: str, count: int) -> None:
        for value in values.split():
            totals[facet][value] = totals[facet].get(value, 0) + count

    matching = 0
    with connection.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
        for grouping, tier, kind, embodiments, tasks, licenses, sensors, c_tier, c_kind, c_emb, c_task, c_sensor, c_all in rows:
            if grouping == 0b001111:  # (tier, annotation_kind)
                matching += c_all
                if tier:
                    totals["tier"][tier] = totals["tier"].get(tier, 0) + c_tier
                if kind:
                    totals["annotation_kind"][kind] = totals["annotation_kind"].get(kind, 0) + c_kind
            elif grouping == 0b110111:
                add("embodiment", embodiments, c_emb)
            elif grouping == 0b111011:
                add("task", tasks, c_task)
            elif grouping == 0b111101:
                add("license", licenses, c_all)
            elif grouping == 0b111110:
                add("sensor", sensors, c_sensor)
    facets = {
        facet: [
            {"value": v, "count": c} for v, c in sorted(((v, c) for v, c in values.items() if c), key=lambda r: (-r[1], r[0]))[:FACET_LIMIT]
        ]
        for facet, values in totals.items()
    }
    return facets, matching


def _facets_per_facet(filters: ListingFilters) -> dict[str, list[dict[str, Any]]]:
    """One query per facet (the portable path)."""
    conditions = _conditions(filters)
    base = listings_public()
    facets: dict[str, list[dict[str, Any]]] = {}
    for facet in FACETS:
        qs = _apply(base, conditions, leave_out=facet)
        if facet in ("embodiment", "task", "license", "sensor"):
            rows = (
                ListingTerm.objects.filter(kind=facet, listing__in=qs.values("pk"))
                .values("value")
                .annotate(count=Count("listing_id"))
                .order_by("-count", "value")[:FACET_LIMIT]
            )
            facets[facet] = [{"value": r["value"], "count": r["count"]} for r in rows]
        else:
            rows = qs.exclude(**{facet: ""}).values(facet).annotate(count=Count("pk")).order_by("-count", facet)[:FACET_LIMIT]
            facets[facet] = [{"value": r[facet], "count": r["count"]} for r in rows]
    return facets


def listing_search_results(*, filters: ListingFilters) -> tuple[Any, dict[str, list[dict[str, Any]]], Any]:
    """What the search view paginates, the facets, and the paginator class to page it with.

    On PostgreSQL the in-process catalogue index answers (marketplace.listings.catalogue_index:
    filters, facets, count and order in memory, kept current by the catalogue revision; the
    page's rows read by primary key). Elsewhere, or with LISTINGS_SEARCH_INDEX off, the SQL
    path below (the reference the index is tested against).
    """
    if catalogue_index.index_enabled():
        result = catalogue_index.catalogue_search(filters=filters)
        return result, result.facets, Paginator
    facets, count = listing_facets_and_count(filters=filters)
    return listing_search(filters=filters), facets, functools.partial(ListingPaginator, known_count=count)


GENERATION_KEY = "listings:generation"


def catalogue_generation_bump() -> None:
    """Called (on commit) whenever a listing changes: cached facets of older generations are never read again."""
    if not cache.add(GENERATION_KEY, 1, timeout=None):
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # evicted between add and incr
            cache.add(GENERATION_KEY, 1, timeout=None)


def listing_facets_and_count(*, filters: ListingFilters) -> tuple[dict[str, list[dict[str, Any]]], int | None]:
    """Facets (cached as listing_facets_cached does) and, when they were computed now on
    PostgreSQL, the number of matching listings (None otherwise: the caller counts).

    The count itself is never cached: results and count always agree with the live catalogue.
    """
    ttl = int(getattr(settings, "LISTINGS_FACET_CACHE_SECONDS", 60))
    key = None
    if ttl > 0:
        key = _facets_cache_key(filters)
        facets = cache.get(key)
        if facets is not None:
            return facets, None
    if connection.vendor == "postgresql":
        facets, count = _facets_one_query(filters)
    else:
        facets, count = _facets_per_facet(filters), None
    if key is not None:
        cache.set(key, facets, ttl)
    return facets, count


def _facets_cache_key(filters: ListingFilters) -> str:
    generation = cache.get(GENERATION_KEY) or 0
    digest = hashlib.sha256(repr(sorted((k, v) for k, v in asdict(filters).items() if k != "catalogue_state")).encode()).hexdigest()
    return f"listings:facets:{generation}:{digest}"


def listing_facets_cached(*, filters: ListingFilters) -> dict[str, list[dict[str, Any]]]:
    """Facets, cached per (catalogue generation, filters) for LISTINGS_FACET_CACHE_SECONDS (default 60; 0 = off).

    Exact for the current catalogue: listing_sync bumps the generation, so a cached entry
    never outlives a change to any listing.
    """
    ttl = int(getattr(settings, "LISTINGS_FACET_CACHE_SECONDS", 60))
    if ttl <= 0:
        return listing_facets(filters=filters)
    key = _facets_cache_key(filters)
    facets = cache.get(key)
    if facets is None:
        facets = listing_facets(filters=filters)
        cache.set(key, facets, ttl)
    return facets
