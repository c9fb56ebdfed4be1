"""Which quality steps wait for the auditor's reference: the audit always; the panoptic
report on a panoptic-only version, until a panoptic reference is there."""

import pytest
from django.test import override_settings

from datasets.models import DatasetFile, FileOrigin
from tests.datasets.helpers import add_file
from tests.factories import make_dataset, make_version
from workers.pipeline import _quality_steps

pytestmark = pytest.mark.django_db


def _version(seller, kind: str, roles: tuple[str, ...]):
    version = make_version(seller=seller, dataset=make_dataset(seller=seller, annotation_kind=kind))
    for role in roles:
        add_file(version, role=role, path=f"{role}.json", data=b"{}")
    return version


def _reference(version, *, panoptic: bool) -> None:
    add_file(version, role="reference", path="reference/ref.json", data=b"{}")
    if panoptic:
        DatasetFile.objects.create(
            version=version, role="reference", path="reference/p/1.png", size=1, sha256="0" * 64, content_type="image/png", storage_key=f"k/{version.pk}/1.png", origin=FileOrigin.AUDIT
        )


def test_a_panoptic_only_version_waits_for_a_panoptic_reference(seller):
    version = _version(seller, "panoptic", ("panoptic",))
    assert _quality_steps(version=version) == ([], ["quality_panoptic"])
    with override_settings(PIPELINE_AUDIT_REQUIRED=False):  # no audit required: the check runs, PQ stays out
        assert _quality_steps(version=version) == (["quality_panoptic"], [])
    _reference(version, panoptic=False)
    assert _quality_steps(version=version) == ([], ["quality_panoptic"])  # an instances reference is not its reference
    DatasetFile.objects.filter(version=version, role="reference").delete()
    _reference(version, panoptic=True)
    assert _quality_steps(version=version) == (["quality_panoptic"], [])


def test_a_version_with_instances_and_panoptic_waits_for_the_instance_reference_only(seller):
    version = _version(seller, "instances", ("annotations", "panoptic"))
    steps, waiting = _quality_steps(version=version)
    assert waiting == ["quality_audit"] and "quality_panoptic" in steps and "quality_audit" not in steps
    _reference(version, panoptic=False)
    steps, waiting = _quality_steps(version=version)
    assert waiting == [] and {"quality_audit", "quality_panoptic", "quality_intrinsic"} <= set(steps)
