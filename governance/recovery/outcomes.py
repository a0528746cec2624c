"""Archiving a drill's or rehearsal's outcome in the registry: a signed ``recovery-drill`` version.

The versions live in the platform tenant (``settings.PLATFORM_TENANT_SLUG``), one artifact per
kind of proof (``recovery-drill/platform/restore-drill``, ``.../rehearsal-<slot>``), created on
first use by the system. Each version's content is the outcome and its measurements; the
registry hashes and signs it like any other version (``registry.services.version_publish``).
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts.models import Tenant, User
from accounts.selectors import tenant_by_slug
from accounts.services import tenant_create
from governance.kernel.errors import NotFound
from registry import selectors as registry_selectors
from registry.choices import ArtifactClass as BuiltinClass
from registry.models import Artifact, ArtifactClass, Version
from registry.services import Content, artifact_create, install_builtin_classes, version_publish

#: The artifact that archives ``drill run``'s outcomes.
DRILL_ARTIFACT = "restore-drill"


def rehearsal_artifact_slug(slot_label: str) -> str:
    """``sales-agent.qualifyLead`` -> ``rehearsal-sales-agent-qualifylead`` (a registry slug)."""
    words = re.sub(r"[^a-z0-9]+", "-", slot_label.lower()).strip("-")
    return f"rehearsal-{words}"[:100].rstrip("-")


def _platform_tenant() -> Tenant:
    slug = settings.PLATFORM_TENANT_SLUG
    try:
        return tenant_by_slug(slug)
    except NotFound:
        return tenant_create(slug=slug, name="Platform", actor=None)


def _drill_artifact(slug: str, title: str, actor: User | None) -> Artifact:
    tenant = _platform_tenant()
    try:
        return registry_selectors.artifact_by_path_unscoped(
            BuiltinClass.RECOVERY_DRILL, tenant.slug, slug
        )
    except NotFound:
        pass
    drill_class = ArtifactClass.objects.filter(slug=BuiltinClass.RECOVERY_DRILL).first()
    if drill_class is None:  # a database migrated before the class existed
        install_builtin_classes()
        drill_class = ArtifactClass.objects.get(slug=BuiltinClass.RECOVERY_DRILL)
    return artifact_create(
        artifact_class=drill_class, tenant=tenant, slug=slug, title=title, actor=actor
    )


@transaction.atomic
def outcome_publish(
    *, slug: str, title: str, content: dict[str, Any], reason: str, actor: User | None
) -> Version:
    """Publish ``content`` as the next version of ``recovery-drill/<platform>/<slug>`` (a patch)."""
    artifact = _drill_artifact(slug, title, actor)
    version, _ = version_publish(
        artifact=artifact,
        content=Content(data=content),
        impact="patch",
        reason=reason,
        actor=actor,
    )
    return version
