"""Approval policy and change gates: a tenant's rules for what a change needs."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import canonical, event_record
from governance.kernel.inputs import clean_text
from registry.models import ArtifactClass
from reviews import permissions
from reviews import policy as approval_policy
from reviews.models import ApprovalPolicy, ChangeGate


@transaction.atomic
def approval_policy_update(
    *, tenant: Tenant | None, rules: Any, reason: str, actor: User | None
) -> ApprovalPolicy:
    """Save a new version of a tenant's (or the platform default) approval policy."""
    permissions.can_change_policy(actor, tenant).require()
    reason = clean_text(reason, "reason", required=True, limit=500)
    try:
        document = approval_policy.validate(rules)
    except approval_policy.PolicyError as exc:
        raise DomainError(str(exc), field="rules") from exc
    last = (
        ApprovalPolicy.objects.select_for_update().filter(tenant=tenant).order_by("-number").first()
    )
    row = ApprovalPolicy.objects.create(
        tenant=tenant,
        number=(last.number if last else 0) + 1,
        rules=document,
        reason=reason,
        created_by=actor,
    )
    event_record(
        kind=EventKind.APPROVAL_POLICY_UPDATED,
        actor=actor,
        tenant=tenant,
        subject=row,
        payload={
            "scope": tenant.slug if tenant else "default",
            "number": row.number,
            "reason": reason,
            "rules_sha256": hashlib.sha256(canonical(document)).hexdigest(),
            "rules": document,
        },
    )
    return row


@transaction.atomic
def change_gate_set(
    *, tenant: Tenant, artifact_class: ArtifactClass, gates: Any, actor: User | None
) -> ChangeGate:
    """Set the metric thresholds an artifact class's changes must meet in a tenant."""
    from reviews import gates as gate_rules

    permissions.can_set_gates(actor, tenant).require()
    if not isinstance(gates, list):
        raise DomainError("Gates must be a list.", field="gates")
    for i, gate in enumerate(gates):
        problems = gate_rules.validate_gate(gate)
        if problems:
            raise DomainError(f"gates[{i}]: {'; '.join(problems)}", field="gates")
    row, _ = ChangeGate.objects.select_for_update().get_or_create(
        tenant=tenant, artifact_class=artifact_class
    )
    ChangeGate.objects.filter(pk=row.pk).update(
        gates=gates, updated_at=timezone.now(), updated_by=actor
    )
    row.refresh_from_db()
    event_record(
        kind=EventKind.CHANGE_GATE_UPDATED,
        actor=actor,
        tenant=tenant,
        subject=("reviews.changegate", str(row.pk), str(row)),
        payload={"class": artifact_class.slug, "gates": gates},
    )
    return row
