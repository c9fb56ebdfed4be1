"""The dataset card, end to end: the seller CLI reads ``dataset.yaml`` (or a README's YAML
front matter) in the folder, has the server check the whole card before sending a byte,
and turns the folder into a complete draft (dataset fields, provenance, consent records,
files); a card the server or the CLI refuses is reported located, and nothing is created."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from datasets.models import Dataset, DatasetFile, UploadSession, VocabularyTerm
from licensing.provenance import FIELDS
from tests.datasets.helpers import coco, png_bytes

ROOT = Path(__file__).resolve().parents[2]

PROVENANCE = {
    "rai:dataCollection": "Teleoperated pick-and-place in three kitchens.",
    "rai:dataCollectionType": "teleoperation",
    "rai:dataCollectionTimeFrame": {"start": "2025-01-06", "end": "2025-06-30"},
    "locations": ["DE", "FR"],
    "human_subjects": True,
    "rai:dataAnnotationPlatform": ["CVAT"],
    "rai:dataAnnotationProtocol": ["two days of training on the class guide"],
    "rai:annotationsPerItem": 2,
    "rai:dataAnnotationAnalysis": ["10 % of frames reviewed twice"],
    "rai:dataUseCases": ["grasp detection"],
    "rai:dataLimitations": ["indoor scenes only"],
}
CARD = {
    "title": "Kitchen grasping",
    "summary": "Instance masks of objects grasped by a Franka arm.",
    "annotation_license": "CC-BY-4.0",
    "price": 1200,
    "currency": "EUR",
    "annotation_kind": "instances",
    "embodiments": ["franka-panda"],
    "tasks": ["grasping"],
    "scene_types": ["kitchen"],
    "sensors": ["rgb"],
    "splits": ["train", "val"],
    "provenance": PROVENANCE,
    "consent_records": [{"session_id": "s-001", "consent_id": "c-17", "legal_basis": "consent"}],
}


@pytest.fixture
def vocabulary(transactional_db):
    for kind, slug in (("embodiment", "franka-panda"), ("task", "grasping"), ("scene", "kitchen")):
        VocabularyTerm.objects.get_or_create(kind=kind, slug=slug, defaults={"name": slug})


def _folder(tmp_path: Path, card: dict | None, *, raw: str | None = None) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "train.json").write_text(json.dumps(coco(n_images=2)))
    (d / "val.json").write_text(json.dumps(coco(n_images=1)))
    for i in (1, 2):
        (d / f"img{i}.png").write_bytes(png_bytes(color=(i, 3, 3)))
    if raw is not None or card is not None:
        (d / "dataset.yaml").write_text(raw if raw is not None else yaml.safe_dump(card, sort_keys=False))
    return d


def _run(live_server, seller, *args, timeout: int = 180) -> tuple[int, str, str]:
    env = dict(os.environ, MARKET_API_URL=live_server.url, MARKET_TOKEN=seller.token)
    proc = subprocess.run([sys.executable, "-m", "datasets.client", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.timeout(300)
def test_folder_with_a_card_becomes_a_complete_draft_with_provenance(live_server, celery_worker, vocabulary, tmp_path):
    from tests.factories import make_seller

    seller = make_seller(username="card-seller")
    d = _folder(tmp_path, CARD)
    rc, out, err = _run(live_server, seller, "upload", str(d), "--dataset", "kitchen-grasping")
    assert rc == 0, out + err
    dataset = seller.client.get("/api/v1/datasets/kitchen-grasping/").json()
    assert {k: dataset[k] for k in ("title", "summary", "annotation_license", "price", "currency", "annotation_kind", "sensors")} == {
        "title": "Kitchen grasping",
        "summary": CARD["summary"],
        "annotation_license": "CC-BY-4.0",
        "price": "1200.00",
        "currency": "EUR",
        "annotation_kind": "instances",
        "sensors": ["rgb"],
    }
    assert (dataset["embodiments"], dataset["tasks"], dataset["scene_types"]) == (["franka-panda"], ["grasping"], ["kitchen"])
    versions = seller.client.get("/api/v1/datasets/kitchen-grasping/versions/").json()["results"]
    assert [v["state"] for v in versions] == ["draft"]
    version_id = versions[0]["id"]
    provenance = seller.client.get(f"/api/v1/versions/{version_id}/provenance/").json()
    assert {name: f["value"] for name, f in provenance["fields"].items() if f["value"] is not None} == PROVENANCE
    assert {f.name for f in FIELDS if f.required} <= set(PROVENANCE)  # every field a submission requires
    assert provenance["completeness"] == round(len(PROVENANCE) / len(FIELDS), 4)
    assert [(c["session_id"], c["consent_id"], c["legal_basis"]) for c in provenance["consent_records"]] == [("s-001", "c-17", "consent")]
    paths = set(DatasetFile.objects.filter(version_id=version_id).values_list("path", flat=True))
    assert paths == {"train.json", "val.json", "img1.png", "img2.png"}  # the card itself is not a file of the dataset

    # the card edited, the folder sent again with --submit: the same dataset and draft, updated, then submitted
    (d / "dataset.yaml").write_text(yaml.safe_dump({**CARD, "title": "Kitchen grasping, 2 splits", "price": "990.50"}))
    rc, out, err = _run(live_server, seller, "upload", str(d), "--dataset", "kitchen-grasping", "--submit")
    assert rc == 0, out + err
    dataset = seller.client.get("/api/v1/datasets/kitchen-grasping/").json()
    assert (dataset["title"], dataset["price"]) == ("Kitchen grasping, 2 splits", "990.50")
    versions = seller.client.get("/api/v1/datasets/kitchen-grasping/versions/").json()["results"]
    assert len(versions) == 1 and versions[0]["state"] != "draft"
    assert DatasetFile.objects.filter(version_id=version_id, origin="upload").count() == 4  # nothing sent twice


@pytest.mark.timeout(300)
def test_readme_front_matter_is_a_card(live_server, celery_worker, vocabulary, tmp_path):
    from tests.factories import make_seller

    seller = make_seller(username="readme-seller")
    d = _folder(tmp_path, None)
    front = {"pretty_name": "Tabletop masks", "license": "CC-BY-4.0", "summary": "From a README", "provenance": {"locations": ["NL"]}}
    (d / "README.md").write_text("---\n" + yaml.safe_dump(front) + "---\n# Tabletop masks\n\nFree text for people.\n")
    rc, out, err = _run(live_server, seller, "upload", str(d), "--dataset", "tabletop")
    assert rc == 0, out + err
    dataset = seller.client.get("/api/v1/datasets/tabletop/").json()
    assert (dataset["title"], dataset["annotation_license"], dataset["summary"]) == ("Tabletop masks", "CC-BY-4.0", "From a README")
    version_id = seller.client.get("/api/v1/datasets/tabletop/versions/").json()["results"][0]["id"]
    assert seller.client.get(f"/api/v1/versions/{version_id}/provenance/").json()["fields"]["locations"]["value"] == ["NL"]
    assert "README.md" not in set(DatasetFile.objects.filter(version_id=version_id).values_list("path", flat=True))


@pytest.mark.timeout(300)
def test_a_consent_record_points_to_a_provenance_document_of_the_folder(live_server, celery_worker, vocabulary, tmp_path):
    """``document`` in a card's consent record: the folder's path of a provenance document.
    The CLI sends the documents first, then the consent records, which the server resolves
    to the uploaded document's file."""
    from tests.factories import make_seller

    seller = make_seller(username="card-documents")
    records = [
        {"session_id": "s-001", "consent_id": "c-17", "legal_basis": "consent", "document": "provenance/consent-c17.pdf"},
        {"session_id": "s-002", "legal_basis": "contract"},
    ]
    d = _folder(tmp_path, {**CARD, "consent_records": records})
    (d / "provenance").mkdir()
    (d / "provenance" / "consent-c17.pdf").write_bytes(b"%PDF-1.4 the signed consent form of session s-001")
    rc, out, err = _run(live_server, seller, "upload", str(d), "--dataset", "kitchen-documents")
    assert rc == 0, out + err
    version_id = seller.client.get("/api/v1/datasets/kitchen-documents/versions/").json()["results"][0]["id"]
    form = DatasetFile.objects.get(version_id=version_id, path="provenance/consent-c17.pdf")
    assert form.role == "provenance_docs"
    shown = seller.client.get(f"/api/v1/versions/{version_id}/provenance/").json()["consent_records"]
    assert sorted((r["session_id"], r["document_file_id"]) for r in shown) == [("s-001", form.pk), ("s-002", None)]


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("card", "raw", "extra", "location", "code"),
    [
        ({**CARD, "annotation_license": "CC-BY-9.9"}, None, [], "annotation_license", "unknown_license"),
        ({**CARD, "provenance": {**PROVENANCE, "rai:dataCollectionType": "by hand"}}, None, [], "provenance.rai:dataCollectionType", "invalid"),
        ({**CARD, "colour": "blue"}, None, [], "colour", "unknown_field"),
        ({**CARD, "modality": "images"}, None, [], "modality", "renamed"),
        ({**CARD, "sensors": ["sonar"]}, None, [], "sensors[0]", "invalid_choice"),
        ({**CARD, "embodiments": ["warp-drive"]}, None, [], "embodiments", "unknown_value"),
        ({**CARD, "consent_records": [{"session_id": "s-1", "legal_basis": "because"}]}, None, [], "consent_records[0].legal_basis", "invalid_choice"),
        ({**CARD, "splits": ["train", "test"]}, None, [], "splits[1]", "unknown_split"),
        (
            {**CARD, "consent_records": [{"session_id": "s-1", "legal_basis": "consent", "document": "provenance/missing.pdf"}]},
            None, [], "consent_records[0].document", "unknown_document",
        ),
        ({**CARD, "consent_records": [{"session_id": "s-1", "legal_basis": "consent", "document": ["a.pdf"]}]}, None, [], "consent_records[0].document", "invalid"),
        ({**CARD, "price": [1]}, None, [], "price", "invalid"),
        (None, "title: Kitchen\nprice: [1, 2\n", [], "dataset.yaml:3:1", "invalid_yaml"),
        ({**CARD, "provenance": _without(PROVENANCE, "rai:dataUseCases")}, None, ["--submit"], "provenance.rai:dataUseCases", "required"),
    ],
    ids=["unknown-license", "bad-provenance", "unknown-key", "renamed-key", "unknown-sensor", "unknown-term", "bad-consent", "unknown-split", "unknown-document", "bad-document", "bad-price", "bad-yaml", "submit-incomplete"],
)
def test_refused_card_is_located_before_any_upload(live_server, vocabulary, tmp_path, card, raw, extra, location, code):
    from tests.factories import make_seller

    seller = make_seller(username="card-refused")
    d = _folder(tmp_path, card, raw=raw)
    rc, out, err = _run(live_server, seller, "upload", str(d), "--dataset", "refused-set", *extra, timeout=60)
    assert rc == 2, out + err
    assert f"  {location}: " in err and f"[{code}]" in err, err
    assert not Dataset.objects.filter(slug="refused-set").exists()
    assert not UploadSession.objects.exists()  # not one byte sent
