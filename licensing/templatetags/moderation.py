"""How the moderators' pages write figures, provenance values and check evidence."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from licensing.selectors import EVIDENCE_FILE_KEYS

register = template.Library()

LIST_SHOWN = 20  # items of a list of evidence shown before "and N more"
# Constant fragments (no value in them).
NONE = mark_safe('<span class="mod-none">—</span>')
NONE_WORD = mark_safe('<span class="mod-none">none</span>')
NOT_DECLARED = mark_safe('<em class="mod-none">not declared</em>')
YES = mark_safe('<span class="mod-yes">✓ yes</span>')
NO = mark_safe('<span class="mod-no">✗ no</span>')


@register.filter
def number(value: Any) -> str:
    """A figure's number: three decimals for a fraction, as is for a count."""
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3f}"
    return str(value)


@register.filter
def words(code: str) -> str:
    return str(code).replace("_", " ")


@register.filter
def figure_html(fig: dict | None) -> SafeString:
    """``0.873 [0.851, 0.894] verified``: the value, its 95 % interval when it has one, and its label."""
    if not fig:
        return NONE
    ci = fig.get("ci")
    interval = format_html(' <span class="mod-ci">[{}, {}]</span>', number(ci[0]), number(ci[1])) if ci else ""
    return format_html('{}{} {}', number(fig["value"]), interval, status_badge(fig["status"]))


@register.filter
def status_badge(status: str) -> SafeString:
    return format_html('<span class="mod-badge mod-{}">{}</span>', str(status).replace(" ", "-"), words(status))


@register.filter
def term_mark(granted: Any) -> SafeString:
    return YES if granted else NO


@register.filter
def provenance_value(value: Any) -> SafeString:
    """A seller's provenance value in words: lists as lists, a time frame as start → end,
    a model or source as its parts."""
    if value is None or value == "" or value == [] or value == {}:
        return NOT_DECLARED
    if isinstance(value, bool):
        return format_html("{}", "yes" if value else "no")
    if isinstance(value, dict):
        if set(value) == {"start", "end"}:
            return format_html("{} → {}", value["start"], value["end"])
        return format_html_join("; ", "{}: {}", ((k, number(v) if not isinstance(v, str) else v) for k, v in value.items()))
    if isinstance(value, list):
        return format_html('<ul class="mod-plain">{}</ul>', format_html_join("", "<li>{}</li>", ((provenance_value(v),) for v in value)))
    return format_html("{}", number(value) if not isinstance(value, str) else value)


@register.filter
def summary_value(value: Any) -> SafeString:
    """A value of a report's summary: a figure as :func:`figure_html`, a mapping as its
    entries (zeros last), a list as its items, a number as :func:`number`."""
    if isinstance(value, dict) and "value" in value and "status" in value:
        return figure_html(value)
    if isinstance(value, dict):
        if not value:
            return NONE_WORD
        entries = sorted(value.items(), key=lambda kv: _is_zero(kv[1]))
        return format_html_join("; ", "{}: {}", ((words(k), summary_value(v)) for k, v in entries))
    if isinstance(value, list):
        return format_html_join(", ", "{}", ((summary_value(v),) for v in value[:LIST_SHOWN])) if value else NONE_WORD
    return format_html("{}", number(value) if not isinstance(value, str) else value)


def _is_zero(value: Any) -> bool:
    inner = value.get("value") if isinstance(value, dict) else value
    return isinstance(inner, (int, float)) and not isinstance(inner, bool) and inner == 0


# What the two colours of an overlay are, per report kind (the reference's colour first).
OVERLAY_LEGENDS = {"agreement": ("first annotation pass", "second annotation pass")}
DEFAULT_LEGEND = ("reference masks", "seller's masks")


@register.simple_tag
def overlay_legend(kind: str) -> SafeString:
    first, second = OVERLAY_LEGENDS.get(kind, DEFAULT_LEGEND)
    return format_html('<span class="mod-swatch mod-swatch-ref"></span> {} <span class="mod-swatch mod-swatch-seller"></span> {}', first, second)


@register.filter
def compact_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= 300 else text[:297] + "..."


class _Evidence:
    """Renders one check's evidence: nested values as definition lists and lists, the files
    and frames it names as links (to the file, to the overlay of that image), the
    provenance fields it names as links to their row, another listing it names as a link
    to that listing."""

    def __init__(self, review: dict) -> None:
        self.version_id = review["version"].pk
        self.files = review["evidence_files"]
        self.overlays = review["overlays_by_image"]

    def render(self, value: Any, key: str | None = None) -> SafeString:
        if isinstance(value, dict) and "value" in value and "status" in value:
            return figure_html(value)
        if isinstance(value, dict):
            if not value:
                return NONE
            return format_html('<dl class="mod-evidence">{}</dl>', format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((words(k), self.render(v, k)) for k, v in value.items())))
        if isinstance(value, list):
            if not value:
                return NONE_WORD
            shown = value[:LIST_SHOWN]
            more = format_html(' <span class="mod-muted">and {} more</span>', len(value) - LIST_SHOWN) if len(value) > LIST_SHOWN else ""
            item_key = key[:-1] if key and key.endswith("s") else key  # image_ids -> image_id
            if all(not isinstance(v, (dict, list)) for v in shown):
                return format_html("{}{}", format_html_join(", ", "{}", ((self.render(v, item_key),) for v in shown)), more)
            return format_html('<ul class="mod-plain">{}</ul>{}', format_html_join("", "<li>{}</li>", ((self.render(v, item_key),) for v in shown)), more)
        return self.scalar(value, key)

    def scalar(self, value: Any, key: str | None) -> SafeString:
        if key in EVIDENCE_FILE_KEYS and isinstance(value, str) and value in self.files:
            url = reverse("admin:licensing_moderatedversion_file", args=[self.version_id, self.files[value]])
            return format_html('<a class="mod-file" href="{}">{}</a>', url, value)
        if key == "missing" and isinstance(value, str):
            return format_html('<a href="#field-{}">{}</a>', value, value)
        if key == "image_id" and str(value) in self.overlays:
            report_id, plot = self.overlays[str(value)]
            url = reverse("admin:licensing_moderatedversion_plot", args=[self.version_id, report_id, plot])
            return format_html('<a class="mod-frame" href="{}">image {}</a>', url, value)
        if key == "listing" and isinstance(value, str):
            try:
                return format_html('<a href="{}">{}</a>', reverse("listing-detail", kwargs={"slug": value}), value)
            except NoReverseMatch:
                return format_html("{}", value)
        return format_html("{}", number(value) if not isinstance(value, str) else value)


@register.simple_tag
def evidence_html(evidence: Any, review: dict) -> SafeString:
    return _Evidence(review).render(evidence)
