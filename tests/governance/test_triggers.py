"""Every table the database protects against DELETE also refuses TRUNCATE (which fires no row trigger)."""

from __future__ import annotations

import pgtrigger
from django.apps import apps
from django.db.models import Model


def _protected_against_delete(model: type[Model]) -> bool:
    return any(
        isinstance(t, pgtrigger.Protect) and "DELETE" in str(t.operation)
        for t in getattr(model._meta, "triggers", [])
    )


def _refuses_truncate(model: type[Model]) -> bool:
    return any(
        "TRUNCATE" in str(t.operation) and str(t.when) == "BEFORE"
        for t in getattr(model._meta, "triggers", [])
    )


def test_every_table_protected_against_delete_refuses_truncate() -> None:
    protected = [m for m in apps.get_models() if _protected_against_delete(m)]
    assert {m._meta.label for m in protected} >= {
        "governance.Event",
        "governance.Checkpoint",
        "registry.Version",
        "registry.VersionDependency",
    }
    assert [m._meta.label for m in protected if not _refuses_truncate(m)] == []
