"""Production settings: security headers on a real response, secure cookies, HSTS, and
CORS closed (no Access-Control-Allow-Origin for a cross-origin request). The settings are
loaded in a child process with MARKET_PROFILE=production, as a deployment would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
c = Client(HTTP_HOST="market.example.com")
out = {}
r = c.get("/api/v1/schema/", secure=True, HTTP_ORIGIN="https://evil.example")
out["schema"] = {"status": r.status_code, "headers": dict(r.headers.items())}
r = c.options("/api/v1/auth/login/", secure=True, HTTP_ORIGIN="https://evil.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
out["preflight"] = {"status": r.status_code, "headers": dict(r.headers.items())}
r = c.get("/admin/login/", secure=True)
out["admin"] = {"status": r.status_code, "cookies": {k: {"secure": bool(v["secure"]), "httponly": bool(v["httponly"]), "samesite": v["samesite"]} for k, v in r.cookies.items()}}
r = c.get("/api/v1/schema/")  # plain http
out["http"] = {"status": r.status_code, "location": r.headers.get("Location", "")}
out["settings"] = {k: getattr(settings, k) for k in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "DEBUG", "SECURE_HSTS_SECONDS", "SECURE_SSL_REDIRECT")}
print("PROBE" + json.dumps(out, default=str))
"""


def test_production_response_headers_cookies_and_cors(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "marketplace.settings",
        "MARKET_PROFILE": "production",
        "SECRET_KEY": "p7$Kx9!vQ2#mZr4@wL8^nB3&hT6*yD1%cF5(jG0)sA-eU_iO+pR=kV;lN:xW<qE>",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/marketplace",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "AWS_STORAGE_BUCKET_NAME": "market-prod",
        "ALLOWED_HOSTS": "market.example.com",
        "MARKET_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout.split("PROBE", 1)[1])

    assert out["settings"]["DEBUG"] is False
    assert out["settings"]["SESSION_COOKIE_SECURE"] and out["settings"]["CSRF_COOKIE_SECURE"]
    h = {k.lower(): v for k, v in out["schema"]["headers"].items()}
    assert out["schema"]["status"] == 200
    assert h["strict-transport-security"].startswith("max-age=") and int(h["strict-transport-security"].split("=")[1].split(";")[0]) >= 31536000
    assert "includesubdomains" in h["strict-transport-security"].lower()
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "same-origin"
    assert h["x-frame-options"] == "DENY"
    assert h["cross-origin-opener-policy"] == "same-origin"
    # CORS closed: no header grants another origin access, on a request or a preflight.
    for probe in ("schema", "preflight"):
        headers = {k.lower() for k in out[probe]["headers"]}
        assert not {"access-control-allow-origin", "access-control-allow-credentials"} & headers, out[probe]
    # Cookies set on a response are Secure and HttpOnly.
    assert out["admin"]["cookies"], out["admin"]
    for name, cookie in out["admin"]["cookies"].items():
        assert cookie["secure"] and cookie["httponly"], (name, cookie)
    # Plain HTTP is redirected to HTTPS when the deployment says so (SECURE_SSL_REDIRECT).
    if out["settings"]["SECURE_SSL_REDIRECT"]:
        assert out["http"]["status"] == 301 and out["http"]["location"].startswith("https://")
