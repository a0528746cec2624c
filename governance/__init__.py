"""The Django project package and the app for cross-cutting governance.

Kept free of imports so that ``python -m governance.verify`` runs for an
auditor with nothing but the standard library and ``cryptography``. The Celery
app is loaded by ``GovernanceConfig.ready`` (and by ``celery -A governance``,
which finds ``governance.celery``).
"""
