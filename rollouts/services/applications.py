"""Applications (consuming services) and their slots."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, events_record
from governance.kernel.inputs import clean_text
from registry.models import Artifact
from rollouts import permissions, selectors
from rollouts.models import APP_SLUG_RE, SLOT_NAME_RE, Application, Slot
from rollouts.services.moves import lock_artifact, slot_label, version_ref


@transaction.atomic
def application_create(
    *, tenant: Tenant, slug: str, name: str, description: str = "", actor: User | None
) -> Application:
    """Declare a consuming service (``sales-agent``) of ``tenant``; the platform's is shared."""
    permissions.can_manage_application(actor, tenant).require()
    slug = clean_text(slug, "slug", required=True, limit=100)
    if not re.match(APP_SLUG_RE, slug):
        raise DomainError("Use lowercase letters, digits and hyphens.", field="slug")
    name = clean_text(name, "name", required=True, limit=200)
    description = clean_text(description, "description", required=False, limit=5000)
    if Application.objects.filter(slug=slug).exists():
        raise Conflict(f"An application '{slug}' exists already.", field="slug")
    try:
        with transaction.atomic():
            application = Application.objects.create(
                tenant=tenant, slug=slug, name=name, description=description, created_by=actor
            )
    except IntegrityError:
        raise Conflict(f"An application '{slug}' exists already.", field="slug") from None
    events_record(
        [
            EventSpec(
                EventKind.APPLICATION_CREATED,
                actor,
                tenant=tenant,
                subject=application,
                payload={"application": slug, "name": name, "description": description},
            )
        ]
    )
    return application


@transaction.atomic
def application_update(
    *,
    application: Application,
    name: str | None = None,
    description: str | None = None,
    actor: User | None,
) -> Application:
    application = (
        Application.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .get(pk=application.pk)
    )
    permissions.can_manage_application(actor, application.tenant).require()
    changes: dict[str, Any] = {}
    if name is not None:
        new_name = clean_text(name, "name", required=True, limit=200)
        if new_name != application.name:
            changes["name"] = {"old": application.name, "new": new_name}
            application.name = new_name
    if description is not None:
        new_description = clean_text(description, "description", required=False, limit=5000)
        if new_description != application.description:
            changes["description"] = {"old": application.description, "new": new_description}
            application.description = new_description
    if not changes:
        return application
    application.save(update_fields=list(changes))
    events_record(
        [
            EventSpec(
                EventKind.APPLICATION_UPDATED,
                actor,
                tenant=application.tenant,
                subject=application,
                payload={"application": application.slug, "changes": changes},
            )
        ]
    )
    return application


@transaction.atomic
def slot_create(
    *,
    application: Application,
    name: str,
    artifact: Artifact,
    description: str = "",
    actor: User | None,
) -> Slot:
    """Bind a named slot of ``application`` to ``artifact``, whose active version is its default.

    The artifact must be the application's tenant's or the platform's, and must have an
    active version (every slot has a default). From now on, promoting a change on the
    artifact approves versions; rollouts move its default.
    """
    application = Application.objects.select_related("tenant").get(pk=application.pk)
    permissions.can_manage_slots(actor, application).require()
    name = clean_text(name, "name", required=True, limit=100)
    if not re.match(SLOT_NAME_RE, name):
        raise DomainError(
            "Start with a letter; then letters, digits, '_' or '-' (at most 100).", field="name"
        )
    description = clean_text(description, "description", required=False, limit=5000)
    artifact = lock_artifact(artifact)  # a promotion of it waits, and then sees the slot
    if artifact.tenant_id != application.tenant_id and not selectors.is_platform(artifact.tenant):
        raise DomainError(
            f"{artifact.path} belongs to another tenant; a slot of {application.slug} may bind "
            f"an artifact of '{application.tenant.slug}' or of the platform.",
            field="artifact",
        )
    if artifact.active_version is None:
        raise Conflict(
            f"{artifact.path} has no active version; a slot needs a default. Promote a change first.",
            field="artifact",
        )
    if Slot.objects.filter(application=application, name=name).exists():
        raise Conflict(f"{application.slug} has a slot '{name}' already.", field="name")
    try:
        with transaction.atomic():
            slot = Slot.objects.create(
                application=application,
                name=name,
                artifact=artifact,
                description=description,
                created_by=actor,
            )
    except IntegrityError:
        raise Conflict(f"{application.slug} has a slot '{name}' already.", field="name") from None
    events_record(
        [
            EventSpec(
                EventKind.SLOT_CREATED,
                actor,
                tenant=application.tenant,
                subject=slot,
                payload={
                    "slot": slot_label(slot),
                    "artifact": artifact.path,
                    "default": version_ref(artifact.active_version),
                    "description": description,
                },
            )
        ]
    )
    return slot


@transaction.atomic
def slot_update(*, slot: Slot, description: str, actor: User | None) -> Slot:
    slot = (
        Slot.objects.select_for_update(of=("self",))
        .select_related("application__tenant")
        .get(pk=slot.pk)
    )
    permissions.can_manage_slots(actor, slot.application).require()
    description = clean_text(description, "description", required=False, limit=5000)
    if description == slot.description:
        return slot
    old = slot.description
    slot.description = description
    slot.save(update_fields=["description"])
    events_record(
        [
            EventSpec(
                EventKind.SLOT_UPDATED,
                actor,
                tenant=slot.application.tenant,
                subject=slot,
                payload={
                    "slot": slot_label(slot),
                    "changes": {"description": {"old": old, "new": description}},
                },
            )
        ]
    )
    return slot
