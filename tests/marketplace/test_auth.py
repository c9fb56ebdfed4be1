from datetime import timedelta

import pytest
from django.utils import timezone

from marketplace.accounts.models import ApiToken
from marketplace.accounts.services import token_hash
from tests.factories import PASSWORD, make_seller

pytestmark = pytest.mark.django_db


def login(client, username, password=PASSWORD):
    return client.post("/api/v1/auth/login/", {"username": username, "password": password}, format="json")


def test_register_login_me_logout(api_client):
    resp = api_client.post(
        "/api/v1/auth/register/",
        {"username": "newseller", "password": "a-long-enough-secret", "organization": "Robo Labs", "role": "seller"},
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    resp = login(api_client, "newseller", "a-long-enough-secret")
    assert resp.status_code == 200
    token = resp.json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = api_client.get("/api/v1/me").json()
    assert me["username"] == "newseller"
    # The registering user is the new organization's admin, with the role it asked for.
    assert me["organizations"] == [
        {"slug": "robo-labs", "name": "Robo Labs", "role": "admin"},
        {"slug": "robo-labs", "name": "Robo Labs", "role": "seller"},
    ]
    assert api_client.post("/api/v1/auth/logout/").status_code == 204
    assert api_client.get("/api/v1/me").status_code == 401


def test_token_is_stored_hashed(api_client):
    actor = make_seller(username="hashcheck")
    token = login(api_client, "hashcheck").json()["token"]
    stored = ApiToken.objects.filter(user=actor.user).values_list("key_hash", flat=True)
    assert token not in stored
    assert token_hash(token) in stored
    assert all(len(h) == 64 for h in stored)


def test_wrong_password_has_the_error_shape(api_client):
    make_seller(username="someone")
    resp = login(api_client, "someone", "wrong-password")
    assert resp.status_code == 400
    body = resp.json()
    assert body["code"] == "invalid_credentials" and body["message"] and body["details"] == []


def test_expired_token_is_refused(api_client):
    actor = make_seller()
    ApiToken.objects.filter(user=actor.user).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert actor.client.get("/api/v1/me").status_code == 401


def test_revoked_token_is_refused():
    actor = make_seller()
    assert actor.client.get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(user=actor.user).update(revoked_at=timezone.now())
    assert actor.client.get("/api/v1/me").status_code == 401


def test_password_change_revokes_tokens(api_client):
    actor = make_seller(username="changer")
    resp = actor.client.post("/api/v1/auth/password/", {"old_password": PASSWORD, "new_password": "another-long-secret-42"}, format="json")
    assert resp.status_code == 204
    assert actor.client.get("/api/v1/me").status_code == 401


def test_password_change_outside_the_api_also_kills_tokens():
    actor = make_seller()
    actor.user.set_password("changed-in-the-admin-99")
    actor.user.save()
    assert actor.client.get("/api/v1/me").status_code == 401


def test_garbage_token_is_401(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    resp = api_client.get("/api/v1/me")
    assert resp.status_code == 401
    assert set(resp.json()) == {"code", "message", "details"}


def test_registration_validation_errors_are_located(api_client):
    resp = api_client.post("/api/v1/auth/register/", {"username": "x", "password": "short", "role": "admin"}, format="json")
    assert resp.status_code == 400
    locations = {d["location"] for d in resp.json()["details"]}
    assert {"username", "organization", "role"} <= locations
