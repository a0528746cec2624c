"""Action-eligible artifacts: the flag, the owner's deputy, and the safety switch that halts them.

An action-eligible artifact's output can trigger actions (learning-artifact-lifecycle.md): it
keeps its inputs and outputs compatible within a major version (``publishing``), its owner may
name a deputy who signs off beside them, and it has a **safety switch**: while engaged, nothing
names a version of it to production (the runtime answers "halted", the registry's active-version
lookup refuses), and the active version is kept, so a release serves it again. Deactivation
(``registry deactivate``, reviews) is the other switch: it removes the active version.

Each service locks the artifact's row first and appends its event in the same transaction (the
event log's lock comes last, at commit).
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.selectors import is_member
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text
from registry import permissions
from registry.models import Artifact, SafetySwitch

#: The longest reason a flip of the flag or the switch takes.
REASON_LIMIT = 2000


def _locked(artifact: Artifact) -> Artifact:
    return (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "owner", "deputy")
        .get(pk=artifact.pk)
    )


def _engaged(artifact: Artifact) -> SafetySwitch | None:
    return (
        SafetySwitch.objects.select_for_update()
        .filter(artifact=artifact, released_at__isnull=True)
        .first()
    )


@transaction.atomic
def artifact_action_eligible_set(
    *, artifact: Artifact, value: bool, reason: str, actor: User | None
) -> Artifact:
    """Mark an artifact action-eligible (or not): its tenant's administrators, with a reason.

    Turning it off while its safety switch is engaged is refused: release the switch first, so
    a halt is never lifted by a side door.
    """
    artifact = _locked(artifact)
    permissions.can_set_action_eligible(actor, artifact).require()
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    value = bool(value)
    if artifact.action_eligible == value:
        state = "already" if value else "not"
        raise Conflict(f"{artifact.path} is {state} action-eligible.", field="value")
    if not value and _engaged(artifact) is not None:
        raise Conflict(
            f"The safety switch of {artifact.path} is engaged: release it before marking the "
            "artifact not action-eligible.",
            field="value",
        )
    Artifact.objects.filter(pk=artifact.pk).update(action_eligible=value)
    event_record(
        kind=EventKind.ARTIFACT_ACTION_ELIGIBLE_SET,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={"path": artifact.path, "action_eligible": value, "reason": reason},
    )
    artifact.action_eligible = value
    return artifact


@transaction.atomic
def artifact_deputy_set(*, artifact: Artifact, deputy: User | None, actor: User | None) -> Artifact:
    """Name the owner's deputy (an active member of the tenant, not the owner), or none.

    The owner or an administrator of the tenant may. The deputy signs off beside the owner
    where the approval policy asks for both.
    """
    artifact = _locked(artifact)
    permissions.can_set_deputy(actor, artifact).require()
    if deputy is not None:
        if not deputy.is_active or not is_member(deputy, artifact.tenant):
            raise DomainError(
                f"{deputy.username} is not an active member of {artifact.tenant.slug}.",
                field="deputy",
            )
        if deputy.pk == artifact.owner_id:
            raise DomainError(
                f"{deputy.username} owns {artifact.path}: the deputy is someone else.",
                field="deputy",
            )
    if artifact.deputy_id == (deputy.pk if deputy else None):
        name = deputy.username if deputy else "Nobody"
        raise Conflict(f"{name} is already the deputy of {artifact.path}.", field="deputy")
    before = artifact.deputy.username if artifact.deputy else None
    Artifact.objects.filter(pk=artifact.pk).update(deputy=deputy)
    event_record(
        kind=EventKind.ARTIFACT_DEPUTY_SET,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "from": before,
            "to": deputy.username if deputy else None,
        },
    )
    artifact.deputy = deputy
    return artifact


@transaction.atomic
def safety_switch_engage(*, artifact: Artifact, reason: str, actor: User | None) -> SafetySwitch:
    """Halt an action-eligible artifact: from the commit on, no resolution names its versions.

    Its tenant's administrators, with a reason; refused when the artifact is not
    action-eligible or is already halted. The active version stays as it is.
    """
    artifact = _locked(artifact)
    permissions.can_flip_safety_switch(actor, artifact).require()
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    if not artifact.action_eligible:
        raise Conflict(
            f"{artifact.path} is not action-eligible: only action-eligible artifacts have a "
            "safety switch (deactivate it to stop it serving).",
            field="artifact",
        )
    current = _engaged(artifact)
    if current is not None:
        who = current.engaged_by.username if current.engaged_by else "the system"
        raise Conflict(
            f"The safety switch of {artifact.path} is already engaged "
            f"(by {who} at {current.engaged_at:%Y-%m-%d %H:%M} UTC: {current.reason}).",
            field="artifact",
        )
    switch = SafetySwitch.objects.create(artifact=artifact, reason=reason, engaged_by=actor)
    event_record(
        kind=EventKind.SAFETY_SWITCH_ENGAGED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "reason": reason,
            "switch": str(switch.pk),
            "active_version": str(artifact.active_version_id)
            if artifact.active_version_id
            else None,
        },
    )
    return switch


@transaction.atomic
def safety_switch_release(*, artifact: Artifact, reason: str, actor: User | None) -> SafetySwitch:
    """Lift the halt: resolution names the artifact's active version again.

    Its tenant's administrators, with a reason; refused when the switch is not engaged.
    """
    artifact = _locked(artifact)
    permissions.can_flip_safety_switch(actor, artifact).require()
    reason = clean_text(reason, "reason", limit=REASON_LIMIT)
    switch = _engaged(artifact)
    if switch is None:
        raise Conflict(f"The safety switch of {artifact.path} is not engaged.", field="artifact")
    switch.released_at = timezone.now()
    switch.released_by = actor
    switch.release_reason = reason
    switch.save(update_fields=["released_at", "released_by", "release_reason"])
    event_record(
        kind=EventKind.SAFETY_SWITCH_RELEASED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "reason": reason,
            "switch": str(switch.pk),
            "engaged_reason": switch.reason,
        },
    )
    return switch
