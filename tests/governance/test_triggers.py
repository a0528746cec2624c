"""Every table the database protects against DELETE also refuses TRUNCATE (which fires no row trigger),
and every table documented as append-only or immutable is protected."""

from __future__ import annotations

import pgtrigger
from django.apps import apps
from django.db.models import Model


def _protected_against_delete(model: type[Model]) -> bool:
    return any(
        isinstance(t, pgtrigger.Protect) and "DELETE" in str(t.operation)
        for t in getattr(model._meta, "triggers", [])
    )


def _protected_against_update(model: type[Model]) -> bool:
    return any(
        isinstance(t, pgtrigger.Protect) and "UPDATE" in str(t.operation)
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
        "registry.Retirement",
        "reviews.ApprovalPolicy",
        "reviews.Approval",
        "reviews.CheckRun",
        "reviews.EvaluationReport",
        "reviews.Activation",
        "governance.Waiver",
        "rollouts.Rollout",
        "rollouts.PointerMove",
    }
    assert [m._meta.label for m in protected if not _refuses_truncate(m)] == []


def test_immutable_tables_refuse_update_and_rows_stamped_later_do_not() -> None:
    """Rows written once (policies, evaluation evidence, activations, retirements, versions, the
    log) refuse UPDATE; rows stamped later (an approval voided, a check finished, a waiver
    countersigned or revoked) must not, or their services would fail on PostgreSQL."""
    immutable = {m._meta.label for m in apps.get_models() if _protected_against_update(m)}
    assert immutable == {
        "governance.Event",
        "governance.Checkpoint",
        "registry.Version",
        "registry.VersionDependency",
        "registry.Retirement",
        "reviews.ApprovalPolicy",
        "reviews.LifecyclePolicy",
        "reviews.EvaluationReport",
        "reviews.DeploymentChecklist",
        "reviews.Activation",
        "rollouts.RolloutTarget",
        "rollouts.PointerMove",
        "rollouts.ManifestVersion",
        "rollouts.IterationNote",
        # Telemetry: never changed; deleted only by the hourly fold and the batch prune.
        "rollouts.TelemetryCounter",
        "rollouts.TelemetryBatch",
    }
