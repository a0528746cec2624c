"""The Django project package and the app for cross-cutting governance."""

from governance.celery import app as celery_app

__all__ = ("celery_app",)
