"""A published listing as Croissant 1.0 JSON-LD with the RAI 1.0 properties."""

from __future__ import annotations

from typing import Any

from licensing.models import License, ProvenanceField
from licensing.selectors import version_effective_terms

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "equivalentProperty": "cr:equivalentProperty",
    "samplingRate": "cr:samplingRate",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def listing_croissant(*, version, base_url: str) -> dict[str, Any]:
    dataset = version.dataset
    values = {f.name: f.value for f in ProvenanceField.objects.filter(record__version=version) if f.value not in (None, "", [])}
    terms = version_effective_terms(version=version)
    lic = License.objects.filter(spdx_id=terms["annotation_license"]).first()
    url = f"{base_url.rstrip('/')}/api/v1/listings/{dataset.slug}/"
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": ["http://mlcommons.org/croissant/1.0", "http://mlcommons.org/croissant/RAI/1.0"],
        "name": dataset.slug,
        "alternateName": dataset.title,
        "description": dataset.description or dataset.summary or dataset.title,
        "url": url,
        "version": f"{version.number}.0.0",
        "license": (lic.url or lic.spdx_id) if lic else dataset.annotation_license,
        "creator": {"@type": "sc:Organization", "name": dataset.owner.name},
        "datePublished": version.published_at.date().isoformat() if version.published_at else None,
        "citeAs": f"{dataset.owner.name}. {dataset.title}, version {version.number}. {url}",
        "keywords": ["instance segmentation", "robotics", dataset.annotation_kind, *dataset.sensors],
    }
    rai_text = {
        "rai:dataCollection": values.get("rai:dataCollection"),
        "rai:dataCollectionType": _as_list(values.get("rai:dataCollectionType")) or None,
        "rai:personalSensitiveInformation": values.get("rai:personalSensitiveInformation"),
        "rai:dataAnnotationProtocol": _as_list(values.get("rai:dataAnnotationProtocol")) or None,
        "rai:dataAnnotationPlatform": _as_list(values.get("rai:dataAnnotationPlatform")) or None,
        "rai:dataAnnotationAnalysis": _as_list(values.get("rai:dataAnnotationAnalysis")) or None,
        "rai:annotatorDemographics": _as_list(values.get("rai:annotatorDemographics")) or None,
        "rai:annotationsPerItem": str(values["rai:annotationsPerItem"]) if "rai:annotationsPerItem" in values else None,
        "rai:dataUseCases": _as_list(values.get("rai:dataUseCases")) or None,
        "rai:dataLimitations": _as_list(values.get("rai:dataLimitations")) or None,
    }
    frame = values.get("rai:dataCollectionTimeFrame")
    if frame:
        rai_text["rai:dataCollectionTimeFrame"] = [frame["start"], frame["end"]]
    tools = values.get("rai:machineAnnotationTools")
    if tools:
        rai_text["rai:machineAnnotationTools"] = [
            f"{m['name']} {m.get('version') or ''}".strip()
            + f" (proposed {m.get('proposed_share', 'n/a')}, reviewed by a person {m.get('reviewed_share', 'n/a')})"
            for m in tools
        ]
    if values.get("anonymisation_method"):
        rai_text["rai:dataManipulationProtocol"] = f"Anonymisation: {values['anonymisation_method']}"
    if values.get("locations"):
        doc["spatialCoverage"] = [{"@type": "sc:Country", "name": c} for c in values["locations"]]
    sources = values.get("source_datasets")
    if sources:
        doc["isBasedOn"] = [s.get("url") or s["name"] for s in sources]
    doc.update({k: v for k, v in rai_text.items() if v})
    return {k: v for k, v in doc.items() if v is not None}
