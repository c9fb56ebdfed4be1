"""Resource limits (OWASP API4): each answers with a clear error in the API's error shape
({"code", "message", "details"}), never an HTML page or a silent truncation of work."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from rest_framework.throttling import SimpleRateThrottle

from tests import factories

pytestmark = pytest.mark.django_db


def error(resp, status: int) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.content[:300])
    assert resp["Content-Type"].startswith("application/json"), resp["Content-Type"]
    body = resp.json()
    assert set(body) == {"code", "message", "details"} and body["code"] and body["message"], body
    return body


@override_settings(PAGE_SIZE_MAX=5)
def test_page_size_is_capped(seller):
    for n in range(7):
        factories.make_dataset(seller=seller, slug=f"cap-{n}")  # one audit event each
    resp = seller.client.get("/api/v1/audit-events/?page_size=100000")
    assert resp.status_code == 200
    body = resp.json()
    assert len(body["results"]) == 5 and body["count"] >= 7 and body["next"]
    resp = seller.client.get("/api/v1/listings/?page_size=100000")
    assert resp.status_code == 200 and "page_size" not in resp.content.decode()
    # A page past the end is a clear 404, not an empty 200 or an HTML page.
    error(seller.client.get("/api/v1/audit-events/?page=99"), 404)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_request_body_over_the_limit_is_refused(seller):
    big = json.dumps({"slug": "big", "title": "x" * 5000, "annotation_license": "CC-BY-4.0"})
    resp = seller.client.post("/api/v1/datasets/", big, content_type="application/json")
    body = error(resp, 413)
    assert body["code"] == "body_too_large" and "2048" in body["message"]


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=50)
def test_too_many_query_fields_is_refused(seller):
    query = "&".join(f"f{n}=1" for n in range(200))
    assert error(seller.client.get(f"/api/v1/audit-events/?{query}"), 400)["code"] == "too_many_fields"


@override_settings(DATASETS_LIMITS={"max_parts": 10, "min_part_size": 1024, "default_part_size": 1024})
def test_upload_part_count_is_capped(seller):
    version = factories.make_version(seller=seller)
    body = {"role": "annotations", "name": "a.json", "size": 1024 * 11, "sha256": "0" * 64, "part_size": 1024}
    err = error(seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json"), 413)
    assert err["code"] == "too_many_parts"


@override_settings(DATASETS_LIMITS={"org_quota": 10_000, "max_file_size": 10**9})
def test_organization_storage_quota(seller):
    version = factories.make_version(seller=seller)
    ok = {"role": "annotations", "name": "a.json", "size": 6000, "sha256": "0" * 64}
    assert seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", ok, format="json").status_code == 201
    more = {**ok, "name": "b.json"}  # 6000 + 6000 pending > 10000
    err = error(seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", more, format="json"), 413)
    assert err["code"] == "quota_exceeded"


@override_settings(DATASETS_LIMITS={"max_file_size": 1000})
def test_file_size_limit(seller):
    version = factories.make_version(seller=seller)
    body = {"role": "annotations", "name": "a.json", "size": 1001, "sha256": "0" * 64}
    assert error(seller.client.post(f"/api/v1/versions/{version.pk}/uploads/", body, format="json"), 413)["code"] == "file_too_large"


def test_login_is_throttled(api_client, seller, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "auth": "3/min"})
    for _ in range(3):
        assert api_client.post("/api/v1/auth/login/", {"username": "nobody", "password": "wrong"}, format="json").status_code == 400
    err = error(api_client.post("/api/v1/auth/login/", {"username": "nobody", "password": "wrong"}, format="json"), 429)
    assert err["code"] == "throttled" and err["details"][0]["code"] == "throttled"


def test_user_rate_is_throttled(seller, monkeypatch):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, "user": "5/min"})
    codes = [seller.client.get("/api/v1/me").status_code for _ in range(6)]
    assert codes[:5] == [200] * 5
    assert error(seller.client.get("/api/v1/me"), 429)["code"] == "throttled"
