"""Liveness and readiness. Public; they reveal which dependency failed, never why."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from django.conf import settings
    from kombu import Connection

    # A fresh connection, not the worker pool's: readiness must reflect the broker now.
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    with Connection(settings.CELERY_BROKER_URL, transport_options=options, connect_timeout=2) as conn:
        conn.ensure_connection(max_retries=1, timeout=2)


def _storage() -> None:
    from marketplace.core.storage import get_storage

    get_storage().check()


CHECKS = {"database": _database, "broker": _broker, "storage": _storage}


def readyz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception:  # noqa: BLE001 - any failure means not ready
            results[name] = "unavailable"
    ready = all(v == "ok" for v in results.values())
    return JsonResponse({"status": "ready" if ready else "not_ready", "checks": results}, status=200 if ready else 503)
