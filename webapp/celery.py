"""The one definition of Facet's Celery apps: the workers' app and the web process's producer.

Both read the CELERY_* Django settings and know the same queues. The web process sends tasks by
name through :mod:`webapp.runs.dispatch` and never imports ``workers``; the workers build their app
here too (``workers/celery.py``), so the two can never disagree on the broker or the queues.
"""

from celery import Celery
from kombu import Exchange, Queue

QUEUE_NAMES = ("quick", "cpu", "gpu")


def celery_app(main: str) -> Celery:
    """A Celery app configured from Django's settings (``CELERY_*``) with the quick, cpu and gpu queues."""
    app = Celery(main)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.task_queues = tuple(Queue(name, Exchange(name), routing_key=name) for name in QUEUE_NAMES)
    return app
