"""Provenance and license checks. Each check takes a :class:`CheckContext` and returns one
result dict: code, status (passed | failed | not_applicable), severity, message, evidence."""

from __future__ import annotations

import importlib
import io
import struct
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, BinaryIO

from PIL import Image

from licensing.provenance import EU_EEA, FIELDS, is_filled

# Measured figures may trail declared ones by this much before the declaration is flagged.
DECLARED_TOLERANCE = 0.05
# Two 64-bit perceptual hashes this close (in bits) are the same picture re-encoded or resized.
NEAR_DUPLICATE_BITS = 3
# EXIF tags that identify a person or a place (besides the GPS IFD).
PERSONAL_EXIF_TAGS = {
    0x013B: "Artist",
    0x8298: "Copyright",
    0x9286: "UserComment",
    0xA430: "CameraOwnerName",
    0xA431: "BodySerialNumber",
    0x9C9D: "XPAuthor",
    0x9C9C: "XPComment",
}
GPS_IFD = 0x8825


@dataclass(kw_only=True)
class CheckContext:
    version: Any
    fields: dict[str, Any]  # provenance name -> value
    consent_sessions: set[str]
    statistics: dict[str, Any]
    effective_terms: dict[str, Any]
    quality_summary: dict | None  # None: the quality app is not there
    # What the quality reports found (quality.selectors.version_quality_findings).
    quality_findings: dict[str, Any] = field(default_factory=dict)
    fingerprints: list[Any] = field(default_factory=list)
    duplicates: dict[str, Any] = field(default_factory=dict)


class Audience(StrEnum):
    """Who reads a check's evidence: platform staff (everything), a member of the seller's
    organization (its own files, nothing of another organization), or anyone else, a buyer
    (counts and summaries: no file path, no session or consent id, no other organization)."""

    STAFF = "staff"
    SELLER = "seller"
    PUBLIC = "public"


def _near_duplicates_shown(evidence: dict, audience: Audience) -> dict:
    # The matches are other organizations' listings and files: their slugs and paths stay
    # with staff; the seller sees which of its own images matched, a buyer only how many.
    listings = evidence.get("listings") or []
    shown = {
        "listings": len(listings),
        "images": sum(int(entry.get("images") or 0) for entry in listings),
        "share": evidence.get("share"),
        "max_bits": evidence.get("max_bits"),
    }
    if audience == Audience.SELLER:
        shown["examples"] = [example["path"] for entry in listings for example in entry.get("examples", [])][:10]
    return shown


def _personal_metadata_shown(evidence: dict, audience: Audience) -> dict:
    if audience == Audience.SELLER:
        return evidence
    tags: dict[str, int] = {}
    for hit in evidence.get("images") or []:
        for tag in hit.get("tags") or []:
            tags[tag] = tags.get(tag, 0) + 1
    return {"count": evidence.get("count"), "inspected": evidence.get("inspected"), "tags": dict(sorted(tags.items()))}


def _consent_shown(evidence: dict, audience: Audience) -> dict:
    if audience == Audience.SELLER:
        return evidence
    return {"locations": evidence.get("locations"), "sessions": evidence.get("sessions"), "uncovered": len(evidence.get("uncovered") or [])}


def _merged_instances_shown(evidence: dict, audience: Audience) -> dict:
    if audience == Audience.SELLER:
        return evidence
    return {key: value for key, value in evidence.items() if key != "examples"}  # the examples name the seller's files


EVIDENCE_SHOWN = {
    "near_duplicate_listing": _near_duplicates_shown,
    "image_personal_metadata": _personal_metadata_shown,
    "consent_not_covering_sessions": _consent_shown,
    "merged_instances": _merged_instances_shown,
}


def evidence_shown(code: str, evidence: dict, audience: Audience) -> dict:
    """A check's evidence as ``audience`` may read it (see :class:`Audience`); a check not
    listed in EVIDENCE_SHOWN has nothing to hide."""
    if audience == Audience.STAFF or code not in EVIDENCE_SHOWN:
        return evidence
    return EVIDENCE_SHOWN[code](evidence or {}, audience)


def result(code: str, *, failed: bool | None, severity: str, message: str, evidence: dict | None = None) -> dict[str, Any]:
    status = "not_applicable" if failed is None else ("failed" if failed else "passed")
    return {"code": code, "status": status, "severity": severity if failed else "info", "message": message, "evidence": evidence or {}}


def check_required_fields(ctx: CheckContext) -> dict:
    missing = [f.name for f in FIELDS if f.required and not is_filled(ctx.fields.get(f.name))]
    if ctx.fields.get("human_subjects") is True:
        missing += [n for n in ("anonymisation_method", "rai:personalSensitiveInformation") if not is_filled(ctx.fields.get(n))]
    return result(
        "provenance_missing_fields", failed=bool(missing), severity="error",
        message=f"{len(missing)} required provenance field(s) missing." if missing else "All required provenance fields are filled.",
        evidence={"missing": missing},
    )


def check_consent(ctx: CheckContext) -> dict:
    eu = sorted(set(ctx.fields.get("locations") or []) & EU_EEA)
    if ctx.fields.get("human_subjects") is not True or not eu:
        return result("consent_not_covering_sessions", failed=None, severity="error", message="No human subjects recorded in the EU/EEA.")
    sessions = set(ctx.fields.get("sessions") or ctx.statistics.get("sessions") or [])
    if sessions:  # noqa: SIM108 - two cases, each with its reason
        uncovered = sorted(sessions - ctx.consent_sessions)
    else:
        # Sessions not listed: the only thing we can require is some consent record at all.
        uncovered = [] if ctx.consent_sessions else ["(sessions not listed)"]
    return result(
        "consent_not_covering_sessions", failed=bool(uncovered), severity="error",
        message=f"People recorded in {', '.join(eu)} without a consent record for {len(uncovered)} session(s)." if uncovered else "Every session has a consent record.",
        evidence={"locations": eu, "sessions": len(sessions), "uncovered": uncovered[:100]},
    )


def check_declared_quality(ctx: CheckContext) -> dict:
    code = "declared_quality_overstated"
    if ctx.quality_summary is None:
        return result(code, failed=None, severity="warning", message="Quality reports are not available.")
    pairs = [("declared_agreement", "agreement"), ("declared_mask_iou", "mask_iou")]
    compared, over = [], []
    for declared_name, key in pairs:
        declared = ctx.fields.get(declared_name)
        measured = (ctx.quality_summary.get(key) or {}).get("value")
        if declared is None or measured is None:
            continue
        compared.append(key)
        if declared > measured + DECLARED_TOLERANCE:
            over.append({"metric": key, "declared": declared, "measured": measured})
    if not compared:
        return result(code, failed=None, severity="warning", message="No declared figure has a measured counterpart yet.")
    return result(
        code, failed=bool(over), severity="error",
        message="Declared figures exceed the measured ones by more than 0.05." if over else "Declared figures agree with the measured ones.",
        evidence={"overstated": over, "compared": compared, "tolerance": DECLARED_TOLERANCE},
    )


def check_foundation_model_review(ctx: CheckContext) -> dict:
    models = ctx.fields.get("rai:machineAnnotationTools") or []
    if not models:
        return result("foundation_model_unreviewed", failed=None, severity="warning", message="No foundation model declared.")
    unreviewed = [m.get("name") for m in models if not m.get("reviewed_share")]
    return result(
        "foundation_model_unreviewed", failed=bool(unreviewed), severity="warning",
        message="Foundation model(s) declared without a human-review share." if unreviewed else "Every declared foundation model has a human-review share.",
        evidence={"models": unreviewed},
    )


def check_images_without_license(ctx: CheckContext) -> dict:
    n = int(ctx.statistics.get("images_without_license") or 0)
    unknown = [u for u in ctx.effective_terms.get("unknown", []) if u.get("name")]
    failed = bool(n or unknown)
    return result(
        "images_without_license", failed=failed, severity="error",
        message=f"{n} image(s) carry no license; {len(unknown)} license(s) are not in the catalogue." if failed else "Every image has a known license.",
        evidence={"images_without_license": n, "unresolved": unknown},
    )


def check_exif_personal_data(ctx: CheckContext) -> dict:
    if not ctx.fingerprints:
        return result("image_personal_metadata", failed=None, severity="warning", message="No images to inspect.")
    hits = [{"path": f.path, "tags": f.exif_personal} for f in ctx.fingerprints if f.exif_personal]
    return result(
        "image_personal_metadata", failed=bool(hits), severity="error",
        message=f"{len(hits)} image(s) carry GPS or other personal data in their metadata." if hits else "No personal data found in image metadata.",
        evidence={"images": hits[:100], "count": len(hits), "inspected": len(ctx.fingerprints)},
    )


def check_near_duplicates(ctx: CheckContext) -> dict:
    if not ctx.fingerprints:
        return result("near_duplicate_listing", failed=None, severity="warning", message="No images to compare.")
    matches = ctx.duplicates
    share = sum(m["images"] for m in matches.values()) / len(ctx.fingerprints) if matches else 0.0
    return result(
        "near_duplicate_listing", failed=bool(matches), severity="error" if share >= 0.5 else "warning",
        message=f"{share:.0%} of the images nearly duplicate images of other sellers' listings (possible resale)." if matches else "No near-duplicates of other sellers' listings.",
        evidence={"listings": list(matches.values()), "share": round(share, 4), "max_bits": NEAR_DUPLICATE_BITS},
    )


def check_labeling_consistency(ctx: CheckContext) -> dict:
    """The seller's two annotation passes agree less than the threshold (mean mask IoU of
    matched instances): the labels a buyer gets depend on who drew them."""
    code = "inconsistent_labeling"
    found = ctx.quality_findings.get(code)
    if not found:
        return result(code, failed=None, severity="warning", message="No second annotation pass to measure agreement on.")
    agreement = found.get("agreement") or {}
    value, threshold = agreement.get("value"), found.get("threshold")
    evidence = {"agreement": agreement or None, "threshold": threshold}
    if found["flagged"]:
        message = (
            f"The two annotation passes agree with mean IoU {value:.3f}, below {threshold}."
            if value is not None
            else "The two annotation passes share no matched instance."
        )
        return result(code, failed=True, severity="warning", message=message, evidence=evidence)
    return result(code, failed=False, severity="warning", message=f"The two annotation passes agree (mean IoU {value:.3f}).", evidence=evidence)


def check_merged_instances(ctx: CheckContext) -> dict:
    """A segment of a thing (countable) class covers several disconnected blobs in the
    seller's panoptic PNGs: likely several instances painted with one id."""
    code = "merged_instances"
    found = ctx.quality_findings.get(code)
    if not found:
        return result(code, failed=None, severity="warning", message="No panoptic segments to inspect.")
    count = found.get("count") or {}
    n, of = int(count.get("value") or 0), count.get("n")
    evidence = {"count": count or None, "examples": found.get("examples") or [], "report_id": found.get("report_id")}
    if found["flagged"]:
        return result(code, failed=True, severity="warning", message=f"{n} of {of} thing segment(s) cover disconnected blobs (merged instances?).", evidence=evidence)
    return result(code, failed=False, severity="warning", message=f"None of {of} thing segment(s) covers disconnected blobs.", evidence=evidence)


CHECKS = (
    check_required_fields,
    check_consent,
    check_declared_quality,
    check_foundation_model_review,
    check_images_without_license,
    check_exif_personal_data,
    check_near_duplicates,
    check_labeling_consistency,
    check_merged_instances,
)


# What a broken or hostile image file raises in Pillow (its header or its pixels).
IMAGE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, SyntaxError, EOFError, struct.error, Image.DecompressionBombError)


def image_inspect(data: bytes | BinaryIO) -> tuple[int, list[str]]:
    """The image's 64-bit perceptual hash and the personal-data EXIF tags it carries
    (``data``: the bytes, or a seekable file that Pillow reads as it needs)."""
    imagehash = importlib.import_module("imagehash")
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as img:
        exif = img.getexif()
        personal = [name for tag, name in PERSONAL_EXIF_TAGS.items() if exif.get(tag)]
        gps = exif.get_ifd(GPS_IFD)
        if gps:
            personal.insert(0, "GPSInfo")
        h = imagehash.phash(img.convert("RGB"))
    bits = 0
    for b in h.hash.flatten():
        bits = (bits << 1) | int(bool(b))
    return bits, personal


def bands(bits: int) -> tuple[int, int, int, int]:
    # Stored as signed 32-bit-safe ints (16-bit bands).
    return tuple((bits >> (16 * i)) & 0xFFFF for i in range(4))  # type: ignore[return-value]
