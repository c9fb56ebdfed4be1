"""The in-process catalogue index answers exactly as the SQL path: every filter, facet and
ordering, on a varied catalogue (nulls, ties, every figure status, hidden listings,
suspended versions), for fixed and for generated filter combinations."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.listings import catalogue_index, search
from marketplace.listings.search import ListingFilters
from tests import factories
from tests.listings import varied_catalogue as vc

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def varied(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        sellers = [factories.make_seller(username=f"varied-seller-{i}").org for i in range(3)]
        listings = vc.build_varied_catalogue(sellers=sellers)
        yield {"sellers": [s.slug for s in sellers], "listings": listings}
        transaction.set_rollback(True)


def both_paths(filters: ListingFilters) -> tuple[dict, dict]:
    """(SQL path, index path): ordered primary keys, count and facets."""
    sql_facets, sql_count = search._facets_one_query(filters)
    sql_pks = list(search.listing_search(filters=filters).values_list("pk", flat=True))
    result = catalogue_index.catalogue_search(filters=filters)
    index = {"pks": result.pks.tolist(), "count": len(result), "facets": result.facets}
    return {"pks": sql_pks, "count": sql_count, "facets": sql_facets}, index


def assert_same(filters: ListingFilters) -> dict:
    sql, index = both_paths(filters)
    assert index["count"] == sql["count"] == len(sql["pks"]), filters
    assert index["pks"] == sql["pks"], filters
    assert index["facets"] == sql["facets"], filters
    return sql


FIXED = [
    ListingFilters(),
    ListingFilters(minimums={"mask_iou": 0.8123}),  # equal to a stored figure: kept, as SQL's >=
    ListingFilters(minimums={"agreement": 0.5, "ap": 0.7}),
    ListingFilters(minimums={"temporal_iou": 0.0}),
    ListingFilters(flags={"verified_only": True}),
    ListingFilters(flags={"has_tracks": False, "commercial_use": True}),
    ListingFilters(flags={"derivatives": False, "no_share_alike": True}),
    ListingFilters(multi={"embodiment": ["arm", "humanoid"]}),
    ListingFilters(multi={"embodiment": ["arm"], "task": ["folding", "grasping"], "sensor": ["rgb"]}),
    ListingFilters(multi={"scene": ["kitchen"], "category": ["mug", "bolt"]}),
    ListingFilters(multi={"category": ["nothing-has-this"]}),
    ListingFilters(multi={"category": ["coffee mug"]}),  # a name with a space
    ListingFilters(multi={"tier": ["fine", "premium"], "annotation_kind": ["video"]}),
    ListingFilters(multi={"tier": ["rough"], "annotation_kind": ["instances", "panoptic"], "embodiment": ["drone"], "task": ["pouring"]}),
    ListingFilters(price_min=Decimal("0.5"), price_max=Decimal("100")),
    ListingFilters(price_min=Decimal("0.501"), price_max=Decimal("999.989")),
    ListingFilters(price_max=Decimal("0")),
    ListingFilters(price_min=Decimal("1e30")),
    ListingFilters(frames_min=10, frames_max=1000),
    ListingFilters(frames_max=0),
    ListingFilters(scene={"min_instances_per_frame": 3.0, "min_occlusion": 0.2}),
    ListingFilters(scene={"min_embodiments": 2, "min_tasks": 1}),
    ListingFilters(scene={"min_instances_per_frame": 0.0}),
    ListingFilters(q="towel"),
    ListingFilters(q="kitchen clutter", ordering="relevance"),
    ListingFilters(q="robot -bin", ordering="price", multi={"tier": ["fine", ""]}),
    ListingFilters(q="zzzz"),
    *(ListingFilters(ordering=o) for o in search.ORDERINGS),
    *(ListingFilters(ordering=o, minimums={"mask_iou": 0.5}, multi={"embodiment": ["arm"]}) for o in search.ORDERINGS),
]


@pytest.fixture(params=["per row", "bitmaps"])
def counting(request, monkeypatch):
    """The compiled pass's counting: per row (and the joint code) as in a small catalogue, or
    with every facet offered its values' bitmaps as from BITMAPS_FROM_SLOTS listings on."""
    if request.param == "bitmaps":
        monkeypatch.setattr(catalogue_index, "BITMAPS_FROM_SLOTS", 0)
    return request.param


@pytest.mark.parametrize("filters", FIXED, ids=[repr(f)[:120] for f in FIXED])
def test_index_answers_as_the_sql_path(varied, filters, counting):
    assert_same(filters)


def test_the_fixed_cases_are_not_trivial(varied):
    # The comparisons above compare something: answers of different sizes, facets with counts.
    sizes = {assert_same(f)["count"] for f in FIXED}
    assert 0 in sizes and len(sizes) > 10
    body = assert_same(ListingFilters())
    assert body["count"] > 150 and all(body["facets"][f] for f in search.FACETS)


def test_seller_filter(varied, counting):
    for sellers in ([varied["sellers"][0]], varied["sellers"][1:], ["no-such-seller"]):
        assert_same(ListingFilters(multi={"seller": sellers}, ordering="price"))


def _filters(draw_rng: random.Random, seller_slugs: list[str]) -> ListingFilters:
    rng = draw_rng
    f = ListingFilters(ordering=rng.choice(search.ORDERINGS))
    for figure in rng.sample(search.MIN_FIGURES, rng.randint(0, 2)):
        f.minimums[figure] = rng.choice([0.0, 0.5, 0.7, 0.8123, 0.9, 0.93])
    for key in rng.sample(search.BOOLS, rng.randint(0, 2)):
        f.flags[key] = rng.random() < 0.5
    pools = {
        "embodiment": vc.EMBODIMENTS,
        "task": vc.TASKS,
        "scene": vc.SCENES,
        "category": vc.CATEGORIES,
        "sensor": vc.SENSORS,
        "tier": vc.TIERS[1:],
        "annotation_kind": vc.KINDS,
        "seller": seller_slugs,
    }
    for key in rng.sample(list(pools), rng.randint(0, 4)):
        f.multi[key] = rng.sample(pools[key], rng.randint(1, 2))
    if rng.random() < 0.3:
        f.price_min = rng.choice(vc.PRICES)
    if rng.random() < 0.3:
        f.price_max = rng.choice(vc.PRICES) + rng.choice([Decimal("0"), Decimal("0.001")])
    if rng.random() < 0.2:
        f.frames_min = rng.choice(vc.FRAMES)
    if rng.random() < 0.2:
        f.frames_max = rng.choice(vc.FRAMES)
    for key in rng.sample(list(search.SCENE_MINIMUMS), rng.randint(0, 1)):
        f.scene[key] = {"min_instances_per_frame": 3.0, "min_occlusion": 0.2, "min_embodiments": 1, "min_tasks": 2}[key]
    if rng.random() < 0.2:
        f.q = rng.choice(vc.WORDS)
    return f


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_generated_filter_combinations(varied, seed, counting):
    assert_same(_filters(random.Random(seed), varied["sellers"]))


def test_pages_are_the_sql_paths_pages(varied, api_client, settings, counting):
    params = {"ordering": "quality_adjusted_cost", "page_size": 7, "page": 3, "commercial_use": "true"}
    settings.LISTINGS_SEARCH_INDEX = False
    sql = api_client.get("/api/v1/listings/", params).json()
    settings.LISTINGS_SEARCH_INDEX = True
    index = api_client.get("/api/v1/listings/", params).json()
    assert [r["slug"] for r in index["results"]] == [r["slug"] for r in sql["results"]] and len(sql["results"]) == 7
    assert index == sql


def test_pages_of_a_sparse_answer_are_the_sql_paths_pages(varied):
    # A few matches among many listings: a near page is found by walking the ordering, a far
    # one by putting every match in order first. Both give the SQL path's pages.
    ways = set()
    for filters in [*FIXED, *(ListingFilters(ordering=o, multi={"tier": ["rough"], "embodiment": ["drone"]}) for o in search.ORDERINGS)]:
        sql_pks = list(search.listing_search(filters=filters).values_list("pk", flat=True))
        for start, stop in ((0, 1), (1, 2), (0, 3), (2, 5), (0, len(sql_pks)), (len(sql_pks) - 1, len(sql_pks) + 3)):
            result = catalogue_index.catalogue_search(filters=filters)
            if result.in_order is None or not 0 <= start < stop:
                continue
            walks = result._walk_pays(min(stop, result.count))
            assert [ref.pk for ref in result[start:stop]] == sql_pks[start:stop], (filters, start, stop)
            assert (result.slots is None) == walks  # the walk keeps no ordered matches
            ways.add(walks)
    assert ways == {True, False}


def test_changes_inside_a_transaction_are_answered_without_touching_the_shared_index(varied, moderator):
    from datasets.services import version_transition
    from datasets.states import VersionState

    listing = next(lst for lst in varied["listings"] if lst.is_public and lst.version.state == VersionState.PUBLISHED)
    before = assert_same(ListingFilters())
    assert listing.pk in before["pks"]
    version_transition(version=listing.version, to_state=VersionState.SUSPENDED, actor=moderator.user)
    after = assert_same(ListingFilters())
    assert listing.pk not in after["pks"] and after["count"] == before["count"] - 1


def test_a_kept_any_of_table_follows_sets_added_after_it():
    combos = catalogue_index._Combos()
    mug_bottle = combos.of(frozenset({"mug", "bottle"}))
    tote = combos.of(frozenset({"tote"}))
    first = combos.any_of(["mug"])
    assert first.tolist()[:2] == [True, False]
    assert combos.any_of(("mug",)) is first  # asked again: the kept table
    with pytest.raises(ValueError):
        first[tote] = True  # kept tables are read-only
    mug_tote = combos.of(frozenset({"mug", "tote"}))
    later = combos.any_of(["mug"])
    assert later is not first
    assert [bool(later[c]) for c in (mug_bottle, tote, mug_tote)] == [True, False, True]
    # a value unknown when asked, known once a set holds it
    assert not combos.any_of(["crate"]).any()
    crate = combos.of(frozenset({"crate"}))
    assert combos.any_of(["crate"])[crate]


@pytest.mark.parametrize("large", [True, False])
def test_a_large_shared_index_is_moved_out_of_the_collectors_reach(varied, monkeypatch, large):
    """A shared index of FREEZE_FROM_LISTINGS listings or more is frozen once built (a full
    collection no longer walks it); a rebuild collects what it replaced even when cyclic."""
    import gc
    import weakref

    class Probe:
        pass

    monkeypatch.setattr(catalogue_index, "FREEZE_FROM_LISTINGS", 1 if large else 10**9)
    revision, token, _reset = catalogue_index.catalogue_and_vocabulary_state()[0]
    index = catalogue_index.CatalogueIndex()
    try:
        catalogue_index._build_shared(index, revision, token)
        first = index.codes
        assert len(index.pk) > 0
        collected = {id(o) for o in gc.get_objects()}
        assert (id(first) in collected) is not large
        probe = Probe()
        probe.cycle = probe
        first["probe"] = probe  # held by the index alone, in a cycle
        gone = weakref.ref(probe)
        del probe, first
        catalogue_index._build_shared(index, revision, token)
        collected = {id(o) for o in gc.get_objects()}
        assert (id(index.codes) in collected) is not large
        if large:
            assert gone() is None
    finally:
        gc.unfreeze()
