"""Abort and roll back: every pointer a rollout moved goes back to what it was."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.inputs import clean_text
from reviews import services as reviews
from reviews.choices import ActivationKind
from rollouts import selectors
from rollouts.choices import PointerKind, RolloutState, RolloutStrategy
from rollouts.models import Override, PointerMove, Rollout
from rollouts.services.moves import (
    REASON_LIMIT,
    PointerChange,
    record_move,
    slot_label,
    version_ref,
)
from rollouts.services.transitions import Transition, canary_moves, flag_moves

#: A pointer: ("default", artifact id) or ("override", slot id, tenant id).
PointerKey = tuple[Any, ...]


def _first_moves(rollout: Rollout) -> dict[PointerKey, PointerMove]:
    """Each pointer the rollout moved, with the rollout's first move of it."""
    moves = list(
        PointerMove.objects.filter(rollout=rollout)
        .select_related("from_version__artifact__artifact_class", "from_version__artifact__tenant",
                        "to_version__artifact__artifact_class", "to_version__artifact__tenant",
                        "slot__application", "tenant")
        .order_by("-id")
    )  # fmt: skip
    first_from: dict[PointerKey, PointerMove] = {}
    for move in moves:  # newest first, so the oldest move of each pointer wins
        if move.kind == PointerKind.DEFAULT:
            first_from[("default", move.artifact_id)] = move
        elif move.kind == PointerKind.OVERRIDE:
            first_from[("override", move.slot_id, move.tenant_id)] = move
    return first_from


def _end_rules(t: Transition, reason: str, was: str) -> None:
    """A running canary's weight, or a flag that is on, ends (recorded as moves)."""
    rollout = t.rollout
    if was not in {RolloutState.PROGRESSING, RolloutState.PAUSED} or not rollout.step:
        return
    if rollout.strategy == RolloutStrategy.CANARY:
        canary_moves(t, on=False, weight=0, reason=reason)
    elif rollout.strategy == RolloutStrategy.FLAG and rollout.flag_on:
        flag_moves(t, on=False, reason=reason)


def _refuse_gone(rollout: Rollout, first_from: dict[PointerKey, PointerMove]) -> None:
    """Fail closed: a previous pointer retired or removed since is never restored."""
    earlier = [m.from_version_id for m in first_from.values() if m.from_version_id]
    verdicts = selectors.servable_versions(earlier, pointed_before=True)
    gone = sorted(v for v in verdicts.values() if isinstance(v, str))
    if gone:
        raise Conflict(
            f"{rollout.reference} cannot restore its previous pointers: {'; '.join(gone)}. "
            "Nothing was changed; bring a new change forward instead.",
            field="state",
        )


def _restore_overrides(
    t: Transition, reason: str, first_from: dict[PointerKey, PointerMove]
) -> list[dict[str, Any]]:
    """Each tenant's override of a slot back to what it was (or gone, if there was none)."""
    override_keys = [k for k in first_from if k[0] == "override"]
    if not override_keys:
        return []
    held = {
        (o.slot_id, o.tenant_id): o
        for o in Override.objects.select_for_update(of=("self",))
        .select_related("version")
        .filter(slot_id__in={k[1] for k in override_keys}, tenant_id__in={k[2] for k in override_keys})
        .order_by("pk")
    }  # fmt: skip
    restored: list[dict[str, Any]] = []
    for key in sorted(override_keys, key=lambda k: (str(k[1]), str(k[2]))):
        first = first_from[key]
        current = held.get((key[1], key[2]))
        now_version = current.version if current is not None else None
        back = first.from_version
        if (now_version.pk if now_version else None) == (back.pk if back else None):
            continue
        assert first.slot is not None
        assert first.tenant is not None
        if back is None:
            assert current is not None
            current.delete()
        elif current is None:
            Override.objects.create(slot=first.slot, tenant=first.tenant, version=back,
                                    reason=reason, set_at=t.now, set_by=t.actor)  # fmt: skip
        else:
            Override.objects.filter(pk=current.pk).update(
                version=back, rollout=None, reason=reason, set_at=t.now, set_by=t.actor
            )
        record_move(
            t.specs,
            PointerChange(
                kind=PointerKind.OVERRIDE,
                artifact=t.artifacts[first.artifact_id],
                slot=first.slot,
                tenant=first.tenant,
                from_version=now_version,
                to_version=back,
                rollout=t.rollout,
                reason=reason,
                actor=t.actor,
            ),
        )
        restored.append({"slot": slot_label(first.slot), "tenant": first.tenant.slug,
                         "to": version_ref(back)})  # fmt: skip
    return restored


def _restore_defaults(
    t: Transition, reason: str, first_from: dict[PointerKey, PointerMove]
) -> list[dict[str, Any]]:
    """Each artifact's default back to what it was (one reviews service moves them)."""
    rollout = t.rollout
    back_to = [
        first_from[k].from_version
        for k in sorted((k for k in first_from if k[0] == "default"), key=lambda k: str(k[1]))
    ]
    wanted = [
        v for v in back_to if v is not None and t.artifacts[v.artifact_id].active_version_id != v.pk
    ]
    if not wanted:
        return []
    moved = reviews.versions_activate(
        versions=wanted,
        change=rollout.change,
        actor=t.actor,
        reason=reason,
        kind=ActivationKind.ROLLBACK,
    )
    restored: list[dict[str, Any]] = []
    for version, previous in moved:
        record_move(
            t.specs,
            PointerChange(
                kind=PointerKind.DEFAULT,
                artifact=t.artifacts[version.artifact_id],
                from_version=previous,
                to_version=version,
                rollout=rollout,
                reason=reason,
                actor=t.actor,
            ),
        )
        restored.append({"default": t.artifacts[version.artifact_id].path,
                         "to": version_ref(version)})  # fmt: skip
    return restored


def restore(t: Transition, reason: str, was: str) -> list[dict[str, Any]]:
    """Put back every pointer the rollout moved, exactly as it was before its first move.

    Replays the rollout's ``PointerMove`` rows backwards: for each pointer (a default, or
    a tenant's override of a slot) the value before the rollout's first move of it. Rules
    (canary weight, flag) end with the state; their end is recorded as moves too.
    Rules end first (newest state first), then overrides, then defaults.
    """
    first_from = _first_moves(t.rollout)
    _end_rules(t, reason, was)
    _refuse_gone(t.rollout, first_from)
    return _restore_overrides(t, reason, first_from) + _restore_defaults(t, reason, first_from)


@transaction.atomic
def rollout_abort(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Stop an unfinished rollout (draft, progressing, paused): its rules end and every pointer
    it moved goes back to what it was."""
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "abort")
    t.require(RolloutState.ABORTED, "be aborted")
    was = t.rollout.state
    t.save(state=RolloutState.ABORTED, finished_at=t.now, finished_by=t.actor,
           finish_reason=reason)  # fmt: skip
    restored = restore(t, reason, was)
    t.event(EventKind.ROLLOUT_ABORTED, reason, restored=restored)
    return t.record()


@transaction.atomic
def rollout_rollback(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Restore the exact previous pointers of every slot the rollout touched, in one
    transaction, from progressing, paused or succeeded. A configuration change only: no
    approvals."""
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "roll back")
    t.require(RolloutState.ROLLED_BACK, "be rolled back")
    was = t.rollout.state
    t.save(state=RolloutState.ROLLED_BACK, finished_at=t.now, finished_by=t.actor,
           finish_reason=reason)  # fmt: skip
    restored = restore(t, reason, was)
    t.event(EventKind.ROLLOUT_ROLLED_BACK, reason, restored=restored)
    return t.record()
