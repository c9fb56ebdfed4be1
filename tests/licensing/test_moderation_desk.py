"""The moderators' desk (the queue and the review page in the admin) through Django's test
client: what the queue lists and in how many queries, what the review page shows, that
each action there is the API's (same audit event, same errors), and that nobody but a
moderator gets in."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from datasets.models import AnnotationKind
from datasets.states import VersionState
from licensing.models import FieldStatus, ProvenanceField
from licensing.services import checks_run, moderation_decide, provenance_fields_review
from marketplace.audit.models import AuditEvent
from quality.services import report_compute
from tests import factories
from tests.licensing.conftest import make_version, move, stats
from tests.licensing.desk import DOCUMENT, in_review_with_reports, review_case
from tests.licensing.test_checks import add_image, noise_jpeg
from tests.licensing.test_provenance import GOOD
from tests.quality.app.data import seed_version

pytestmark = pytest.mark.django_db

QUEUE = "/admin/licensing/moderatedversion/"
# The queue's SQL queries: session and user; the moderator's group, asked by each
# permission check (7); the user's model permissions (2); the seller filter's choices; the
# count; the page; then for the whole page at once: its reports, its failed checks and the
# license catalogue (3). Independent of the number of rows: an N+1 changes it.
QUEUE_QUERIES = 20
COLUMNS = ["version", "seller", "kind", "frames", "mask_iou", "tier", "failed_checks", "conflicts", "waiting"]
PNG = b"\x89PNG\r\n\x1a\n"


def signed_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def review_url(version) -> str:
    return f"{QUEUE}{version.pk}/change/"


def text(resp) -> str:
    """The page's words, without tags or runs of white space."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", resp.content.decode()))


def in_review(seller, *, slug=None, **stats_kw):
    v = make_version(seller, statistics=stats(("by-2", 4), **stats_kw), slug=slug)
    provenance_fields = {**GOOD}
    from licensing.services import provenance_update

    provenance_update(version=v, actor=seller.user, fields=provenance_fields)
    return move(v, VersionState.IN_REVIEW, seller.user)


# ---------------------------------------------------------------- the queue


def test_queue_opens_on_versions_in_review_oldest_first_with_its_columns(seller, seller_b, moderator):
    case = review_case(seller=seller, other_seller=seller_b, moderator=moderator)
    resp = signed_in(moderator).get(QUEUE)
    assert resp.status_code == 200
    cl = resp.context["cl"]
    # In review only (the case's earlier version was sent back, its other dataset is
    # published), oldest submission first.
    assert [v.pk for v in cl.result_list] == [case.version.pk, case.conflicted.pk]
    assert case.version.submitted_at < case.conflicted.submitted_at
    assert list(cl.list_display) == COLUMNS
    headers = [re.sub(r"<[^>]+>", "", h).strip().lower() for h in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', resp.content.decode(), re.S)]
    assert [h for h in headers if h] == ["version", "seller", "kind", "frames", "mask iou [95 % ci]", "tier", "failed checks", "terms conflicts", "waiting"]

    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", resp.content.decode().split('id="result_list"')[1].split("<tbody>")[1], re.S)
    reviewed, conflicted = (re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)) for r in rows[:2])
    mask_iou = case.version.quality_reports.get(kind="audit").summary["mask_iou"]
    assert f"{mask_iou['value']:.3f} [{mask_iou['ci'][0]:.3f}, {mask_iou['ci'][1]:.3f}] verified" in reviewed
    assert " fine " in reviewed and " 20 " in reviewed and " Instance masks " in reviewed and seller.org.name in reviewed
    assert "1 warning" in reviewed and "conflicts" not in reviewed
    assert "2 errors" in conflicted and "declared terms too permissive" in conflicted and " 45 " in conflicted
    assert " min" in reviewed  # time waiting


def _queued(seller, *, annotation_kind=AnnotationKind.INSTANCES, audit=False):
    """A version in review with real reports and real checks."""
    dataset = factories.make_dataset(seller=seller, annotation_kind=annotation_kind)
    version = factories.make_version(seller=seller, dataset=dataset)
    seed_version(version)
    version.statistics = stats(("by-2", 20))
    version.save(update_fields=["statistics"])
    for kind in ("intrinsic", "audit") if audit else ("intrinsic",):
        report_compute(version_id=version.pk, kind=kind, device="cpu")
    checks_run(version_id=version.pk)
    return move(version, VersionState.IN_REVIEW, seller.user)


def test_queue_query_count_is_pinned_whatever_the_number_of_rows(seller, seller_b, moderator):
    client = signed_in(moderator)
    _queued(seller, audit=True)
    client.get(QUEUE)
    with CaptureQueriesContext(connection) as one:
        resp = client.get(QUEUE)
    assert len(resp.context["cl"].result_list) == 1
    for owner in (seller, seller_b, seller_b, seller):
        _queued(owner)
    with CaptureQueriesContext(connection) as five:
        resp = client.get(QUEUE)
    assert len(resp.context["cl"].result_list) == 5
    assert len(five) == len(one), "the queue's query count grew with its rows (an N+1):\n" + "\n".join(q["sql"] for q in five.captured_queries)
    assert len(five) == QUEUE_QUERIES, "re-pin QUEUE_QUERIES after a deliberate change:\n" + "\n".join(q["sql"] for q in five.captured_queries)


def test_queue_filters_by_state_seller_severity_and_kind_and_searches(seller, seller_b, moderator):
    unlicensed = make_version(seller, statistics=stats(("by-2", 3), without=2), slug="unlicensed-crates", state=VersionState.IN_REVIEW)
    checks_run(version_id=unlicensed.pk)  # images without a license: a failed error
    video = factories.make_version(seller=seller_b, dataset=factories.make_dataset(seller=seller_b, slug="conveyor-tracks", title="Conveyor tracks", annotation_kind=AnnotationKind.VIDEO))
    video.statistics = stats(("by-2", 3))
    video.save(update_fields=["statistics"])
    from licensing.services import provenance_update

    provenance_update(version=video, actor=seller_b.user, fields={**GOOD, "rai:machineAnnotationTools": [{"name": "SAM"}]})
    move(video, VersionState.IN_REVIEW, seller_b.user)
    checks_run(version_id=video.pk)  # a foundation model without review: a failed warning only
    published = make_version(seller, statistics=stats(("by-2", 3)), slug="published-bins", state=VersionState.PUBLISHED)
    client = signed_in(moderator)

    def listed(**params):
        resp = client.get(QUEUE, params)
        assert resp.status_code == 200, params
        return [v.pk for v in resp.context["cl"].result_list]

    assert listed() == [unlicensed.pk, video.pk]
    assert listed(state="published") == [published.pk]
    assert listed(state="all") == [unlicensed.pk, video.pk, published.pk]
    assert listed(seller=seller_b.org.slug) == [video.pk]
    assert listed(failed="error") == [unlicensed.pk]
    assert listed(failed="warning") == [video.pk]
    assert listed(kind="video") == [video.pk]
    assert listed(q="conveyor") == [video.pk]
    assert listed(q=seller.org.name) == [unlicensed.pk]
    assert listed(q=seller.org.name, state="all") == [unlicensed.pk, published.pk]


# ---------------------------------------------------------------- the review page


def test_review_page_shows_what_a_decision_needs(seller, seller_b, moderator):
    case = review_case(seller=seller, other_seller=seller_b, moderator=moderator)
    client = signed_in(moderator)
    resp = client.get(review_url(case.version))
    assert resp.status_code == 200
    page, html = text(resp), resp.content.decode()

    # Quality: every figure of the summary with its value, interval, sample size and label.
    summary = resp.context["review"]["quality_summary"]
    figures = {k: f for k, f in summary.items() if isinstance(f, dict) and "status" in f}
    assert {"mask_iou", "ap", "agreement"} <= set(figures)
    for name, fig in figures.items():
        row = re.search(rf'<tr class="mod-figure" data-figure="{name}">(.*?)</tr>', html, re.S)
        assert row, name
        cells = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row.group(1)))
        assert f"{fig['value']:.3f}" in cells and fig["status"] in cells and str(fig["n"]) in cells, (name, cells)
        if fig["ci"]:
            assert f"[{fig['ci'][0]:.3f}, {fig['ci'][1]:.3f}]" in cells
    assert figures["mask_iou"]["status"] == "verified" and figures["agreement"]["status"] == "measured"

    # The reports' own plots and overlays, served to the moderator's session as PNG.
    plots = re.findall(r'<img[^>]+src="([^"]+/plots/[^"]+)"', html)
    assert any("overlay" in p for p in plots) and any("iou_histogram" in p for p in plots)
    for src in plots:
        got = client.get(src)
        assert got.status_code == 200 and got["Content-Type"] == "image/png" and b"".join(got.streaming_content).startswith(PNG), src

    # Checks: a table, the failed one first, with its evidence.
    checks = re.findall(r'data-check="([^"]+)"', html)
    assert checks[0] == "foundation_model_unreviewed" and len(checks) == case.version.check_results.count()
    assert "GroundingDINO" in page

    # Provenance: each field with the seller's value, its status and its two actions.
    assert html.count('name="status" value="verified"') == html.count('name="status" value="disputed"') == len(resp.context["review"]["fields"])
    assert "Teleoperated pick-and-place in two labs" in page and "2024-01-01 → 2024-03-31" in page
    # Consent records and documents: downloads of the version's own file.
    document_url = f"{QUEUE}{case.version.pk}/files/{case.document.pk}/"
    assert html.count(document_url) == 2 and "C-17" in page
    got = client.get(document_url)
    assert got.status_code == 200 and b"".join(got.streaming_content) == DOCUMENT and "attachment" in got["Content-Disposition"]

    # Effective terms per license, the commercially usable subset.
    assert "CC-BY-2.0" in page and "Commercially usable subset: 20 of 20 images" in page

    # Context: the earlier version and its decision, the seller's other listing, the audit log.
    assert "request changes by" in page and "the gripper masks are boxes, not outlines" in page
    assert "Drawer opening, wrist camera" in page and review_url(case.other_listing) in html
    assert "provenance.update" in page and "version.in_review" in page

    # The decision form, and nothing blocks approval.
    assert "No gate blocks approval" in page and 'name="decision" value="approve"' in html


def test_review_page_explains_conflicts_and_links_the_files_a_check_names(seller, moderator):
    v = make_version(seller, statistics=stats(("by-2", 30), ("by-nc-sa-2", 12), ("by-nd-2", 2)))
    add_image(v, "img/a.jpg", noise_jpeg(1, {0x8825: {1: "N", 2: (48.0, 8.0, 0.0)}}))
    move(v, VersionState.IN_REVIEW, seller.user)
    checks_run(version_id=v.pk)
    client = signed_in(moderator)
    resp = client.get(review_url(v))
    page, html = text(resp), resp.content.decode()
    checks = re.findall(r'data-check="([^"]+)"', html)
    severities = [c.severity for c in sorted(v.check_results.filter(status="failed"), key=lambda c: checks.index(c.code))]
    assert severities == sorted(severities, key=["error", "warning", "info"].index) and severities[0] == "error"
    assert checks[: len(severities)] == [c for c in checks if c in {r.code for r in v.check_results.filter(status="failed")}]
    # The file the EXIF check names is a download of that file.
    link = re.search(r'<a class="mod-file" href="([^"]+)">img/a.jpg</a>', html)
    assert link
    assert client.get(link.group(1)).status_code == 200
    # Each conflict in words, naming the licenses and their image counts.
    assert "The dataset is declared under CC-BY-4.0, which promises buyers more than its inputs allow." in page
    # (A commercial declaration over a split-licensed version is no conflict: its commercially
    # usable subset is sold on its own; the share-alike obligation it drops is.)
    assert "CC-BY-4.0 does not require share-alike, but CC-BY-NC-SA-2.0 (12 images) do." in page
    assert "CC-BY-ND-2.0 (2 images) forbid derivative works" in page
    assert "Commercially usable subset: 32 of 44 images" in page


# ---------------------------------------------------------------- actions: the API's own


def _events_since(last_id: int) -> list[tuple]:
    """The events written since ``last_id``, as what identifies them beside their object."""
    return [
        (e.action, e.actor_id, e.object_type, e.organization_id, e.reason, e.before, e.after)
        for e in AuditEvent.objects.filter(pk__gt=last_id).order_by("pk")
    ]


def _last_event_id() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


ACTIONS = {
    # name: (state the version starts in, API call, admin form post)
    "verify": ("in_review", ("fields/", {"fields": [{"name": "locations", "status": "verified", "note": "GPS logs checked"}]}), ("fields/", {"name": "locations", "status": "verified", "note": "GPS logs checked"})),
    "dispute": ("in_review", ("fields/", {"fields": [{"name": "locations", "status": "disputed", "note": "logs show US only"}]}), ("fields/", {"name": "locations", "status": "disputed", "note": "logs show US only"})),
    "approve": ("in_review", ("decision/", {"decision": "approve", "reason": "clean"}), ("decision/", {"decision": "approve", "reason": "clean"})),
    "reject": ("in_review", ("decision/", {"decision": "reject", "reason": "resold data"}), ("decision/", {"decision": "reject", "reason": "resold data"})),
    "request_changes": ("in_review", ("decision/", {"decision": "request_changes", "reason": "masks are boxes"}), ("decision/", {"decision": "request_changes", "reason": "masks are boxes"})),
    "suspend": ("published", ("suspend/", {"reason": "DMCA notice"}), ("decision/", {"decision": "suspend", "reason": "DMCA notice"})),
    "reinstate": ("suspended", ("reinstate/", {"reason": "notice withdrawn"}), ("decision/", {"decision": "reinstate", "reason": "notice withdrawn"})),
}


def _in_state(seller, moderator, state: str):
    v = in_review(seller)
    if state in ("published", "suspended"):
        moderation_decide(version=v, actor=moderator.user, decision="approve")
    if state == "suspended":
        from licensing.services import version_suspend

        version_suspend(version=v, actor=moderator.user, reason="setup")
    v.refresh_from_db()
    assert v.state == state
    return v


@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_admin_action_writes_the_same_audit_event_as_its_api_twin(action, seller, seller_b, moderator):
    state, (api_path, api_body), (admin_path, admin_body) = ACTIONS[action]
    by_api, by_admin = _in_state(seller, moderator, state), _in_state(seller_b, moderator, state)
    # Same organization in both events: compare against each version's own owner.
    start = _last_event_id()
    resp = moderator.client.post(f"/api/v1/moderation/versions/{by_api.pk}/{api_path}", api_body, format="json")
    assert resp.status_code == 200, resp.content
    api_events = _events_since(start)
    start = _last_event_id()
    resp = signed_in(moderator).post(f"{QUEUE}{by_admin.pk}/{admin_path}", admin_body)
    assert resp.status_code == 302, text(resp)[:2000]
    admin_events = _events_since(start)
    assert api_events and len(api_events) == len(admin_events)
    for api_event, admin_event in zip(api_events, admin_events):
        assert api_event[3] == seller.org.pk and admin_event[3] == seller_b.org.pk
        assert api_event[:3] + api_event[4:] == admin_event[:3] + admin_event[4:]
    by_api.refresh_from_db()
    by_admin.refresh_from_db()
    assert by_api.state == by_admin.state


def test_a_blocked_approval_shows_the_apis_error_naming_what_blocks_it(seller, moderator):
    # Clean terms, but a required provenance field missing: a failed check of severity error.
    blocked = make_version(seller, statistics=stats(("by-2", 4)), state=VersionState.IN_REVIEW)
    twin = make_version(seller, statistics=stats(("by-2", 4)), state=VersionState.IN_REVIEW)
    for v in (blocked, twin):
        checks_run(version_id=v.pk)
    api = moderator.client.post(f"/api/v1/moderation/versions/{twin.pk}/decision/", {"decision": "approve"}, format="json")
    assert api.status_code == 409
    error = api.json()
    assert error["code"] == "checks_failed" and any(d["location"] == "provenance_missing_fields" for d in error["details"])

    client = signed_in(moderator)
    page = client.get(review_url(blocked))
    gate = re.search(r'<div class="mod-gate mod-blocked">(.*?)</div>', page.content.decode(), re.S).group(1)
    assert error["code"] in gate and all(d["location"] in gate for d in error["details"])

    resp = client.post(f"{QUEUE}{blocked.pk}/decision/", {"decision": "approve", "reason": ""})
    assert resp.status_code == 409
    shown = re.search(r'<div class="mod-error" role="alert">(.*?)</div>', resp.content.decode(), re.S).group(1)
    assert error["code"] in shown and error["message"] in text(resp)
    assert all(d["location"] in shown and d["message"] in text(resp) for d in error["details"])
    blocked.refresh_from_db()
    assert blocked.state == VersionState.IN_REVIEW
    assert not AuditEvent.objects.filter(object_id=str(blocked.pk), action__startswith="moderation.").exists()


def test_terms_gate_and_missing_reason_and_note_are_the_apis_errors(seller, moderator):
    v = make_version(seller, statistics=stats(("by-nc-2", 4)), state=VersionState.IN_REVIEW)
    client = signed_in(moderator)
    resp = client.post(f"{QUEUE}{v.pk}/decision/", {"decision": "approve"})
    assert resp.status_code == 409 and "terms_too_permissive" in text(resp) and "effective_terms.commercial_use" in text(resp)
    resp = client.post(f"{QUEUE}{v.pk}/decision/", {"decision": "reject", "reason": "  "})
    assert resp.status_code == 400 and "reason_required" in text(resp)
    resp = client.post(f"{QUEUE}{v.pk}/fields/", {"name": "locations", "status": "disputed", "note": ""})
    assert resp.status_code == 400
    row = re.search(r'<tr id="field-locations".*?</tr>', resp.content.decode(), re.S).group(0)
    assert "invalid_review" in row and "a dispute needs a note" in row
    assert not ProvenanceField.objects.filter(record__version=v, status=FieldStatus.DISPUTED).exists()
    v.refresh_from_db()
    assert v.state == VersionState.IN_REVIEW


def test_review_page_queries_do_not_grow_with_its_content(seller, seller_b, moderator):
    case = review_case(seller=seller, other_seller=seller_b, moderator=moderator)
    client = signed_in(moderator)
    client.get(review_url(case.version))
    with CaptureQueriesContext(connection) as before:
        client.get(review_url(case.version))
    for _ in range(3):
        earlier = factories.make_version(seller=seller, dataset=case.version.dataset)
        move(earlier, VersionState.IN_REVIEW, seller.user)
        moderation_decide(version=earlier, actor=moderator.user, decision="reject", reason="growth")
        factories.make_dataset(seller=seller)
    provenance_fields_review(version=case.version, actor=moderator.user, reviews=[{"name": n, "status": "verified"} for n in ("locations", "sessions", "human_subjects")])
    report_compute(version_id=case.other_listing.pk, kind="intrinsic")
    with CaptureQueriesContext(connection) as after:
        resp = client.get(review_url(case.version))
    assert len(resp.context["review"]["earlier_versions"]) == 4
    assert len(after) == len(before), "\n".join(q["sql"] for q in after.captured_queries)


# ---------------------------------------------------------------- who gets in


def _pages(version, report_id: int, plot: str, file_id: int) -> list[tuple[str, str, dict]]:
    base = f"{QUEUE}{version.pk}/"
    return [
        ("get", QUEUE, {}),
        ("get", f"{base}change/", {}),
        ("post", f"{base}fields/", {"name": "locations", "status": "verified", "note": "x"}),
        ("post", f"{base}decision/", {"decision": "approve", "reason": "x"}),
        ("get", f"{base}plots/{report_id}/{plot}.png", {}),
        ("get", f"{base}files/{file_id}/", {}),
    ]


@pytest.mark.parametrize("who", ["buyer", "seller", "auditor", "anonymous"])
def test_only_moderators_get_in_on_every_moderation_page(who, seller, buyer, auditor, moderator):
    version, document = in_review_with_reports(seller, factories.make_dataset(seller=seller), reports=("intrinsic",))
    report = version.quality_reports.get(kind="intrinsic")
    pages = _pages(version, report.pk, sorted(report.artifacts["plots"])[0], document.pk)
    # The pages exist and answer a moderator (so the refusals below are refusals).
    mod = signed_in(moderator)
    for method, url, _ in pages:
        if method == "get":
            assert mod.get(url).status_code == 200, url

    client = Client() if who == "anonymous" else signed_in({"buyer": buyer, "seller": seller, "auditor": auditor}[who])
    start = _last_event_id()
    for method, url, body in pages:
        resp = getattr(client, method)(url, body)
        if who == "anonymous":
            assert resp.status_code == 302 and resp["Location"].startswith("/admin/login/"), (method, url, resp.status_code)
        else:
            assert resp.status_code == 403, (who, method, url, resp.status_code)
    version.refresh_from_db()
    assert version.state == VersionState.IN_REVIEW
    assert _events_since(start) == []
    assert not ProvenanceField.objects.filter(record__version=version).exclude(status=FieldStatus.SELF_DECLARED).exists()
