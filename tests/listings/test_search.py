"""Search: every filter, every ordering, facets, validation and pinned query counts on a seeded catalogue."""

import math

import pytest

from marketplace.listings import search
from tests.listings.catalogue import VISIBLE

pytestmark = pytest.mark.django_db

URL = "/api/v1/listings/"


def slugs(resp) -> list[str]:
    assert resp.status_code == 200, resp.content
    return [r["slug"] for r in resp.json()["results"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", set(VISIBLE)),
        ("min_mask_iou=0.9", {"kitchen-grasp", "lab-benchtop"}),  # home-folding's 0.95 is self-declared
        ("min_ap=0.65", {"lab-benchtop"}),
        ("min_ap50=0.75", {"kitchen-grasp"}),
        ("min_ap75=0.6", {"kitchen-grasp"}),
        ("min_agreement=0.8", {"home-folding"}),
        ("min_temporal_iou=0.5", {"warehouse-pick"}),
        ("tier=fine&tier=premium", {"kitchen-grasp", "lab-benchtop"}),
        ("tier=standard", {"warehouse-pick"}),
        ("verified_only=true", {"kitchen-grasp", "warehouse-pick", "lab-benchtop"}),
        ("embodiment=humanoid", {"home-folding"}),
        ("embodiment=humanoid&embodiment=mobile-manipulator", {"home-folding", "warehouse-pick"}),
        ("task=picking", {"warehouse-pick", "lab-benchtop"}),
        ("scene=kitchen", {"kitchen-grasp"}),
        ("scene=kitchen&scene=lab", {"kitchen-grasp", "lab-benchtop"}),
        ("category=mug", {"kitchen-grasp", "home-folding"}),
        ("category=box&category=pipette", {"warehouse-pick", "lab-benchtop"}),
        ("annotation_kind=video", {"warehouse-pick"}),
        ("annotation_kind=video&annotation_kind=panoptic", {"warehouse-pick", "lab-benchtop"}),
        ("annotation_kind=instances", {"kitchen-grasp", "home-folding"}),
        ("sensor=rgb", {"kitchen-grasp", "warehouse-pick", "home-folding"}),
        ("sensor=thermal&sensor=depth", {"warehouse-pick", "lab-benchtop"}),
        ("sensor=rgbd", {"kitchen-grasp"}),
        ("sensor=point_cloud", set()),
        # embodiments the annotations declare per video count as the listing's (UR5e by any of its names)
        ("embodiment=ur5e", {"warehouse-pick"}),
        ("embodiment=UR5e", {"warehouse-pick"}),
        ("embodiment=ur5-e", {"warehouse-pick"}),
        ("embodiment=Universal%20Robots%20UR5e", {"warehouse-pick"}),
        ("embodiment=ur5", set()),  # the UR5 is another robot
        ("min_instances_per_frame=3", {"kitchen-grasp", "warehouse-pick"}),
        ("min_instances_per_frame=8", {"warehouse-pick"}),
        ("min_instances_per_frame=8.5", set()),
        ("min_instances_per_frame=0", {"kitchen-grasp", "warehouse-pick", "home-folding"}),  # not measured: no figure
        ("min_occlusion=0.2", {"kitchen-grasp", "warehouse-pick"}),
        ("min_occlusion=0.61", set()),
        ("min_embodiments=2", {"warehouse-pick", "home-folding"}),  # per video / per dataset
        ("min_embodiments=3", set()),
        ("min_tasks=2", {"home-folding"}),
        ("min_tasks=1", {"kitchen-grasp", "warehouse-pick", "home-folding", "lab-benchtop"}),
        ("sensor=rgb&min_occlusion=0.5&annotation_kind=video", {"warehouse-pick"}),
        ("has_tracks=true", {"warehouse-pick"}),
        ("has_tracks=false", {"kitchen-grasp", "home-folding", "lab-benchtop"}),
        ("commercial_use=true", {"kitchen-grasp", "home-folding", "lab-benchtop"}),
        ("commercial_use=false", {"warehouse-pick"}),
        ("derivatives=false", {"warehouse-pick"}),
        ("derivatives=true", {"kitchen-grasp", "home-folding", "lab-benchtop"}),
        ("no_share_alike=true", {"kitchen-grasp", "warehouse-pick", "lab-benchtop"}),
        ("price_min=500&price_max=1000", {"kitchen-grasp", "warehouse-pick"}),
        ("price_max=0", {"home-folding"}),
        ("frames_min=1000&frames_max=5000", {"kitchen-grasp", "warehouse-pick"}),
        ("frames_min=6000", {"lab-benchtop"}),
        ("q=warehouse", {"warehouse-pick"}),
        ("q=towel", {"home-folding"}),  # category names are searchable
        ("q=zebra", set()),  # hidden listings never match
        ("task=grasping&embodiment=arm&commercial_use=true&price_max=1000", {"kitchen-grasp", "home-folding"}),
    ],
)
def test_filter(api_client, catalogue, query, expected):
    assert set(slugs(api_client.get(f"{URL}?{query}"))) == expected


def test_seller_filter(api_client, catalogue):
    assert set(slugs(api_client.get(URL, {"seller": catalogue.seller_b.org.slug}))) == {"warehouse-pick", "lab-benchtop"}


@pytest.mark.parametrize(
    "ordering, expected",
    [
        ("-published_at", ["lab-benchtop", "home-folding", "warehouse-pick", "kitchen-grasp"]),
        ("relevance", ["lab-benchtop", "home-folding", "warehouse-pick", "kitchen-grasp"]),  # no q: newest first
        ("-mask_iou", ["lab-benchtop", "kitchen-grasp", "warehouse-pick", "home-folding"]),  # verified first
        ("price", ["home-folding", "warehouse-pick", "kitchen-grasp", "lab-benchtop"]),
        ("quality_adjusted_cost", ["home-folding", "warehouse-pick", "lab-benchtop", "kitchen-grasp"]),
    ],
)
def test_ordering(api_client, catalogue, ordering, expected):
    assert slugs(api_client.get(URL, {"ordering": ordering})) == expected


def test_relevance_ranks_title_matches_first(api_client, catalogue):
    # "grasping" is in kitchen-grasp's title (weight A) and only in home-folding's tasks (weight C).
    assert slugs(api_client.get(URL, {"q": "grasping", "ordering": "relevance"})) == ["kitchen-grasp", "home-folding"]


def test_quality_adjusted_cost_can_be_recomputed_from_its_inputs(api_client, catalogue):
    results = {r["slug"]: r for r in api_client.get(URL).json()["results"]}
    for slug in ("kitchen-grasp", "warehouse-pick", "lab-benchtop"):
        r = results[slug]
        inputs = r["quality_adjusted_cost_inputs"]
        p = inputs["params"]
        weight = max(
            p["floor"],
            inputs["verified_mask_iou"] ** p["iou_exponent"]
            * (p["provenance_base"] + (1 - p["provenance_base"]) * inputs["provenance_completeness"]),
        )
        assert r["quality_adjusted_cost"] == pytest.approx(float(r["price"]) / r["frames"] / weight)
    assert results["kitchen-grasp"]["quality_adjusted_cost"] == pytest.approx(1.0 / (0.91**2 * 0.5))
    assert results["home-folding"]["quality_adjusted_cost"] == 0  # free
    assert results["home-folding"]["quality_adjusted_cost_inputs"]["verified_mask_iou"] is None  # self-declared does not count


def test_figures_carry_their_status(api_client, catalogue):
    results = {r["slug"]: r for r in api_client.get(URL).json()["results"]}
    assert results["home-folding"]["quality"]["mask_iou"]["status"] == "self-declared"
    assert results["home-folding"]["tier"] == ""
    assert results["kitchen-grasp"]["quality"]["mask_iou"]["status"] == "verified"
    assert results["kitchen-grasp"]["tier"] == "fine"


def facet(body, name) -> dict:
    return {f["value"]: f["count"] for f in body["facets"][name]}


def test_facets_without_filters(api_client, catalogue):
    body = api_client.get(URL).json()
    assert body["count"] == 4
    assert facet(body, "embodiment") == {"arm": 3, "humanoid": 1, "mobile-manipulator": 1, "ur5e": 1}
    assert facet(body, "task") == {"grasping": 2, "picking": 2, "folding": 1}
    assert facet(body, "license") == {"CC-BY-4.0": 1, "CC-BY-NC-ND-4.0": 1, "CC-BY-SA-4.0": 1, "CC0-1.0": 1}
    assert facet(body, "tier") == {"fine": 1, "standard": 1, "premium": 1}
    assert facet(body, "annotation_kind") == {"instances": 2, "video": 1, "panoptic": 1}
    assert facet(body, "sensor") == {"rgb": 3, "rgbd": 1, "depth": 1, "thermal": 1}


def test_facets_are_disjunctive_under_filters(api_client, catalogue):
    body = api_client.get(URL, {"annotation_kind": "video"}).json()
    assert body["count"] == 1
    # Its own facet ignores the annotation_kind filter, so the alternatives stay visible ...
    assert facet(body, "annotation_kind") == {"instances": 2, "video": 1, "panoptic": 1}
    # ... every other facet is computed under it.
    assert facet(body, "task") == {"picking": 1}
    assert facet(body, "embodiment") == {"mobile-manipulator": 1, "ur5e": 1}
    assert facet(body, "sensor") == {"rgb": 1, "depth": 1}
    assert facet(body, "license") == {"CC-BY-NC-ND-4.0": 1}
    body = api_client.get(URL, {"embodiment": "humanoid", "commercial_use": "true"}).json()
    assert facet(body, "embodiment") == {"arm": 3, "humanoid": 1}  # commercial_use applies, embodiment does not
    assert facet(body, "task") == {"grasping": 1, "folding": 1}
    assert facet(body, "tier") == {}
    body = api_client.get(URL, {"embodiment": "humanoid", "commercial_use": "false"}).json()
    assert facet(body, "embodiment") == {"mobile-manipulator": 1, "ur5e": 1}
    body = api_client.get(URL, {"sensor": "rgbd", "min_occlusion": "0.1"}).json()
    assert [r["slug"] for r in body["results"]] == ["kitchen-grasp"]
    assert facet(body, "sensor") == {"rgb": 2, "rgbd": 1, "depth": 1}  # min_occlusion applies, sensor does not
    assert facet(body, "annotation_kind") == {"instances": 1}


@pytest.mark.parametrize(
    "query, location",
    [
        ("min_mask_iou=1.5", "min_mask_iou"),
        ("min_ap=abc", "min_ap"),
        ("tier=gold", "tier"),
        ("embodiment=octopus", "embodiment"),
        ("task=juggling", "task"),
        ("scene=moon", "scene"),
        ("modality=video", "modality"),  # renamed: the error says to what
        ("annotation_kind=images", "annotation_kind"),
        ("sensor=sonar", "sensor"),
        ("min_instances_per_frame=abc", "min_instances_per_frame"),
        ("min_instances_per_frame=-1", "min_instances_per_frame"),
        ("min_instances_per_frame=nan", "min_instances_per_frame"),
        ("min_occlusion=1.5", "min_occlusion"),
        ("min_embodiments=1.5", "min_embodiments"),
        ("min_tasks=-2", "min_tasks"),
        ("ordering=-diversity", "ordering"),
        ("has_tracks=maybe", "has_tracks"),
        ("price_min=10&price_max=5", "price_min"),
        ("price_min=-1", "price_min"),
        ("frames_min=100&frames_max=10", "frames_min"),
        ("frames_max=1.5", "frames_max"),
        ("ordering=-price", "ordering"),
        ("colour=red", "colour"),
    ],
)
def test_invalid_filters_answer_400_with_the_field(api_client, catalogue, query, location):
    resp = api_client.get(f"{URL}?{query}")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "invalid_filter"
    assert location in [d["location"] for d in body["details"]]


def test_pagination(api_client, catalogue):
    body = api_client.get(URL, {"page_size": 3, "ordering": "price"}).json()
    assert body["count"] == 4 and len(body["results"]) == 3 and body["next"] and body["previous"] is None
    body2 = api_client.get(body["next"]).json()
    assert [r["slug"] for r in body2["results"]] == ["lab-benchtop"]


def test_search_query_count_is_pinned(api_client, catalogue, django_assert_num_queries):
    from datasets import vocabulary
    from marketplace.listings import catalogue_index

    # The first search at a catalogue state builds the in-process index (not per request).
    assert api_client.get(URL).status_code == 200
    catalogue_index._cards.clear()
    # The catalogue revision + the page's rows; facets and count come from the index.
    params = {"ordering": "quality_adjusted_cost", "min_mask_iou": "0.5", "commercial_use": "true"}
    with django_assert_num_queries(2):
        assert api_client.get(URL, params).status_code == 200
    # The same listings again: their cards are kept until their rows change, the revision alone.
    with django_assert_num_queries(1):
        assert api_client.get(URL, params).status_code == 200
    # A vocabulary filter reads the vocabulary revision in the catalogue revision's statement;
    # the terms themselves once per vocabulary state and process. A query string's first search
    # reads its full-text matches (with the revision again); later ones at the same state don't.
    text_params = {"embodiment": ["arm", "humanoid"], "task": "grasping", "q": "set"}
    catalogue_index._cards.clear()
    vocabulary._kept.clear()
    with django_assert_num_queries(4):
        assert api_client.get(URL, text_params).status_code == 200
    catalogue_index._cards.clear()
    with django_assert_num_queries(2):
        assert api_client.get(URL, text_params).status_code == 200


def test_detail_query_count_is_pinned(api_client, catalogue, django_assert_num_queries):
    with django_assert_num_queries(1):
        resp = api_client.get(f"{URL}kitchen-grasp/")
    assert resp.status_code == 200
    body = resp.json()
    assert body["slug"] == "kitchen-grasp" and body["version"] == 1
    assert body["terms"]["commercial_use"] is True
    assert [c["name"] for c in body["categories"]] == ["mug", "bowl"]


def test_facets_are_cached_per_catalogue_generation(api_client, catalogue, moderator, django_assert_num_queries):
    from datasets.services import version_transition
    from datasets.states import VersionState
    from marketplace.listings.services import listing_sync

    assert api_client.get(URL).status_code == 200
    with django_assert_num_queries(1):  # the revision; facets, count and kept cards from the in-process index
        body = api_client.get(URL).json()
    assert facet(body, "annotation_kind")["panoptic"] == 1
    listing = catalogue.listings["lab-benchtop"]
    version_transition(version=listing.version, to_state=VersionState.SUSPENDED, actor=moderator.user)
    listing_sync(dataset=listing.dataset)  # bumps the generation: no stale facets
    body = api_client.get(URL).json()
    assert "panoptic" not in facet(body, "annotation_kind") and body["count"] == 3


def test_unknown_vocabulary_values_suggest_the_closest_known(api_client, catalogue):
    resp = api_client.get(URL, {"embodiment": ["franka-pand", "kinova"], "task": "pick-n-place"})
    assert resp.status_code == 400
    details = {d["message"].split("'")[1]: d for d in resp.json()["details"]}
    assert details["franka-pand"]["location"] == "embodiment" and "'franka-panda'" in details["franka-pand"]["message"]
    assert "'kinova-gen3'" in details["kinova"]["message"] and "'kinova-jaco'" in details["kinova"]["message"]
    assert details["pick-n-place"]["location"] == "task" and "'pick-and-place'" in details["pick-n-place"]["message"]
    assert all(d["code"] == "unknown_value" for d in details.values())


def test_renamed_modality_says_what_it_became(api_client, catalogue):
    body = api_client.get(URL, {"modality": "images"}).json()
    assert body["details"] == [{"location": "modality", "code": "renamed", "message": search.RENAMED["modality"]}]
    assert "annotation_kind" in body["details"][0]["message"] and "sensor" in body["details"][0]["message"]


def test_diversity_ordering_returns_its_inputs(api_client, catalogue):
    results = api_client.get(URL, {"ordering": "diversity"}).json()["results"]
    # home-folding: 2 embodiments and 2 tasks declared; warehouse-pick: 2 embodiments, but
    # 80% of its frames on one (effective 1.65); kitchen-grasp and lab-benchtop score alike,
    # the cheaper per usable frame first.
    assert [r["slug"] for r in results] == ["home-folding", "warehouse-pick", "lab-benchtop", "kitchen-grasp"]
    for r in results:
        i = r["diversity_inputs"]
        p = i["params"]
        recomputed = (
            p["embodiment_weight"] * math.log2(1 + i["effective_embodiments"])
            + p["task_weight"] * math.log2(1 + i["tasks"])
            + p["scene_weight"] * math.log2(1 + i["scene_types"])
        )
        assert r["diversity"] == pytest.approx(recomputed, abs=1e-5)
    warehouse = results[1]["diversity_inputs"]
    assert warehouse["source"] == "annotations" and warehouse["frames_per_embodiment"] == {"mobile-manipulator": 4000, "ur5e": 1000}
    assert warehouse["effective_embodiments"] == pytest.approx(math.exp(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2))), abs=1e-6)
    assert results[0]["diversity_inputs"]["source"] == "dataset" and results[0]["embodiment_count"] == 2


def test_scene_figures_in_results(api_client, catalogue):
    by_slug = {r["slug"]: r for r in api_client.get(URL).json()["results"]}
    w = by_slug["warehouse-pick"]
    assert w["instances_per_frame"] == 8.0 and w["occlusion"] == 0.6 and w["sensors"] == ["rgb", "depth"]
    assert w["scene"]["instances_per_frame"]["p90"] == 12 and w["scene"]["splits"]["train"]["occlusion"] == 0.6
    assert w["annotation_kind"] == "video" and "modality" not in w
    assert [e["slug"] for e in w["embodiments"]] == ["mobile-manipulator", "ur5e"]
    assert w["coverage"] == {
        "source": "annotations",
        "embodiments": {"mobile-manipulator": {"frames": 4000, "episodes": 40}, "ur5e": {"frames": 1000, "episodes": 10}},
        "tasks": {"picking": {"frames": 5000, "episodes": 50}},
        "sensor_frames": None,
    }
    assert by_slug["home-folding"]["coverage"]["embodiments"] == {"arm": {"frames": None, "episodes": None}, "humanoid": {"frames": None, "episodes": None}}
    assert by_slug["home-folding"]["coverage"]["source"] == "dataset"
    assert by_slug["lab-benchtop"]["instances_per_frame"] is None and by_slug["lab-benchtop"]["scene"] is None
