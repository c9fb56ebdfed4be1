"""Back-off after failed sign-ins, per account and client address, and the admin login
held to the same rules as the API's.

After ``free_failures`` wrong passwords for one username from one client address, each
further attempt from there must wait ``base_seconds * 2^k`` (k = failures past the free
ones), at most ``max_seconds``; during the wait an attempt is refused before the password
is even checked, so guessing goes no faster. The key includes the client address, so an
attacker elsewhere cannot lock the account's owner out; the per-address ``auth`` rate
(``THROTTLE_AUTH``) bounds how many addresses' worth of guesses one client gets.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse

from marketplace.accounts.errors import AccountErrorCode
from marketplace.core.errors import TooManyRequests, field_error
from marketplace.core.throttling import ClientScopedRateThrottle, client_address


def _now() -> float:
    return time.time()


def _policy() -> dict:
    return settings.ACCOUNTS_LOGIN_BACKOFF


def _key(username: str, client: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{client}".encode()).hexdigest()
    return f"login-backoff:{digest}"


def wait_seconds(*, username: str, client: str) -> int:
    """Seconds before ``username`` may try again from ``client`` (0: now)."""
    state = cache.get(_key(username, client))
    if not state:
        return 0
    return max(0, math.ceil(state["until"] - _now()))


def check(*, username: str, client: str) -> None:
    wait = wait_seconds(username=username, client=client)
    if wait:
        raise TooManyRequests(
            f"Too many failed sign-ins for this account from your address; try again in {wait} s.",
            code=AccountErrorCode.LOGIN_BACKOFF,
            retry_after=wait,
            details=[field_error("username", f"retry after {wait} s", AccountErrorCode.LOGIN_BACKOFF)],
        )


def record_failure(*, username: str, client: str) -> None:
    policy = _policy()
    key = _key(username, client)
    state = cache.get(key) or {"failures": 0, "until": 0.0}
    state["failures"] += 1
    past_free = state["failures"] - policy["free_failures"]
    if past_free >= 0:
        delay = min(policy["base_seconds"] * 2**past_free, policy["max_seconds"])
        state["until"] = _now() + delay
    cache.set(key, state, timeout=policy["forget_after_seconds"])


def record_success(*, username: str, client: str) -> None:
    cache.delete(_key(username, client))


class _AdminLoginScope:
    """What ScopedRateThrottle reads from a view: the API login's scope, so the admin and
    the API draw on one bucket per client address."""

    throttle_scope = "auth"


def guarded_admin_login(login_view):
    """Wrap the admin site's login view: a POST is counted against the ``auth`` rate and
    the back-off of its username and client address, like ``POST /api/v1/auth/login/``."""

    def view(request, *args, **kwargs):
        if request.method != "POST":
            return login_view(request, *args, **kwargs)
        throttle = ClientScopedRateThrottle()
        if not throttle.allow_request(request, _AdminLoginScope()):
            wait = throttle.wait()
            return _refused(math.ceil(wait) if wait else 60, "Too many sign-in attempts from your address.")
        username = request.POST.get("username", "")
        client = client_address(request)
        wait = wait_seconds(username=username, client=client)
        if wait:
            return _refused(wait, "Too many failed sign-ins for this account from your address.")
        response = login_view(request, *args, **kwargs)
        # The admin's login answers a redirect when it signed the user in, the form again when not.
        if response.status_code == 302 and request.user.is_authenticated:
            record_success(username=username, client=client)
        else:
            record_failure(username=username, client=client)
        return response

    return view


def _refused(wait: int, message: str) -> HttpResponse:
    response = HttpResponse(f"{message} Try again in {wait} s.\n", status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(wait)
    return response
