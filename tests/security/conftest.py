"""A module-wide scenario (users in every role, datasets in every state, orders,
entitlements...) built once per test module inside a transaction rolled back at the end;
each test still runs in its own savepoint (the ``db`` fixture)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings

# Password hashing is not what these tests are about; PBKDF2 would cost seconds per user.
FAST_HASHERS = override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"])


@pytest.fixture(scope="module")
def scenario(django_db_setup, django_db_blocker):
    from tests.security.scenario import build

    with django_db_blocker.unblock(), FAST_HASHERS:
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def call(client, method: str, url: str, body=None, **headers):
    """One request whose writes are rolled back, so every cell sees the same scenario."""
    with transaction.atomic():
        if method == "GET":
            resp = client.get(url, **headers)
        else:
            resp = getattr(client, method.lower())(url, body if body is not None else {}, format="json", **headers)
        transaction.set_rollback(True)
    return resp
