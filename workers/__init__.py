"""Celery workers: thin tasks that run ml/ pipelines on photos and record the results."""

from workers.celery import app

__all__ = ["app"]
