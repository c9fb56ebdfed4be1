"""Celery app, queues, the pipeline that chains the steps, jobs and the sweeper."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
