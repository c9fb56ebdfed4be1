"""The authorization matrix: every /api/v1/ route and method x every role x objects of
each owner and state, compared with the declared policy (tests/security/policy.py).

A route the resolver knows without a policy entry fails here, so a new route cannot land
without someone deciding who may call it.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.security.conftest import call
from tests.security.policy import POLICY, allowed
from tests.security.routes import api_operations, api_routes
from tests.security.scenario import ROLES

pytestmark = pytest.mark.django_db
DENIED = (401, 403, 404)
SIGNED_URL = re.compile(r"X-Amz-Signature|X-Amz-Credential|/files/[A-Za-z0-9_\-:.]{20,}")


def _storage_keys() -> list[str]:
    from datasets.models import DatasetFile, UploadSession

    keys = list(DatasetFile.objects.values_list("storage_key", flat=True))
    keys += list(UploadSession.objects.values_list("storage_key", flat=True))
    return [k for k in keys if k]


def url_for(route, obj, rule) -> str:
    kwargs = {}
    for name in route.params:
        source = {**(obj.params if obj else {}), **rule.extra}
        assert name in source, f"{route.name}: no value for URL parameter {name!r} from {obj!r}"
        kwargs[name] = source[name]
    return reverse(route.name, kwargs=kwargs)


def check_cell(scenario, route, method, rule, role, obj, storage_keys) -> str | None:
    """None when the answer matches the policy, else a one-line description of the mismatch."""
    client = scenario.actors[role].client
    url = url_for(route, obj, rule)
    body = rule.body(obj) if rule.body else None
    resp = call(client, method, url, body, **rule.headers)
    text = resp.content.decode(errors="replace")
    want = allowed(rule.roles[role], role, obj)
    where = f"{method} {url} as {role} on {obj!r}: {resp.status_code}"
    if resp.status_code >= 500:
        return f"{where} (server error)"
    if want:
        if resp.status_code in DENIED:
            return f"{where}, policy says allowed"
        if method == "GET" and rule.get_2xx and not 200 <= resp.status_code < 300:
            return f"{where}, an allowed GET must answer 2xx"
    else:
        if resp.status_code not in DENIED or (resp.status_code == 401 and role != "anonymous"):
            return f"{where}, policy says denied (403/404)"
        if SIGNED_URL.search(text):
            return f"{where}: a denied answer carries a signed URL"
        for key in storage_keys:
            if key in text:
                return f"{where}: a denied answer names storage key {key!r}"
        if obj is not None:
            for marker in obj.markers:
                if marker in text:
                    return f"{where}: a denied answer shows {marker!r}"
    if '"storage_key"' in text:
        return f"{where}: the body exposes a storage_key field"
    for other, marker in scenario.all_markers():
        if marker in text and not scenario.may_see(role, other):
            return f"{where}: the body shows {other!r} ({marker!r}), which {role} may not see"
    return None


def test_every_route_has_a_policy():
    missing = sorted(f"{m} {r.name} ({r.route})" for r, m in api_operations() if (r.name, m) not in POLICY)
    assert not missing, "routes without a policy entry in tests/security/policy.py:\n" + "\n".join(missing)


def test_policy_has_no_stale_entries():
    known = {(r.name, m) for r, m in api_operations()}
    stale = sorted(f"{m} {name}" for name, m in POLICY if (name, m) not in known)
    assert not stale, "policy entries for routes that do not exist:\n" + "\n".join(stale)


@pytest.mark.parametrize("route", api_routes(), ids=lambda r: r.name)
def test_route_matches_policy(route, scenario):
    storage_keys = _storage_keys()
    problems = []
    for method in route.methods:
        rule = POLICY.get((route.name, method))
        assert rule is not None, f"{method} {route.name} has no policy entry (tests/security/policy.py)"
        targets = scenario.of(rule.target) if rule.target else [None]
        assert targets, f"the scenario has no {rule.target!r} objects for {route.name}"
        for role in ROLES:
            for obj in targets:
                problem = check_cell(scenario, route, method, rule, role, obj, storage_keys)
                if problem:
                    problems.append(problem)
    assert not problems, f"{len(problems)} cell(s) differ from the policy:\n" + "\n".join(problems[:40])


def test_search_never_lists_drafts_or_hidden_versions(scenario):
    """Search as every role: only published listings, whoever asks."""
    for role in ROLES:
        resp = call(scenario.actors[role].client, "GET", "/api/v1/listings/?page_size=100")
        assert resp.status_code == 200, (role, resp.status_code)
        text = resp.content.decode()
        for obj in scenario.of("dataset"):
            for marker in obj.markers:
                assert (marker in text) == (obj.state == "published"), f"{role}: {obj!r} {'missing from' if obj.state == 'published' else 'leaks into'} search"
