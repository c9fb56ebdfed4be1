import pytest

pytestmark = pytest.mark.worker


def test_round_trip_through_the_broker_with_a_real_worker(celery_worker):
    from workers.tasks import ping

    result = ping.delay("hello").get(timeout=60)
    assert result["value"] == "hello"
    assert result["pid"] != __import__("os").getpid()  # it ran in the worker process


def test_routing_sends_each_app_to_its_queue():
    from workers.celery import app

    router = app.amqp.router
    assert router.route({}, "datasets.tasks.ingest_version")["queue"].name == "ingest"
    assert router.route({}, "quality.tasks.compute_report")["queue"].name == "quality"
    assert router.route({}, "workers.tasks.ping")["queue"].name == "default"
