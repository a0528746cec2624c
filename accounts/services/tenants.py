"""Tenants: created by a platform administrator, renamed with a reason; the slug never changes."""

from __future__ import annotations

import re

from django.db import transaction

from accounts.models import (
    TENANT_SLUG_RE,
    Tenant,
    User,
)
from accounts.selectors import is_platform_admin
from accounts.services.common import lock_tenant, require_role_admin
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text


@transaction.atomic
def tenant_create(*, slug: str, name: str, actor: User | None) -> Tenant:
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can create tenants.")
    if not re.match(TENANT_SLUG_RE, slug or ""):
        raise DomainError(
            "Use 1-63 lowercase letters, digits or hyphens, starting and ending with one "
            "of the first two.",
            field="slug",
        )
    name = (name or "").strip()
    if not name:
        raise DomainError("A tenant needs a name.", field="name")
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"Tenant '{slug}' already exists.", field="slug")
    tenant = Tenant.objects.create(slug=slug, name=name, created_by=actor)
    event_record(
        kind=EventKind.TENANT_CREATED,
        actor=actor,
        tenant=tenant,
        subject=tenant,
        payload={"slug": slug, "name": name},
    )
    return tenant


@transaction.atomic
def tenant_rename(*, tenant: Tenant, name: str, actor: User | None, reason: str = "") -> Tenant:
    """Change a tenant's display name (its slug never changes). Unchanged names record nothing."""
    name = clean_text(name, "name", limit=200)
    reason = clean_text(reason, "reason", required=False, limit=500)
    lock_tenant(tenant)
    require_role_admin(actor, tenant)
    current = Tenant.objects.get(pk=tenant.pk)
    if current.name == name:
        return current
    old = current.name
    current.name = name
    current.save(update_fields=["name"])
    event_record(
        kind=EventKind.TENANT_RENAMED,
        actor=actor,
        tenant=current,
        subject=current,
        payload={"slug": current.slug, "old_name": old, "new_name": name, "reason": reason},
    )
    return current
