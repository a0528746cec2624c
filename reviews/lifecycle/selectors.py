"""Reads of the stage criteria shared by the criteria page, the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import QuerySet

from registry.choices import Stage
from reviews.lifecycle.catalog import STAGES, WATCHED, criterion, known_keys
from reviews.lifecycle.checklist import checklist
from reviews.lifecycle.policy import (
    ANY_CLASS,
    DEFAULT_CRITERIA,
    DEFAULT_RECERTIFY_DAYS,
    DEFAULT_TOLERANCE,
    effective_row,
)
from reviews.models import LifecyclePolicy

if TYPE_CHECKING:
    from accounts.models import Tenant

__all__ = ["PolicyInForce", "catalog_rows", "checklist", "criteria_table", "policy_history"]


@dataclass(frozen=True)
class PolicyInForce:
    """A tenant's stage criteria as saved (or the seed's table), before any class is picked."""

    row: LifecyclePolicy | None
    document: dict[str, Any]
    enforced: bool
    reproducibility_tolerance: float
    recertify_within_days: int
    #: "tenant" (its own), "default" (the platform default's) or "built-in" (the seed's table).
    scope: str


def policy_in_force(tenant: Tenant | None) -> PolicyInForce:
    row = effective_row(tenant)
    if row is None:
        return PolicyInForce(
            row=None,
            document=DEFAULT_CRITERIA,
            enforced=bool(getattr(settings, "LIFECYCLE_ENFORCED_DEFAULT", True)),
            reproducibility_tolerance=DEFAULT_TOLERANCE,
            recertify_within_days=DEFAULT_RECERTIFY_DAYS,
            scope="built-in",
        )
    own = tenant is not None and row.tenant_id == tenant.pk
    return PolicyInForce(
        row=row,
        document=row.criteria,
        enforced=row.enforced,
        reproducibility_tolerance=row.reproducibility_tolerance,
        recertify_within_days=row.recertify_within_days,
        scope="tenant" if own else "default",
    )


def policy_history(tenant: Tenant | None) -> QuerySet[LifecyclePolicy]:
    return (
        LifecyclePolicy.objects.filter(tenant=tenant)
        .select_related("created_by")
        .order_by("-number")
    )


def criteria_table(document: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per class entry and stage of a document, criteria with their labels."""
    rows = []
    entries = sorted(document.items(), key=lambda kv: (kv[0] != ANY_CLASS, kv[0]))
    for cls, stages in entries:
        for stage in STAGES:
            if stage not in stages:
                continue
            found = [(key, criterion(key)) for key in stages[stage]]
            rows.append(
                {
                    "cls": "every class" if cls == ANY_CLASS else cls,
                    "stage": Stage(stage).label,
                    "watched": stage in WATCHED,
                    "criteria": [
                        {"key": key, "label": c.label if c else key, "asks": c.asks if c else ""}
                        for key, c in found
                    ],
                }
            )
    return rows


def catalog_rows() -> list[dict[str, str]]:
    """Every criterion a document may name: key, home stage, label and what it asks."""
    rows = []
    for key in known_keys():
        c = criterion(key)
        assert c is not None
        rows.append({"key": key, "stage": Stage(c.stage).label, "label": c.label, "asks": c.asks})
    return rows
