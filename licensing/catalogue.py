"""The license catalogue (data in ``licensing/data/licenses.json``) and the resolver that
maps what datasets actually carry onto it: SPDX ids, COCO ``licenses[]`` names and URLs
(e.g. ``http://creativecommons.org/licenses/by-nc-sa/2.0/``) and common spellings."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "licenses.json"
TERMS = ("commercial_use", "derivatives", "share_alike", "attribution", "redistribution")
# Permissions hold only if every input grants them; obligations propagate from any input.
PERMISSIONS = ("commercial_use", "derivatives", "redistribution")
OBLIGATIONS = ("share_alike", "attribution")


def catalogue_entries() -> list[dict]:
    return json.loads(CATALOGUE_PATH.read_text())


def catalogue_load(license_model) -> int:
    """Upsert every catalogue entry into ``license_model`` (the real or the migration's
    historical model). Returns the number of entries."""
    entries = catalogue_entries()
    for entry in entries:
        defaults = {k: v for k, v in entry.items() if k != "spdx_id"}
        license_model.objects.update_or_create(spdx_id=entry["spdx_id"], defaults=defaults)
    return len(entries)


def _norm_url(value: str) -> str:
    v = value.strip().lower()
    v = re.sub(r"^https?://", "", v)
    v = re.sub(r"^www\.", "", v)
    v = re.sub(r"(legalcode(\.[a-z-]+)?|deed\.[a-z-]+)$", "", v)
    return v.rstrip("/")


def _norm_text(value: str) -> str:
    v = value.strip().lower()
    v = v.replace("creative commons", "cc").replace("international", "").replace("generic", "")
    v = v.replace("license", "").replace("licence", "")
    return re.sub(r"[^a-z0-9.]+", "-", v).strip("-")


_CC_URL = re.compile(r"creativecommons\.org/licenses/(?P<kind>by(?:-(?:nc|nd|sa))*)/(?P<version>\d\.\d)")
_CC0_URL = re.compile(r"creativecommons\.org/publicdomain/zero/(?P<version>\d\.\d)")


@dataclass(frozen=True)
class Resolution:
    spdx_id: str | None
    matched_by: str  # "spdx" | "url" | "name" | "alias" | "unresolved"


class Resolver:
    """Maps license identifiers to catalogue SPDX ids. Built once from a list of entries
    (dicts with spdx_id, name, url, aliases)."""

    def __init__(self, entries: list[dict]) -> None:
        self.known = {e["spdx_id"] for e in entries}
        self.by_text: dict[str, str] = {}
        self.by_url: dict[str, str] = {}
        for e in entries:
            for alias in [e["spdx_id"], e["name"], *e.get("aliases", [])]:
                self.by_text.setdefault(_norm_text(alias), e["spdx_id"])
            if e.get("url"):
                self.by_url[_norm_url(e["url"])] = e["spdx_id"]

    def resolve(self, *, identifier: str | None = None, name: str | None = None, url: str | None = None) -> Resolution:
        """URL first (COCO names such as "Attribution License" do not carry a version;
        their URLs do), then the identifier, then the name."""
        if url:
            nu = _norm_url(url)
            if nu in self.by_url:
                return Resolution(self.by_url[nu], "url")
            m = _CC_URL.search(nu)
            if m:
                spdx = f"CC-{m['kind'].upper()}-{m['version']}"
                if spdx in self.known:
                    return Resolution(spdx, "url")
            m = _CC0_URL.search(nu)
            if m and f"CC0-{m['version']}" in self.known:
                return Resolution(f"CC0-{m['version']}", "url")
        for text, how in ((identifier, "spdx"), (name, "name")):
            if not text:
                continue
            if text in self.known:
                return Resolution(text, "spdx")
            hit = self.by_text.get(_norm_text(text))
            if hit:
                return Resolution(hit, how if how == "spdx" and _norm_text(text) == _norm_text(hit) else "alias")
            # "CC BY-NC-SA 4.0" style spellings
            m = re.fullmatch(r"cc-?(by(?:-(?:nc|nd|sa))*)-?(\d(?:\.\d)?)", _norm_text(text))
            if m:
                version = m[2] if "." in m[2] else f"{m[2]}.0"
                spdx = f"CC-{m[1].upper()}-{version}"
                if spdx in self.known:
                    return Resolution(spdx, "alias")
        return Resolution(None, "unresolved")
