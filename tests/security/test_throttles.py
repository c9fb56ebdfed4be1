"""Rate limits a client cannot dodge: keyed on the address the trusted proxies saw (never
on a header the client writes), the admin login held like the API's, and a back-off per
account and client address after failed sign-ins that a stranger cannot turn into a
lock-out of the account's owner."""

from __future__ import annotations

import ipaddress
import re

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from marketplace.accounts import login_guard
from marketplace.core.throttling import forwarded_client
from tests import factories

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login/"
WRONG = {"username": "seller-a", "password": "not-the-password"}


def rates(monkeypatch, **scopes):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {**SimpleRateThrottle.THROTTLE_RATES, **scopes})


def spoofed(n: int) -> dict:
    return {"HTTP_X_FORWARDED_FOR": f"198.51.100.{n % 250}, 203.0.113.{n % 250}"}


def test_anonymous_rate_holds_when_x_forwarded_for_changes_on_every_request(api_client, monkeypatch):
    rates(monkeypatch, anon="4/min")
    codes = [api_client.get("/api/v1/listings/", **spoofed(n)).status_code for n in range(6)]
    assert codes == [200] * 4 + [429] * 2
    # Another client (another TCP peer) has its own bucket.
    assert api_client.get("/api/v1/listings/", REMOTE_ADDR="192.0.2.77").status_code == 200


def test_login_rate_holds_when_x_forwarded_for_changes_on_every_request(api_client, seller, monkeypatch):
    rates(monkeypatch, auth="3/min")
    codes = [api_client.post(LOGIN, {"username": f"nobody{n}", "password": "x"}, format="json", **spoofed(n)).status_code for n in range(5)]
    assert codes == [400, 400, 400, 429, 429]
    body = api_client.post(LOGIN, {"username": "seller-a", "password": factories.PASSWORD}, format="json", **spoofed(99)).json()
    assert body["code"] == "throttled"


@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_one_trusted_proxy_the_hop_it_wrote_is_the_client(api_client, monkeypatch):
    rates(monkeypatch, anon="2/min")
    # Two real clients behind the proxy: separate buckets.
    for client_ip in ("198.51.100.1", "198.51.100.2"):
        codes = [api_client.get("/api/v1/listings/", HTTP_X_FORWARDED_FOR=client_ip).status_code for _ in range(3)]
        assert codes == [200, 200, 429], client_ip
    # A client that prepends addresses of its own is still keyed on the hop the proxy appended.
    forged = [api_client.get("/api/v1/listings/", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}, 198.51.100.3").status_code for n in range(3)]
    assert forged == [200, 200, 429]


def test_admin_login_is_throttled_and_shares_the_api_login_bucket(api_client, db, monkeypatch):
    rates(monkeypatch, auth="3/min")
    browser = Client()
    assert browser.get("/admin/login/").status_code == 200  # showing the form costs nothing
    codes = [browser.post("/admin/login/", {"username": f"someone{n}", "password": "x"}, **spoofed(n)).status_code for n in range(3)]
    assert codes == [200, 200, 200]  # the form again, with its error
    refused = browser.post("/admin/login/", {"username": "someone", "password": "x"}, **spoofed(7))
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # The API login from the same address draws on the same bucket.
    assert api_client.post(LOGIN, {"username": "x", "password": "y"}, format="json").status_code == 429


@override_settings(ACCOUNTS_LOGIN_BACKOFF={"free_failures": 2, "base_seconds": 30, "max_seconds": 100, "forget_after_seconds": 3600})
def test_failed_logins_back_off_exponentially_per_account_and_client(api_client, seller, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(login_guard, "_now", lambda: now[0])
    attacker = {"REMOTE_ADDR": "192.0.2.66"}

    def login(password, **extra):
        return api_client.post(LOGIN, {"username": "seller-a", "password": password}, format="json", **extra)

    assert [login("wrong", **attacker).status_code for _ in range(2)] == [400, 400]  # the free ones; then a wait
    waits = []
    for _ in range(4):
        refused = login(factories.PASSWORD, **attacker)  # refused before the password is checked
        assert refused.status_code == 429
        body = refused.json()
        assert body["code"] == "login_backoff" and body["details"][0]["location"] == "username"
        waits.append(int(refused["Retry-After"]))
        now[0] += waits[-1]
        assert login("wrong", **attacker).status_code == 400  # the wait is over: one more try, wrong
    assert waits == [30, 60, 100, 100]  # doubling, capped

    # The account's owner, from their own address, signs in at once: no lock-out.
    owner = login(factories.PASSWORD, REMOTE_ADDR="198.51.100.10")
    assert owner.status_code == 200 and owner.json()["token"]

    # A success clears the attacker-side record too, once its wait is over.
    now[0] += 100
    assert login(factories.PASSWORD, **attacker).status_code == 200
    assert [login("wrong", **attacker).status_code for _ in range(2)] == [400, 400]
    assert login(factories.PASSWORD, **attacker).status_code == 429


@override_settings(ACCOUNTS_LOGIN_BACKOFF={"free_failures": 1, "base_seconds": 60, "max_seconds": 60, "forget_after_seconds": 3600})
def test_admin_login_failures_count_toward_the_same_back_off(seller, db):
    staff = factories.make_moderator(username="desk-mod")
    browser = Client()
    assert browser.post("/admin/login/", {"username": "desk-mod", "password": "wrong"}).status_code == 200
    refused = browser.post("/admin/login/", {"username": "desk-mod", "password": factories.PASSWORD})
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    api = APIClient().post(LOGIN, {"username": "desk-mod", "password": factories.PASSWORD}, format="json")
    assert api.status_code == 429 and api.json()["code"] == "login_backoff"
    # From another address the moderator signs in to the desk.
    other = Client(REMOTE_ADDR="198.51.100.20")
    signed_in = other.post("/admin/login/", {"username": "desk-mod", "password": factories.PASSWORD, "next": "/admin/"})
    assert signed_in.status_code == 302 and staff.user.is_staff


RANGES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("remote", "xff", "count", "ranges", "client"),
    [
        ("192.0.2.1", "203.0.113.5", 0, [], "192.0.2.1"),  # no trusted proxy: the header is ignored
        ("10.0.0.2", "203.0.113.5", 1, [], "203.0.113.5"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5", 1, [], "203.0.113.5"),  # forged prefix ignored
        ("10.0.0.2", "6.6.6.6, 203.0.113.5, 10.0.0.9", 2, [], "203.0.113.5"),
        ("10.0.0.2", "not-an-ip", 1, [], "10.0.0.2"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.5, 10.1.2.3", 0, RANGES, "203.0.113.5"),
        ("192.0.2.9", "203.0.113.5", 0, RANGES, "192.0.2.9"),  # peer not a trusted proxy: header ignored
        ("10.0.0.2", "garbage, 10.1.2.3", 0, RANGES, "10.1.2.3"),
        ("10.0.0.2", "[2001:db8:1:2::7]:443", 1, [], "2001:db8:1:2::/64"),  # IPv6 keyed by its /64
        ("2001:db8:1:2::8", None, 0, [], "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.4", None, 0, [], "192.0.2.4"),
    ],
)
def test_forwarded_client(remote, xff, count, ranges, client):
    assert forwarded_client(remote, xff, proxy_count=count, proxy_ranges=ranges) == client


def test_trusted_proxy_ranges_are_validated():
    from marketplace.config import ConfigError, load

    with pytest.raises(ConfigError, match="TRUSTED_PROXY_RANGES"):
        load({"TRUSTED_PROXY_RANGES": "10.0.0.0/8, nonsense"})
    config = load({"TRUSTED_PROXY_RANGES": "10.0.0.0/8,fd00::/8", "TRUSTED_PROXY_COUNT": "2"})
    assert config.trusted_proxy_ranges == ["10.0.0.0/8", "fd00::/8"] and config.trusted_proxy_count == 2
    assert re.fullmatch(r"\d+", str(load({}).trusted_proxy_count))


def test_search_counts_anonymous_and_signed_in_requests_at_their_own_rates(api_client, buyer, monkeypatch):
    # An anonymous JSON search is answered outside DRF's request cycle; its throttles count
    # as DRF's would, and a refusal is DRF's answer (code, body, Retry-After).
    rates(monkeypatch, anon="2/min", user="3/min")
    anonymous = [api_client.get("/api/v1/listings/") for _ in range(3)]
    assert [r.status_code for r in anonymous] == [200, 200, 429]
    refused = anonymous[2]
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) >= 1
    assert refused["Content-Type"] == "application/json" and refused["Vary"] == "Accept, Cookie"
    # The same client signed in (a token, or DRF's test authentication) counts at the user rate, per user.
    assert [buyer.client.get("/api/v1/listings/").status_code for _ in range(4)] == [200, 200, 200, 429]
    forced = APIClient()
    forced.force_authenticate(user=factories.make_buyer(username="buyer-forced").user)
    assert [forced.get("/api/v1/listings/").status_code for _ in range(4)] == [200, 200, 200, 429]
