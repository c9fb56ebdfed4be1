import pytest


@pytest.mark.django_db
def test_healthz_and_readyz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    resp = client.get("/readyz")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_readyz_reports_a_dead_broker(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["checks"]["broker"] == "unavailable"


def test_docs_render_without_internet(client):
    resp = client.get("/api/v1/docs/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "swagger-ui" in html and "cdn." not in html  # assets come from the sidecar package
