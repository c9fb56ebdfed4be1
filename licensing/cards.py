"""The dataset card: everything a seller states about a dataset in one document (the seller
CLI reads it from ``dataset.yaml`` or a README's YAML front matter), checked whole before
anything is written or uploaded. A check only reads; the CLI then writes through the usual
routes (dataset, provenance, uploads).

Card keys are the dataset's fields (as the dataset routes take them), ``splits`` (the
annotation files' stems, checked against the folder by the CLI), ``provenance`` (provenance
field name -> value) and ``consent_records``. Every error is located by card key."""

from __future__ import annotations

from typing import Any

from datasets.apis import DatasetListApi
from datasets.models import Dataset
from datasets.selectors import datasets_for_seller
from licensing.models import LegalBasis
from licensing.provenance import FIELDS, field_value_errors, is_filled
from licensing.selectors import license_list, license_resolver
from marketplace.core.errors import field_error

CARD_KEYS = ("splits", "provenance", "consent_records")
RENAMED = {"modality": "renamed: annotation_kind (instances, video, panoptic); the sensors go in sensors"}
# ``document``: the folder's path of a provenance document (a PDF, text or Markdown file the
# CLI uploads as such); the CLI checks it is in the folder, the provenance route that it
# was uploaded.
_CONSENT_KEYS = {"session_id", "consent_id", "legal_basis", "document"}


def card_dataset_fields() -> tuple[str, ...]:
    """The dataset fields a card sets: those the create route takes, but the slug (the CLI's
    ``--dataset``) and the acting organization."""
    return tuple(n for n in DatasetListApi.InputSerializer().fields if n not in ("slug", "organization"))


def _drf_errors(errors: Any, location: str) -> list[dict]:
    if isinstance(errors, dict):  # a list field's errors are keyed by item index
        return [
            e
            for key, sub in errors.items()
            for e in _drf_errors(sub, f"{location}[{key}]" if isinstance(key, int) else f"{location}.{key}" if location else str(key))
        ]
    if isinstance(errors, list):
        if all(isinstance(x, str) for x in errors):
            return [field_error(location, str(x), getattr(x, "code", "invalid")) for x in errors]
        return [e for i, sub in enumerate(errors) if sub for e in _drf_errors(sub, f"{location}[{i}]")]
    return [field_error(location, str(errors), getattr(errors, "code", "invalid"))]


def card_check(*, user, slug: str, card: Any, submit: bool = False) -> tuple[list[dict], dict]:
    """(errors, facts): every error of the card, located by card key, and what the server
    will do with it (``exists``: the seller has a dataset by that slug, which the card
    updates). ``submit`` also requires what a submitted version needs."""
    if not isinstance(card, dict):
        return [field_error("card", "a mapping of card keys", "invalid")], {}
    fields = card_dataset_fields()
    errors: list[dict] = []
    unknown = sorted(k for k in card if k not in fields and k not in CARD_KEYS)
    errors += [field_error(k, RENAMED[k], "renamed") if k in RENAMED else field_error(k, "not a card key", "unknown_field") for k in unknown]
    dataset_values = {k: card[k] for k in fields if k in card}
    serializer = DatasetListApi.InputSerializer(data={"slug": slug, **dataset_values})
    if not serializer.is_valid():
        errors += [{**e, "location": "dataset" if e["location"] == "slug" else e["location"]} for e in _drf_errors(serializer.errors, "")]
    errors += _license_errors(card.get("annotation_license"))
    mine = datasets_for_seller(user=user).filter(slug=slug).first()
    if mine is None and Dataset.objects.filter(slug=slug).exists():
        errors.append(field_error("dataset", f"the slug {slug!r} belongs to another organization", "slug_taken"))
    errors += _splits_errors(card.get("splits"))
    errors += _provenance_errors(card.get("provenance"), submit=submit)
    errors += _consent_errors(card.get("consent_records"))
    return errors, {"exists": mine is not None}


def _license_errors(value: Any) -> list[dict]:
    if not isinstance(value, str) or not value:
        return []  # the serializer already says it is required / not text
    known = set(license_list().values_list("spdx_id", flat=True))
    if value in known:
        return []
    resolved = license_resolver().resolve(identifier=value, name=value)
    hint = f"; did you mean {resolved.spdx_id!r}?" if resolved.spdx_id else "; see GET /api/v1/licenses/"
    return [field_error("annotation_license", f"{value!r} is not a license of the catalogue{hint}", "unknown_license")]


def _splits_errors(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        return [field_error("splits", "a non-empty list of split names", "invalid")]
    errors, seen = [], set()
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name.strip() or len(name) > 120 or "/" in name:
            errors.append(field_error(f"splits[{i}]", "a split name (an annotation file's stem)", "invalid"))
        elif name in seen:
            errors.append(field_error(f"splits[{i}]", "listed twice", "duplicate"))
        seen.add(name)
    return errors


def _provenance_errors(value: Any, *, submit: bool) -> list[dict]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        return [field_error("provenance", "a mapping of provenance field names to values", "invalid")]
    errors = [
        {**e, "location": "provenance." + e["location"].removeprefix("fields.")} for name, v in value.items() for e in field_value_errors(str(name), v)
    ]
    if submit:
        errors += [
            field_error(f"provenance.{f.name}", f"required to submit ({f.label})", "required")
            for f in FIELDS
            if f.required and not is_filled(value.get(f.name))
        ]
    return errors


def _consent_errors(value: Any) -> list[dict]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [field_error("consent_records", "a list of consent records", "invalid")]
    errors, seen = [], set()
    for i, rec in enumerate(value):
        loc = f"consent_records[{i}]"
        if not isinstance(rec, dict):
            errors.append(field_error(loc, "a mapping with session_id and legal_basis", "invalid"))
            continue
        errors += [field_error(f"{loc}.{k}", "not a consent record key", "unknown_field") for k in sorted(set(rec) - _CONSENT_KEYS)]
        session = rec.get("session_id")
        if not isinstance(session, str) or not session or len(session) > 200:
            errors.append(field_error(f"{loc}.session_id", "required: the recording session's id", "required"))
        elif session in seen:
            errors.append(field_error(f"{loc}.session_id", "duplicate session", "duplicate"))
        seen.add(session)
        if rec.get("legal_basis") not in LegalBasis.values:
            errors.append(field_error(f"{loc}.legal_basis", f"one of {', '.join(LegalBasis.values)}", "invalid_choice"))
        consent_id = rec.get("consent_id", "")
        if not isinstance(consent_id, str) or len(consent_id) > 200:
            errors.append(field_error(f"{loc}.consent_id", "text of at most 200 characters", "invalid"))
        document = rec.get("document")
        if document is not None and (
            not isinstance(document, str) or not document or len(document) > 1024 or document.startswith("/") or ".." in document.split("/")
        ):
            errors.append(field_error(f"{loc}.document", "the path of a provenance document inside the dataset's folder", "invalid"))
    return errors
