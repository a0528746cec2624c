"""The stage criteria as data: saving a new version of a tenant's (or the platform default's)
lifecycle policy."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction

from accounts.models import Tenant, User
from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import canonical, event_record
from governance.kernel.inputs import clean_text
from registry.models import ArtifactClass
from reviews import permissions
from reviews.lifecycle import policy as lifecycle_policy
from reviews.models import LifecyclePolicy


@transaction.atomic
def lifecycle_policy_set(
    *,
    tenant: Tenant | None,
    criteria: Any,
    enforced: bool,
    reproducibility_tolerance: Any,
    recertify_within_days: Any,
    reason: str,
    actor: User | None,
) -> LifecyclePolicy:
    """Save a new, numbered version of the stage criteria (rows never change) and its event."""
    permissions.can_change_lifecycle_policy(actor, tenant).require()
    reason = clean_text(reason, "reason", required=True, limit=500)
    if not isinstance(enforced, bool):
        raise DomainError("'enforced' must be true or false.", field="enforced")
    try:
        document = lifecycle_policy.validate(
            criteria, class_slugs=set(ArtifactClass.objects.values_list("slug", flat=True))
        )
        tolerance, days = lifecycle_policy.validate_settings(
            reproducibility_tolerance, recertify_within_days
        )
    except lifecycle_policy.PolicyError as exc:
        raise DomainError(str(exc), field=exc.field) from exc
    last = (
        LifecyclePolicy.objects.select_for_update()
        .filter(tenant=tenant)
        .order_by("-number")
        .first()
    )
    row = LifecyclePolicy.objects.create(
        tenant=tenant,
        number=(last.number if last else 0) + 1,
        criteria=document,
        enforced=enforced,
        reproducibility_tolerance=tolerance,
        recertify_within_days=days,
        reason=reason,
        created_by=actor,
    )
    event_record(
        kind=EventKind.LIFECYCLE_POLICY_UPDATED,
        actor=actor,
        tenant=tenant,
        subject=row,
        payload={
            "scope": tenant.slug if tenant else "default",
            "number": row.number,
            "reason": reason,
            "enforced": enforced,
            "reproducibility_tolerance": tolerance,
            "recertify_within_days": days,
            "criteria_sha256": hashlib.sha256(canonical(document)).hexdigest(),
            "criteria": document,
        },
    )
    return row
