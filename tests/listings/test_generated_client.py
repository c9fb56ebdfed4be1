"""A Python client generated from the served OpenAPI schema (openapi-python-client) runs
the buyer flow against a live server: log in, search with typed filters, open the
listing, order. The schema passes openapi-spec-validator."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from tests import factories
from tests.listings.catalogue import build_catalogue

BIN = Path(sys.executable).parent
PACKAGE = "market_client"


def _schema(live_server) -> dict:
    with urllib.request.urlopen(f"{live_server.url}/api/v1/schema/?format=json", timeout=30) as resp:
        return json.loads(resp.read())


def _generate(schema: dict, out: Path):
    (out / "schema.json").write_text(json.dumps(schema))
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # its post-hooks run ruff
    proc = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--path", str(out / "schema.json"), "--meta", "none", "--output-path", str(out / PACKAGE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sys.path.insert(0, str(out))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]
    return importlib.import_module(PACKAGE)


@pytest.mark.timeout(600)
@pytest.mark.django_db(transaction=True)
def test_generated_client_runs_the_buyer_flow(live_server, tmp_path):
    build_catalogue(
        seller_a=factories.make_seller(username="gc-seller-a"),
        seller_b=factories.make_seller(username="gc-seller-b"),
        moderator=factories.make_moderator(username="gc-moderator"),
    )
    buyer = factories.make_buyer(username="gc-buyer")
    schema = _schema(live_server)
    validate(schema)  # openapi-spec-validator
    _generate(schema, tmp_path)
    try:
        from market_client import AuthenticatedClient, Client
        from market_client.api.auth import auth_login_create
        from market_client.api.listings import listings_orders_create, listings_retrieve, listings_search
        from market_client.models import LoginInputRequest, OrderCreateInputRequest
        from market_client.models.listings_search_annotation_kind_item import ListingsSearchAnnotationKindItem
        from market_client.models.listings_search_ordering import ListingsSearchOrdering
        from market_client.models.listings_search_sensor_item import ListingsSearchSensorItem
        from market_client.models.listings_search_tier_item import ListingsSearchTierItem

        # The parameters are typed: enumerations refuse unknown values before anything is sent.
        for enum, bad in ((ListingsSearchOrdering, "-price"), (ListingsSearchSensorItem, "sonar"), (ListingsSearchTierItem, "gold"), (ListingsSearchAnnotationKindItem, "images")):
            with pytest.raises(ValueError):
                enum(bad)
        hints = listings_search.sync.__annotations__
        assert "int" in str(hints["min_embodiments"]) and "float" in str(hints["min_occlusion"]) and "bool" in str(hints["has_tracks"])

        login = auth_login_create.sync(client=Client(base_url=live_server.url), body=LoginInputRequest(username="gc-buyer", password=factories.PASSWORD))
        client = AuthenticatedClient(base_url=live_server.url, token=login.token, prefix="Token", raise_on_unexpected_status=True)

        page = listings_search.sync(
            client=client,
            embodiment=["UR5e"],
            sensor=[ListingsSearchSensorItem.DEPTH, ListingsSearchSensorItem.THERMAL],
            annotation_kind=[ListingsSearchAnnotationKindItem.VIDEO],
            min_occlusion=0.5,
            min_instances_per_frame=4.0,
            min_embodiments=2,
            has_tracks=True,
            ordering=ListingsSearchOrdering.DIVERSITY,
        )
        assert [r.slug for r in page.results] == ["warehouse-pick"] and page.count == 1
        found = page.results[0]
        assert found.annotation_kind.value == "video" and [s.value for s in found.sensors] == ["rgb", "depth"]
        assert found.occlusion == 0.6 and found.embodiment_count == 2
        # the figures behind them are typed too
        assert found.scene.instances_per_frame.p90 == 12 and found.scene.sizes.large == 0.3
        assert found.scene.splits["train"].occlusion == 0.6
        assert found.coverage.embodiments["ur5e"].episodes == 10
        assert found.diversity_inputs.frames_per_embodiment["ur5e"] == 1000 and found.diversity_inputs.source.value == "annotations"

        detail = listings_retrieve.sync(slug=found.slug, client=client)
        assert detail.slug == "warehouse-pick" and detail.version == found.version

        order = listings_orders_create.sync(
            slug=detail.slug,
            client=client,
            body=OrderCreateInputRequest(license_=detail.licenses[0], version=detail.version),
            idempotency_key="gc-order-1",
        )
        assert order.state == "pending_payment" and order.license_ == "CC-BY-NC-ND-4.0"
        assert buyer.org.orders.get().pk == order.id
    finally:
        sys.path.remove(str(tmp_path))
