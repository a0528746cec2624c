"""Pointer moves: each is a ``PointerMove`` row and a ``pointer.moved`` event; the guards
every move passes (the versions may serve, the artifact is locked)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, events_record
from registry.models import Artifact, Version
from rollouts import selectors
from rollouts.choices import PointerKind
from rollouts.models import PointerMove, Rollout, Slot

#: The longest reason a service stores.
REASON_LIMIT = 2000


def version_ref(version: Version | None) -> dict[str, str] | None:
    if version is None:
        return None
    return {"path": version.path, "sha256": version.manifest_sha256}


def slot_label(slot: Slot | None) -> str | None:
    return None if slot is None else f"{slot.application.slug}.{slot.name}"


@dataclass(frozen=True)
class PointerChange:
    """One pointer move: which pointer (an artifact's default, or a slot's for a tenant), from
    and to which version, why, by whom, and the rollout (and canary weight) that moved it."""

    kind: str
    artifact: Artifact
    from_version: Version | None
    to_version: Version | None
    reason: str
    actor: User | None
    slot: Slot | None = None
    tenant: Tenant | None = None
    weight: int | None = None
    rollout: Rollout | None = None


def record_move(specs: list[EventSpec], change: PointerChange) -> PointerMove:
    """Record one pointer move (the row now, its ``pointer.moved`` event with the others)."""
    kind, artifact, slot, tenant = change.kind, change.artifact, change.slot, change.tenant
    from_version, to_version, weight = change.from_version, change.to_version, change.weight
    rollout, reason, actor = change.rollout, change.reason, change.actor
    move = PointerMove.objects.create(
        kind=kind,
        artifact=artifact,
        slot=slot,
        tenant=tenant,
        from_version=from_version,
        to_version=to_version,
        weight=weight,
        rollout=rollout,
        reason=reason,
        actor=actor,
    )
    payload: dict[str, Any] = {
        "move": move.pk,
        "kind": kind,
        "artifact": artifact.path,
        "slot": slot_label(slot),
        "tenant": tenant.slug if tenant else None,
        "from": version_ref(from_version),
        "to": version_ref(to_version),
        "weight": weight,
        "reason": reason,
    }
    if rollout is not None:
        payload |= {
            "rollout": rollout.reference,
            "revision": rollout.revision,
            "step": rollout.step,
        }
    specs.append(
        EventSpec(
            EventKind.POINTER_MOVED,
            actor,
            tenant=tenant or (rollout.tenant if rollout else artifact.tenant),
            subject=slot if slot is not None else artifact,
            payload=payload,
        )
    )
    return move


def require_servable(versions: Iterable[Version], field: str) -> dict[Any, str]:
    """Refuse (naming ``field``) unless every version may serve; return id -> warning."""
    listed = list(versions)
    verdicts = selectors.servable_versions(v.pk for v in listed)
    warnings: dict[Any, str] = {}
    for version in listed:
        verdict = verdicts[version.pk]
        if isinstance(verdict, str):
            raise Conflict(f"{verdict}; it cannot serve.", field=field)
        warnings[version.pk] = verdict.warning or ""
    return warnings


def lock_artifact(artifact: Artifact) -> Artifact:
    return (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("artifact_class", "tenant", "active_version__artifact__artifact_class")
        .get(pk=artifact.pk)
    )


def default_moves_record(
    moves: Sequence[tuple[Artifact, Version | None, Version | None]],
    actor: User | None,
    reason: str,
) -> None:
    """Pointer history for defaults that reviews moved itself (a change's rollback, the safety
    switch) on artifacts bound to slots: one ``PointerMove`` and ``pointer.moved`` each.

    Registered with ``reviews.hooks`` in ``RolloutsConfig.ready()``; runs in reviews'
    transaction, which already holds the artifacts' locks.
    """
    bound = selectors.slot_bound_artifacts(a.pk for a, _, _ in moves)
    specs: list[EventSpec] = []
    for artifact, before, after in moves:
        if artifact.pk in bound:
            record_move(
                specs,
                PointerChange(
                    kind=PointerKind.DEFAULT,
                    artifact=artifact,
                    from_version=before,
                    to_version=after,
                    reason=reason,
                    actor=actor,
                ),
            )
    if specs:
        events_record(specs)
