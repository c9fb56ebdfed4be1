"""The API's JSON renderer writes DRF's bytes: search pages and listing details compared with
DRF's own renderer, and the values where orjson and the standard library differ."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from rest_framework.renderers import JSONRenderer

from marketplace.core.renderers import FastJSONRenderer
from tests.listings.catalogue import VISIBLE

pytestmark = pytest.mark.django_db

URL = "/api/v1/listings/"


def reference(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize(
    "query",
    ["", "ordering=price", "q=kitchen", "embodiment=humanoid&ordering=-mask_iou", "tier=fine&tier=premium&ordering=quality_adjusted_cost", "page=1&page_size=1"],
)
def test_search_pages_are_drf_bytes(api_client, catalogue, query):
    # An anonymous JSON GET is answered outside DRF's request cycle, its page spliced from
    # kept card bytes; an Accept header with a parameter goes through DRF's cycle, whose
    # data DRF's own renderer writes here.
    resp = api_client.get(f"{URL}?{query}")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/json"
    drf = api_client.get(f"{URL}?{query}", HTTP_ACCEPT="application/json; q=0.9")
    assert drf.status_code == 200 and drf.data["results"]
    assert resp.content == reference(drf.data) == drf.content
    assert list(resp.items()) == list(drf.items())
    again = api_client.get(f"{URL}?{query}")  # the cards kept now
    assert again.content == resp.content


def test_search_errors_are_drf_answers(api_client, catalogue):
    for query in ("min_mask_iou=2&tier=gold", "page=9999", "page=abc&page_size=5", "colour=red"):
        resp = api_client.get(f"{URL}?{query}")
        drf = api_client.get(f"{URL}?{query}", HTTP_ACCEPT="application/json; q=0.9")
        assert resp.status_code == drf.status_code and resp.status_code in (400, 404), query
        assert resp.content == drf.content == reference(resp.data), query


def test_listing_details_are_drf_bytes(api_client, catalogue):
    for slug in VISIBLE:
        resp = api_client.get(f"{URL}{slug}/")
        assert resp.status_code == 200, slug
        assert resp.content == reference(resp.data), slug


def test_errors_are_drf_bytes(api_client, catalogue):
    resp = api_client.get(f"{URL}?min_mask_iou=2&tier=gold")
    assert resp.status_code == 400
    assert resp.content == reference(resp.data)


@pytest.mark.parametrize(
    "value",
    [
        {"small": 1e-05, "smaller": 3.820447047989043e-06, "tiny": 5e-324, "negative": -7e-05},
        [0.0001, 0.1, 1 / 3, 1e16, 1.2345678901234568e17, 1e22, -0.0, 100.0],
        {"price": decimal.Decimal("12.50"), "fee": decimal.Decimal("0.00001")},
        {"at": datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC), "day": datetime.date(2026, 1, 2), "time": datetime.time(1, 2, 3, 4567)},
        {"naive": datetime.datetime(2026, 1, 2, 3, 4, 5), "span": datetime.timedelta(seconds=5.5), "id": uuid.UUID(int=7)},
        {"big": 2**70, "keys": {1: "one", None: "none", 2.5: "half"}},
        {"text": "line\u2028separator\u2029paragraph \x00\x1f\x7f \"quoted\" \\ / é 😀"},
        {"flags": [True, False, None], "nested": [[], {}, [{"a": [1, 2.5, "x"]}]]},
        1e-07,
        "0.0000 and 1e-6 inside a string",
    ],
)
def test_values_where_encoders_differ_are_written_as_drf_writes_them(value):
    assert FastJSONRenderer().render(value) == reference(value)


def test_an_indented_response_is_drf_bytes():
    value = {"a": [1, 2.5], "b": "x"}
    fast = FastJSONRenderer().render(value, "application/json; indent=4")
    assert fast == JSONRenderer().render(value, "application/json; indent=4") and b"\n    " in fast
