"""Schemathesis against the project's own OpenAPI schema (/api/v1/schema/), in process
through the WSGI app, as every role: no 5xx, no response that breaks the schema.

Path parameters are drawn from the scenario's real objects (every owner and state), so
the fuzzer reaches the views' object code, not only their 404s. Every call runs in a
savepoint rolled back afterwards, so one example cannot change what the next one sees.

CI runs FUZZ_EXAMPLES (default 3) examples per operation, role and generation mode
(positive and negative); ``make fuzz`` runs many more.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.security.scenario import ROLES

pytestmark = pytest.mark.django_db
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
MODES = [GenerationMode(m) for m in os.environ.get("FUZZ_MODES", "positive,negative").split(",")]
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture
def wsgi_app():
    """The WSGI app, without the per-request connection recycling (the test's transaction
    lives on the connection, as with Django's test client)."""
    from marketplace.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def path_values(scenario) -> dict[str, list]:
    """Candidate values for each path parameter name, from every object of the scenario."""
    values: dict[str, list] = {}
    for objs in scenario.objects.values():
        for obj in objs:
            for name, value in obj.params.items():
                if value not in values.setdefault(name, []):
                    values[name].append(value)
    # The upload/order/entitlement/evaluation ids are named after their kind in the URLs.
    values["upload_id"] = [str(o.params["id"]) for o in scenario.of("upload")]
    values["kind"] = ["intrinsic", "audit", "agreement"]
    return values


def case_strategy(op, mode, values):
    names = [p.name for p in op.iter_parameters() if p.location == "path"]
    if not names:
        return op.as_strategy(generation_mode=mode)
    missing = [n for n in names if not values.get(n)]
    if missing or mode == GenerationMode.NEGATIVE:
        return op.as_strategy(generation_mode=mode)
    combos = st.fixed_dictionaries({n: st.sampled_from(values[n]) for n in names})
    return combos.flatmap(lambda params: op.as_strategy(generation_mode=mode, path_parameters=params))


@pytest.mark.parametrize("role", ROLES)
def test_fuzz_as_role(role, scenario, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", wsgi_app)
    token = scenario.actors[role].token
    headers = {"Authorization": f"Token {token}"} if token else {}
    values = path_values(scenario)
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) > 20, "the schema lists too few operations"
    for op in operations:
        if op.path.endswith("/logout/") or op.path.endswith("/password/"):
            continue  # would revoke this role's token for the rest of the run (covered in tests/marketplace)
        has_input = any(p.location in ("query", "header") for p in op.iter_parameters()) or bool(list(op.body))
        for mode in MODES:
            if mode == GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid but the path, which is drawn from real objects

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=case_strategy(op, mode, values))
            def run(case):
                with transaction.atomic():
                    try:
                        response = case.call(headers=headers)
                        case.validate_response(response, checks=CHECKS)
                    finally:
                        transaction.set_rollback(True)

            try:
                run()
            except Unsatisfiable:
                continue  # no invalid value exists for this operation's inputs
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure, then fail once
                parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
                failures.append(f"{op.label} [{mode.value}]: " + " | ".join(str(e).strip()[:700] for e in parts))
    assert not failures, f"{len(failures)} operation(s) failed as {role}:\n\n" + "\n\n".join(failures)
