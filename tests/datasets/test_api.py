import pytest

from datasets.models import DatasetVersion
from datasets.states import VersionState
from tests.datasets.helpers import add_file, coco, json_bytes
from tests.factories import make_dataset, make_version

pytestmark = pytest.mark.django_db


def test_seller_creates_dataset_and_version_and_sees_only_own(seller, seller_b):
    r = seller.client.post(
        "/api/v1/datasets/", {"slug": "arm-picks", "title": "Arm picks", "annotation_license": "CC-BY-4.0"}, format="json"
    )
    assert r.status_code == 201, r.content
    assert r.json()["owner"] == seller.org.slug
    make_dataset(seller=seller_b, slug="other")
    slugs = [d["slug"] for d in seller.client.get("/api/v1/datasets/").json()["results"]]
    assert slugs == ["arm-picks"]
    assert seller.client.get("/api/v1/datasets/other/").status_code == 404
    r = seller.client.post("/api/v1/datasets/arm-picks/versions/", {"notes": "first"}, format="json")
    assert r.status_code == 201 and r.json()["state"] == "draft" and r.json()["number"] == 1
    assert seller.client.post("/api/v1/datasets/arm-picks/versions/", {}, format="json").json()["code"] == "draft_exists"


def test_patch_refuses_server_owned_fields(seller, seller_b):
    make_dataset(seller=seller, slug="d1")
    for body in ({"owner": seller_b.org.pk}, {"slug": "x"}, {"state": "published"}, {"sha256": "0" * 64}):
        r = seller.client.patch("/api/v1/datasets/d1/", body, format="json")
        assert r.status_code == 400 and r.json()["code"] == "read_only_field", body
    r = seller.client.patch("/api/v1/datasets/d1/", {"title": "New title", "price": "10.00"}, format="json")
    assert r.status_code == 200 and r.json()["title"] == "New title"
    assert seller_b.client.patch("/api/v1/datasets/d1/", {"title": "hijack"}, format="json").status_code == 404


def test_license_fixed_after_submit(seller):
    version = make_version(seller=seller)
    DatasetVersion.objects.filter(pk=version.pk).update(state=VersionState.SUBMITTED)
    r = seller.client.patch(f"/api/v1/datasets/{version.dataset.slug}/", {"annotation_license": "CC0-1.0"}, format="json")
    assert r.status_code == 409 and r.json()["code"] == "dataset_frozen"


def test_version_detail_visibility(seller, seller_b, buyer, moderator, auditor):
    version = make_version(seller=seller)
    assert seller.client.get(f"/api/v1/versions/{version.pk}/").status_code == 200
    assert moderator.client.get(f"/api/v1/versions/{version.pk}/").status_code == 200
    for other in (seller_b, buyer):
        assert other.client.get(f"/api/v1/versions/{version.pk}/").status_code == 404
    body = seller.client.get(f"/api/v1/versions/{version.pk}/").json()
    assert set(body) >= {"state", "manifest", "validation_report", "statistics", "previews"}
    assert "storage_key" not in str(body)


def test_submit_requires_annotations_then_freezes(seller, seller_b, django_capture_on_commit_callbacks):
    version = make_version(seller=seller)
    r = seller.client.post(f"/api/v1/versions/{version.pk}/submit/")
    assert r.status_code == 409 and r.json()["code"] == "incomplete_version"
    assert seller_b.client.post(f"/api/v1/versions/{version.pk}/submit/").status_code == 404
    add_file(version, role="annotations", path="train.json", data=json_bytes(coco()))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        r = seller.client.post(f"/api/v1/versions/{version.pk}/submit/")
    assert r.status_code == 200 and r.json()["state"] == "submitted"
    # The pipeline starts from the VersionSubmitted event, delivered only on commit.
    delivered = [callback.args[0] for callback in callbacks]
    assert [type(e).__name__ for e in delivered] == ["VersionStateChanged", "VersionSubmitted"]
    assert delivered[1].version_id == version.pk
    r = seller.client.post(
        f"/api/v1/versions/{version.pk}/uploads/", {"role": "annotations", "name": "x.json", "size": 10, "sha256": "a" * 64}, format="json"
    )
    assert r.status_code == 409 and r.json()["code"] == "version_frozen"


def test_vocabulary_seeded_and_usable(seller):
    r = seller.client.post("/api/v1/datasets/", {"slug": "franka", "title": "F", "annotation_license": "CC-BY-4.0", "embodiments": ["franka-panda"], "scene_types": ["kitchen"]}, format="json")
    assert r.status_code == 201, r.content
    assert r.json()["embodiments"] == ["franka-panda"] and r.json()["scene_types"] == ["kitchen"]


@pytest.mark.django_db
def test_image_files_are_found_by_annotation_file_name_exact_path_first_then_base_name(seller):
    """A file name the annotations give finds the image at that path, else one whose path
    ends with the same base name; never the archive it came in; missing names are absent."""
    import hashlib

    from datasets.models import DatasetFile
    from datasets.selectors import version_image_files
    from tests import factories

    version = factories.make_version(seller=seller)

    def row(path, **kw):
        return DatasetFile.objects.create(version=version, role="images", path=path, size=1, sha256=hashlib.sha256(path.encode()).hexdigest(), storage_key=f"t/{version.pk}/{path}", **kw)

    archive = row("frames.zip")
    exact = row("images/a.png", source=archive)
    other_folder = row("uploads/b.png")
    row("elsewhere/a.png")
    found = version_image_files(version=version, file_names=["images/a.png", "b.png", "missing.png", "frames.zip"])
    assert found == {"images/a.png": exact, "b.png": other_folder}
