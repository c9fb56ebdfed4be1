"""The Celery app: queues, routing and delivery guarantees.

Queues: ``ingest`` (CPU: extraction, validation, mask cache), ``quality`` (GPU workers
started with ``QUALITY_DEVICE=cuda``; CPU workers give identical numbers), ``default``
(everything else). Tasks take ids and call services; they are idempotent, so
at-least-once delivery (``acks_late`` + ``reject_on_worker_lost``) loses nothing.
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketplace.settings")

QUEUES = ("default", "ingest", "quality")

app = Celery("marketplace")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_queues=[Queue(name) for name in QUEUES],
    task_default_queue="default",
    task_routes=[
        {"datasets.tasks.*": {"queue": "ingest"}},
        {"quality.tasks.*": {"queue": "quality"}},
    ],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_track_started=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=24 * 3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks()
