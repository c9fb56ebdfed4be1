from celery import shared_task


@shared_task(name="workers.tasks.ping")
def ping(value: str = "pong") -> dict:
    """A round trip through the broker: proves a worker is consuming ``default``."""
    import os

    return {"value": value, "pid": os.getpid()}
