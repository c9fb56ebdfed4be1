"""Vocabularies from a real robot catalogue, their aliases and suggestions; sensors declared
apart from the annotation kind; the old ``modality`` refused with what it became."""

import pytest

from datasets.models import Dataset, VocabularyKind, VocabularyTerm
from datasets.vocabulary import term_key, vocabulary_load

pytestmark = pytest.mark.django_db

URL = "/api/v1/datasets/"


def test_catalogue_of_robot_platforms_is_seeded():
    slugs = set(VocabularyTerm.objects.filter(kind=VocabularyKind.EMBODIMENT).values_list("slug", flat=True))
    for slug in ("franka-panda", "ur5e", "ur5", "xarm", "widowx", "kinova-gen3", "aloha", "stretch", "spot", "koch", "so100", "google-robot"):
        assert slug in slugs
    assert len(slugs) >= 30
    assert VocabularyTerm.objects.filter(kind=VocabularyKind.TASK).count() >= 20
    assert VocabularyTerm.objects.filter(kind=VocabularyKind.SCENE).count() >= 12


@pytest.mark.parametrize(
    "kind, value, slug",
    [
        ("embodiment", "ur5e", "ur5e"),
        ("embodiment", "UR5e", "ur5e"),
        ("embodiment", "ur5-e", "ur5e"),
        ("embodiment", "ur5_e", "ur5e"),
        ("embodiment", "UR5", "ur5"),
        ("embodiment", "Franka Emika Panda", "franka-panda"),
        ("embodiment", "so100_follower", "so100"),  # LeRobot robot_type
        ("embodiment", "koch_bimanual", "koch"),
        ("embodiment", "Boston Dynamics Spot", "spot"),
        ("task", "pick-and-place", "pick-and-place"),
        ("task", "PnP", "pick-and-place"),
        ("scene", "toy kitchen", "kitchen"),
        ("embodiment", "octopus", None),
        ("embodiment", "", None),
    ],
)
def test_values_find_their_term_by_slug_name_or_alias(kind, value, slug):
    assert vocabulary_load([kind]).resolve(kind, value) == slug


def test_a_slug_wins_over_another_terms_alias():
    VocabularyTerm.objects.create(kind="embodiment", slug="panda", name="Panda (a custom rig)")
    vocab = vocabulary_load(["embodiment"])
    assert vocab.resolve("embodiment", "panda") == "panda"  # "Panda" is also an alias of franka-panda
    assert vocab.resolve("embodiment", "Franka") == "franka-panda"


def test_suggestions_are_the_closest_known_values():
    vocab = vocabulary_load(["embodiment"])
    assert vocab.suggest("embodiment", "franka-pand")[0] == "franka-panda"
    assert set(vocab.suggest("embodiment", "kinova")) >= {"kinova-gen3", "kinova-jaco"}
    assert vocab.suggest("embodiment", "zzzzzzzz") == []
    assert term_key("UR5-e ") == "ur5e"


def test_dataset_terms_by_alias_and_unknown_ones_refused_with_suggestions(seller):
    r = seller.client.post(
        URL,
        {"slug": "bimanual", "title": "B", "annotation_license": "CC-BY-4.0", "embodiments": ["UR5e", "ur5-e", "Franka"], "tasks": ["PnP"]},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert sorted(r.json()["embodiments"]) == ["franka-panda", "ur5e"] and r.json()["tasks"] == ["pick-and-place"]
    r = seller.client.post(URL, {"slug": "typo", "title": "T", "annotation_license": "CC-BY-4.0", "embodiments": ["franka-pand"]}, format="json")
    assert r.status_code == 400
    [detail] = r.json()["details"]
    assert detail["location"] == "embodiments" and detail["code"] == "unknown_value" and "'franka-panda'" in detail["message"]
    assert not Dataset.objects.filter(slug="typo").exists()


def test_sensors_are_declared_apart_from_the_annotation_kind(seller):
    body = {"slug": "depth-set", "title": "D", "annotation_license": "CC-BY-4.0", "annotation_kind": "video", "sensors": ["rgbd", "thermal", "rgbd"]}
    r = seller.client.post(URL, body, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["annotation_kind"] == "video" and r.json()["sensors"] == ["rgbd", "thermal"]
    assert "modality" not in r.json()
    r = seller.client.patch(f"{URL}depth-set/", {"sensors": ["point_cloud"]}, format="json")
    assert r.status_code == 200 and r.json()["sensors"] == ["point_cloud"]
    r = seller.client.patch(f"{URL}depth-set/", {"sensors": ["sonar"]}, format="json")
    assert r.status_code == 400 and r.json()["details"][0]["location"].startswith("sensors")
    assert Dataset.objects.get(slug="depth-set").sensors == ["point_cloud"]
    r = seller.client.post(URL, {"slug": "plain", "title": "P", "annotation_license": "CC-BY-4.0"}, format="json")
    assert r.json()["annotation_kind"] == "instances" and r.json()["sensors"] == []


def test_modality_is_refused_with_what_it_became(seller):
    r = seller.client.post(URL, {"slug": "old", "title": "O", "annotation_license": "CC-BY-4.0", "modality": "images"}, format="json")
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "renamed_field" and body["details"][0]["location"] == "modality"
    assert "annotation_kind" in body["details"][0]["message"] and "sensors" in body["details"][0]["message"]
    assert not Dataset.objects.filter(slug="old").exists()
    seller.client.post(URL, {"slug": "kept", "title": "K", "annotation_license": "CC-BY-4.0", "annotation_kind": "video"}, format="json")
    r = seller.client.patch(f"{URL}kept/", {"modality": "panoptic"}, format="json")
    assert r.status_code == 400 and r.json()["code"] == "renamed_field"
    assert Dataset.objects.get(slug="kept").annotation_kind == "video"


def test_staff_add_terms_with_aliases_in_the_admin(admin_client):
    r = admin_client.post(
        "/admin/datasets/vocabularyterm/add/",
        {"kind": "embodiment", "slug": "rby1", "name": "Rainbow RB-Y1", "aliases": '["RBY1", "rb_y1"]'},
    )
    assert r.status_code == 302, r.content[:2000]
    assert VocabularyTerm.objects.get(kind="embodiment", slug="rby1").aliases == ["RBY1", "rb_y1"]
    assert vocabulary_load(["embodiment"]).resolve("embodiment", "RB-Y1") == "rby1"


def test_vocabularies_are_public_with_their_aliases(api_client):
    body = api_client.get("/api/v1/vocabularies/", {"kind": "embodiment"}).json()
    terms = {t["slug"]: t for t in body["results"]}
    assert {t["kind"] for t in body["results"]} == {"embodiment"}
    assert terms["ur5e"]["name"] == "UR5e" and "Universal Robots UR5e" in terms["ur5e"]["aliases"]
    everything = api_client.get("/api/v1/vocabularies/").json()["results"]
    assert {t["kind"] for t in everything} == {"embodiment", "task", "scene"}
    resp = api_client.get("/api/v1/vocabularies/", {"kind": "robot"})
    assert resp.status_code == 400 and resp.json()["details"][0]["location"] == "kind"
