"""The provenance vocabulary: each field's name (the MLCommons Croissant RAI 1.0 name where
one exists, as mlcroissant spells it), its value type, and whether the checks require it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from marketplace.core.errors import field_error

# EU member states plus the EEA (Iceland, Liechtenstein, Norway), ISO 3166-1 alpha-2.
EU_EEA = frozenset(
    ["AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO"]
)
COLLECTION_METHODS = ("teleoperation", "scripted", "autonomous", "human_video", "simulation", "web", "other")


@dataclass(frozen=True, kw_only=True)
class FieldSpec:
    name: str
    kind: str  # text | text_list | choice | countries | bool | int | share | timeframe | models | sources | ids
    label: str
    required: bool = False
    rai: bool = False  # a Croissant RAI property


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(name="rai:dataCollection", kind="text", label="collection process", required=True, rai=True),
    FieldSpec(name="rai:dataCollectionType", kind="choice", label="collection method", required=True, rai=True),
    FieldSpec(name="rai:dataCollectionTimeFrame", kind="timeframe", label="time frame (start, end)", required=True, rai=True),
    FieldSpec(name="locations", kind="countries", label="locations (ISO 3166 country codes)", required=True),
    FieldSpec(name="human_subjects", kind="bool", label="people appear in the data", required=True),
    FieldSpec(name="sessions", kind="ids", label="recording sessions / trajectories"),
    FieldSpec(name="rai:personalSensitiveInformation", kind="text", label="personal or sensitive information", rai=True),
    FieldSpec(name="anonymisation_method", kind="text", label="anonymisation method"),
    FieldSpec(name="annotation_pipeline_version", kind="text", label="annotation pipeline version"),
    FieldSpec(name="rai:dataAnnotationPlatform", kind="text_list", label="annotation platform", required=True, rai=True),
    FieldSpec(name="rai:dataAnnotationProtocol", kind="text_list", label="annotator training protocol", required=True, rai=True),
    FieldSpec(name="rai:annotationsPerItem", kind="int", label="annotators per item", required=True, rai=True),
    FieldSpec(name="rai:annotatorDemographics", kind="text_list", label="annotator demographics", rai=True),
    FieldSpec(name="rai:dataAnnotationAnalysis", kind="text_list", label="QA procedure", required=True, rai=True),
    FieldSpec(name="declared_agreement", kind="share", label="declared inter-annotator agreement (0..1)"),
    FieldSpec(name="declared_mask_iou", kind="share", label="declared mask IoU (0..1)"),
    FieldSpec(name="rai:machineAnnotationTools", kind="models", label="foundation models used", rai=True),
    FieldSpec(name="source_datasets", kind="sources", label="source datasets and their licenses"),
    FieldSpec(name="rai:dataUseCases", kind="text_list", label="intended uses", required=True, rai=True),
    FieldSpec(name="rai:dataLimitations", kind="text_list", label="known limitations", required=True, rai=True),
)
BY_NAME = {f.name: f for f in FIELDS}


def is_filled(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _share(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def field_value_errors(name: str, value: Any) -> list[dict]:
    """Validation errors for one field (empty list when the value is acceptable). ``None``
    clears a field."""
    spec = BY_NAME.get(name)
    loc = f"fields.{name}"
    if spec is None:
        return [field_error(loc, "unknown provenance field", "unknown_field")]
    if value is None:
        return []
    k = spec.kind
    ok = True
    if k == "text":
        ok = isinstance(value, str)
    elif k in ("text_list", "ids"):
        ok = _str_list(value) or (k == "text_list" and isinstance(value, str))
    elif k == "choice":
        ok = value in COLLECTION_METHODS or (_str_list(value) and all(v in COLLECTION_METHODS for v in value))
    elif k == "countries":
        ok = _str_list(value) and all(len(c) == 2 and c.isalpha() and c.isupper() for c in value)
    elif k == "bool":
        ok = isinstance(value, bool)
    elif k == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    elif k == "share":
        ok = _share(value)
    elif k == "timeframe":
        ok = isinstance(value, dict) and set(value) == {"start", "end"}
        if ok:
            try:
                ok = dt.date.fromisoformat(value["start"]) <= dt.date.fromisoformat(value["end"])
            except (TypeError, ValueError):
                ok = False
    elif k == "models":
        ok = isinstance(value, list) and all(
            isinstance(m, dict)
            and set(m) <= {"name", "version", "proposed_share", "reviewed_share"}
            and isinstance(m.get("name"), str)
            and (m.get("proposed_share") is None or _share(m["proposed_share"]))
            and (m.get("reviewed_share") is None or _share(m["reviewed_share"]))
            for m in value
        )
    elif k == "sources":
        ok = isinstance(value, list) and all(
            isinstance(s, dict) and set(s) <= {"name", "url", "license"} and isinstance(s.get("name"), str) for s in value
        )
    if not ok:
        return [field_error(loc, f"not a valid {spec.kind} value", "invalid")]
    return []
