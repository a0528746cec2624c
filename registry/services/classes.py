"""Artifact classes: the built-in ones, and those platform administrators add or change."""

from __future__ import annotations

from typing import Any

import jsonschema
from django.db import transaction

from accounts.models import User
from accounts.selectors import is_platform_admin
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    event_record,
)
from governance.kernel.inputs import clean_text
from registry.choices import BUILTIN_CLASSES, ContentKind
from registry.models import (
    ArtifactClass,
)
from registry.services.common import check_slug


def install_builtin_classes() -> int:
    """Make sure the built-in classes exist (idempotent; the migration does the same)."""
    made = 0
    for slug, name, kind, pointer, description in BUILTIN_CLASSES:
        _, created = ArtifactClass.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "content_kind": kind,
                "interface_pointer": pointer,
                "description": description,
                "builtin": True,
            },
        )
        made += int(created)
    return made


def artifact_class_check(*, content_schema: Any, interface_pointer: str) -> None:
    """The rules a class's schema and interface pointer follow (forms call this too)."""
    if content_schema is not None:
        if not isinstance(content_schema, dict):
            raise DomainError("A JSON Schema is a JSON object.", field="content_schema")
        try:
            jsonschema.validators.validator_for(content_schema).check_schema(content_schema)
        except jsonschema.SchemaError as exc:
            raise DomainError(
                f"Not a valid JSON Schema: {exc.message}", field="content_schema"
            ) from exc
    if interface_pointer and not interface_pointer.startswith("/"):
        raise DomainError("A JSON pointer starts with '/'.", field="interface_pointer")


@transaction.atomic
def artifact_class_create(
    *,
    slug: str,
    name: str,
    content_kind: str,
    actor: User | None,
    content_schema: dict[str, Any] | None = None,
    interface_pointer: str = "",
    description: str = "",
) -> ArtifactClass:
    """Add a class without code (platform administrators)."""
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can add artifact classes.")
    check_slug(slug)
    if content_kind not in ContentKind.values:
        raise DomainError(
            f"Content kind must be one of: {', '.join(ContentKind.values)}.", field="content_kind"
        )
    artifact_class_check(content_schema=content_schema, interface_pointer=interface_pointer)
    if ArtifactClass.objects.filter(slug=slug).exists():
        raise Conflict(f"Artifact class '{slug}' already exists.", field="slug")
    made = ArtifactClass.objects.create(
        slug=slug,
        name=name.strip() or slug,
        content_kind=content_kind,
        content_schema=content_schema,
        interface_pointer=interface_pointer,
        description=description,
        created_by=actor,
    )
    event_record(
        kind=EventKind.ARTIFACT_CLASS_CREATED,
        actor=actor,
        subject=made,
        payload={
            "slug": slug,
            "content_kind": content_kind,
            "has_schema": content_schema is not None,
        },
    )
    return made


_UNCHANGED: Any = object()


@transaction.atomic
def artifact_class_update(
    *,
    artifact_class: ArtifactClass,
    actor: User | None,
    name: str | None = None,
    description: str | None = None,
    content_schema: Any = _UNCHANGED,
    interface_pointer: str | None = None,
    reason: str = "",
) -> ArtifactClass:
    """Change a class's name, description, content schema or interface pointer.

    Platform administrators only; the slug and content kind never change. The
    event holds the old and new value of every field that changed (none: no
    event). A new schema applies to versions published from now on.
    """
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can change artifact classes.")
    reason = clean_text(reason, "reason", required=False, limit=500)
    current = ArtifactClass.objects.select_for_update().get(pk=artifact_class.pk)
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = clean_text(name, "name", limit=200)
    if description is not None:
        wanted["description"] = clean_text(description, "description", required=False)
    if interface_pointer is not None:
        wanted["interface_pointer"] = clean_text(
            interface_pointer, "interface_pointer", required=False, limit=200
        )
    if content_schema is not _UNCHANGED:
        wanted["content_schema"] = content_schema
    artifact_class_check(
        content_schema=wanted.get("content_schema", current.content_schema),
        interface_pointer=wanted.get("interface_pointer", current.interface_pointer),
    )
    changes = {
        field: {"old": getattr(current, field), "new": value}
        for field, value in wanted.items()
        if getattr(current, field) != value
    }
    if not changes:
        return current
    for field, change in changes.items():
        setattr(current, field, change["new"])
    current.save(update_fields=sorted(changes))
    event_record(
        kind=EventKind.ARTIFACT_CLASS_UPDATED,
        actor=actor,
        subject=current,
        payload={"slug": current.slug, "changes": changes, "reason": reason},
    )
    return current
