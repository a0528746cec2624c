"""Rollout transitions: start, advance (and succeed), pause, resume, and a flag's switch.

Each is compare-and-swap on ``Rollout.revision`` (``Transition.save``) and follows
``rollouts.choices.TRANSITIONS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, events_record
from governance.kernel.inputs import clean_text
from governance.kernel.notifications import notification_resolve
from reviews import services as reviews
from reviews.choices import ActivationKind
from rollouts import permissions, selectors
from rollouts.choices import (
    ACTIVE_STATES,
    TRANSITIONS,
    PointerKind,
    PromotionTarget,
    RolloutState,
    RolloutStrategy,
)
from rollouts.criteria import require_approved
from rollouts.manifest import canary_blockers, manifest_append
from rollouts.models import Override, Rollout
from rollouts.services.moves import REASON_LIMIT, PointerChange, record_move, require_servable


def flag_subject(rollout: Rollout) -> str:
    """Asking to finish or roll back a flag rollout before its flag expires: open while it runs."""
    return f"rollout:{rollout.pk}:flag"


def state_payload(rollout: Rollout, reason: str) -> dict[str, Any]:
    return {
        "rollout": rollout.reference,
        "strategy": rollout.strategy,
        "state": rollout.state,
        "revision": rollout.revision,
        "step": rollout.step,
        "weight": rollout.weight if rollout.strategy == RolloutStrategy.CANARY else None,
        "reason": reason,
    }


def step_count(rollout: Rollout) -> int:
    """How many steps the rollout has: canary weights, tenant waves; global and flag: one."""
    if rollout.strategy in {RolloutStrategy.CANARY, RolloutStrategy.TENANT}:
        return len(rollout.steps)
    return 1


class Transition:
    """One transition in progress: the locked rollout, its targets and locked artifacts."""

    def __init__(
        self, rollout: Rollout, revision: int | None, actor: User | None, action: str
    ) -> None:
        locked = (
            Rollout.objects.select_for_update(of=("self",))
            .select_related("tenant", "change__tenant")
            .get(pk=rollout.pk)
        )
        permissions.can_operate_rollout(actor, locked, action).require()
        if revision is not None and locked.revision != revision:
            raise Conflict(
                f"{locked.reference} changed meanwhile (revision {locked.revision}, not "
                f"{revision}); look again.",
                field="revision",
                code="stale_revision",
            )
        self.rollout = locked
        self.seen = locked.revision
        self.actor = actor
        self.targets = list(selectors.targets_of(locked))
        self.artifacts = reviews.activation_lock(
            artifact_ids={t.slot.artifact_id for t in self.targets}, change=locked.change
        )
        self.specs: list[EventSpec] = []
        self.now = timezone.now()

    def require(self, to: str, verb: str) -> None:
        rollout = self.rollout
        if to not in TRANSITIONS[rollout.state]:
            raise Conflict(
                f"{rollout.reference} is {rollout.get_state_display().lower()}; it cannot {verb}.",
                field="state",
            )

    def save(self, **fields: Any) -> None:
        """Compare-and-swap: write ``fields`` only if the revision is still the one we saw."""
        new = self.seen + 1
        done = Rollout.objects.filter(pk=self.rollout.pk, revision=self.seen).update(
            revision=new, updated_at=self.now, **fields
        )
        if done != 1:
            raise Conflict(
                f"{self.rollout.reference} changed meanwhile; look again.",
                field="revision",
                code="stale_revision",
            )
        self.rollout.revision = new
        self.rollout.updated_at = self.now
        for name, value in fields.items():
            setattr(self.rollout, name, value)
        state = fields.get("state")
        if state is not None and state not in ACTIVE_STATES:
            # A finished rollout's flag no longer needs finishing before it expires.
            notification_resolve(
                subject=flag_subject(self.rollout),
                reason=f"{self.rollout.reference} is {RolloutState(state).label.lower()}.",
            )

    def event(self, kind: str, reason: str, **extra: Any) -> None:
        self.specs.insert(
            0,
            EventSpec(
                kind,
                self.actor,
                tenant=self.rollout.tenant,
                subject=self.rollout,
                payload={**state_payload(self.rollout, reason), **extra},
            ),
        )

    def record(self) -> Rollout:
        """The transition's events, then the phase manifest as the transition left it."""
        events_record(self.specs)
        manifest_append(rollout=self.rollout, actor=self.actor)
        return self.rollout


def _step_blockers(rollout: Rollout) -> list[str]:
    """Manifest phases 1-4 must pass before any step that moves pointers (a canary's, a wave's,
    a flag's, a global move, and the success that moves the default)."""
    return canary_blockers(rollout)


def _check_candidates(t: Transition) -> None:
    require_servable(list({x.candidate_id: x.candidate for x in t.targets}.values()), "candidate")


def _apply_step(t: Transition, reason: str) -> None:
    """The pointer moves of the rollout's current step (``t.rollout.step``, already set)."""
    rollout = t.rollout
    n = rollout.step
    if rollout.strategy == RolloutStrategy.CANARY:
        canary_moves(
            t,
            on=True,
            weight=int(rollout.steps[n - 1]),
            reason=reason or f"{rollout.reference} step {n}",
        )
    elif rollout.strategy == RolloutStrategy.TENANT:
        wave = list(Tenant.objects.filter(slug__in=rollout.steps[n - 1]).order_by("slug"))
        _set_wave(t, wave, reason or f"{rollout.reference} wave {n}")
    elif rollout.strategy == RolloutStrategy.FLAG and n == 1 and rollout.flag_on:
        flag_moves(t, on=True, reason=reason or f"{rollout.reference} started with the flag on")


def _set_wave(t: Transition, wave: Sequence[Tenant], reason: str) -> None:
    slots = [target.slot for target in t.targets]
    held = {
        (o.slot_id, o.tenant_id): o
        for o in Override.objects.select_for_update(of=("self",))
        .select_related("version__artifact__artifact_class", "version__artifact__tenant")
        .filter(slot__in=slots, tenant__in=wave)
        .order_by("pk")
    }
    for target in t.targets:
        for tenant in wave:
            current = held.get((target.slot_id, tenant.pk))
            before = current.version if current is not None else None
            if current is None:
                Override.objects.create(
                    slot=target.slot,
                    tenant=tenant,
                    version=target.candidate,
                    rollout=t.rollout,
                    reason=reason,
                    set_at=t.now,
                    set_by=t.actor,
                )
            else:
                Override.objects.filter(pk=current.pk).update(
                    version=target.candidate,
                    rollout=t.rollout,
                    reason=reason,
                    set_at=t.now,
                    set_by=t.actor,
                )
            record_move(
                t.specs,
                PointerChange(
                    kind=PointerKind.OVERRIDE,
                    artifact=t.artifacts[target.slot.artifact_id],
                    slot=target.slot,
                    tenant=tenant,
                    from_version=before,
                    to_version=target.candidate,
                    rollout=t.rollout,
                    reason=reason,
                    actor=t.actor,
                ),
            )


def canary_moves(t: Transition, *, on: bool, weight: int, reason: str) -> None:
    """The canary (or paper cohort) rule of every target: on at ``weight``, or ended (0)."""
    rollout = t.rollout
    kind = PointerKind.COHORT if rollout.target == PromotionTarget.PAPER else PointerKind.CANARY
    for target in t.targets:
        record_move(
            t.specs,
            PointerChange(
                kind=kind,
                artifact=t.artifacts[target.slot.artifact_id],
                slot=target.slot,
                tenant=rollout.tenant,
                from_version=target.baseline if on else target.candidate,
                to_version=target.candidate if on else target.baseline,
                weight=weight,
                rollout=rollout,
                reason=reason,
                actor=t.actor,
            ),
        )


def flag_moves(t: Transition, *, on: bool, reason: str) -> None:
    for target in t.targets:
        record_move(
            t.specs,
            PointerChange(
                kind=PointerKind.FLAG,
                artifact=t.artifacts[target.slot.artifact_id],
                slot=target.slot,
                tenant=t.rollout.tenant,
                from_version=target.baseline if on else target.candidate,
                to_version=target.candidate if on else target.baseline,
                rollout=t.rollout,
                reason=reason,
                actor=t.actor,
            ),
        )


def _succeed(t: Transition, reason: str) -> None:
    """Past the last step: the candidate becomes the default (one reviews service writes the
    column, the ``Activation`` rows and the stages, and rebinds open changes); a tenant
    rollout's overrides are then cleared, since every tenant follows the default."""
    rollout = t.rollout
    why = reason or f"{rollout.reference} succeeded"
    candidates = {x.slot.artifact_id: x.candidate for x in t.targets}
    before = {pk: t.artifacts[pk].active_version for pk in candidates}
    moved = reviews.versions_activate(
        versions=list(candidates.values()),
        change=rollout.change,
        actor=t.actor,
        reason=why,
        kind=ActivationKind.PROMOTION,
    )
    for version, previous in moved:
        record_move(
            t.specs,
            PointerChange(
                kind=PointerKind.DEFAULT,
                artifact=t.artifacts[version.artifact_id],
                from_version=previous if previous is not None else before.get(version.artifact_id),
                to_version=version,
                rollout=rollout,
                reason=why,
                actor=t.actor,
            ),
        )
    if rollout.strategy == RolloutStrategy.TENANT:
        own = list(
            Override.objects.select_for_update(of=("self",))
            .select_related("slot__application", "tenant", "version__artifact__artifact_class",
                            "version__artifact__tenant")
            .filter(rollout=rollout)
            .order_by("pk")
        )  # fmt: skip
        for override in own:
            override.delete()
            record_move(
                t.specs,
                PointerChange(
                    kind=PointerKind.OVERRIDE,
                    artifact=t.artifacts[override.slot.artifact_id],
                    slot=override.slot,
                    tenant=override.tenant,
                    from_version=override.version,
                    to_version=None,
                    rollout=rollout,
                    reason=f"{why}: the tenant follows the default",
                    actor=t.actor,
                ),
            )


@transaction.atomic
def rollout_start(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str = ""
) -> Rollout:
    """Draft -> progressing at step 1 (a global rollout moves the default and succeeds at once)."""
    reason = clean_text(reason, "reason", required=False, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "start")
    t.require(RolloutState.PROGRESSING, "start")
    r = t.rollout
    if r.state != RolloutState.DRAFT:
        raise Conflict(f"{r.reference} has started already.", field="state")
    _check_candidates(t)
    require_approved(r.change, list({x.candidate_id: x.candidate for x in t.targets}.values()))
    if r.strategy == RolloutStrategy.FLAG and r.flag_expires_at and r.flag_expires_at <= t.now:
        raise Conflict(
            f"The flag '{r.flag_key}' expired; create a new rollout.", field="flag_expires_at"
        )
    blockers = _step_blockers(r)
    if blockers:
        what = "its canary" if r.strategy == RolloutStrategy.CANARY else "moving pointers"
        raise Conflict(f"{r.reference} cannot start {what}: {'; '.join(blockers)}", field="state")
    holding = selectors.rollouts_holding([x.slot_id for x in t.targets], exclude=r.pk).filter(
        state__in=[RolloutState.PROGRESSING, RolloutState.PAUSED]
    )
    first = holding.order_by("number").first()
    if first is not None:
        raise Conflict(f"{first.reference} is moving these slots now.", field="state")
    if r.strategy == RolloutStrategy.GLOBAL:
        t.save(state=RolloutState.SUCCEEDED, step=1, started_at=t.now, finished_at=t.now,
               finished_by=t.actor, finish_reason=reason)  # fmt: skip
        _succeed(t, reason or f"{r.reference}: global rollout")
        t.event(EventKind.ROLLOUT_SUCCEEDED, reason)
        t.event(EventKind.ROLLOUT_STARTED, reason)
        return t.record()
    t.save(state=RolloutState.PROGRESSING, step=1, started_at=t.now)
    _apply_step(t, reason)
    t.event(EventKind.ROLLOUT_STARTED, reason)
    return t.record()


@transaction.atomic
def rollout_advance(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str = ""
) -> Rollout:
    """Step n -> n+1; past the last step the rollout succeeds and the default moves."""
    reason = clean_text(reason, "reason", required=False, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "advance")
    r = t.rollout
    if r.state != RolloutState.PROGRESSING:
        verb = "advance (resume it first)" if r.state == RolloutState.PAUSED else "advance"
        raise Conflict(
            f"{r.reference} is {r.get_state_display().lower()}; it cannot {verb}.", field="state"
        )
    _check_candidates(t)
    blockers = _step_blockers(r)
    if blockers:
        what = "next canary step" if r.strategy == RolloutStrategy.CANARY else "next step"
        raise Conflict(
            f"{r.reference} cannot take its {what}: {'; '.join(blockers)}", field="state"
        )
    if r.step >= step_count(r):
        t.require(RolloutState.SUCCEEDED, "succeed")
        t.save(state=RolloutState.SUCCEEDED, finished_at=t.now, finished_by=t.actor,
               finish_reason=reason)  # fmt: skip
        _succeed(t, reason)
        t.event(EventKind.ROLLOUT_SUCCEEDED, reason)
        return t.record()
    t.save(step=r.step + 1)
    _apply_step(t, reason)
    t.event(EventKind.ROLLOUT_ADVANCED, reason, from_step=r.step - 1)
    return t.record()


@transaction.atomic
def rollout_pause(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Progressing -> paused: the rules keep serving as they are (same weight, same subjects)."""
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "pause")
    if t.rollout.state == RolloutState.PAUSED:
        raise Conflict(f"{t.rollout.reference} is paused already.", field="state")
    t.require(RolloutState.PAUSED, "pause")
    t.save(state=RolloutState.PAUSED)
    t.event(EventKind.ROLLOUT_PAUSED, reason)
    return t.record()


@transaction.atomic
def rollout_resume(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Paused -> progressing at the same step."""
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "resume")
    if t.rollout.state != RolloutState.PAUSED:
        raise Conflict(
            f"{t.rollout.reference} is {t.rollout.get_state_display().lower()}, not paused.",
            field="state",
        )
    _check_candidates(t)
    t.save(state=RolloutState.PROGRESSING)
    t.event(EventKind.ROLLOUT_RESUMED, reason)
    return t.record()


@transaction.atomic
def rollout_flag_set(
    *, rollout: Rollout, on: bool, actor: User | None, reason: str, revision: int | None = None
) -> Rollout:
    """Switch a flag rollout's flag on or off (draft, progressing or paused). An expired flag
    can only be switched off."""
    reason = clean_text(reason, "reason", required=True, limit=REASON_LIMIT)
    t = Transition(rollout, revision, actor, "switch the flag of")
    r = t.rollout
    if r.strategy != RolloutStrategy.FLAG:
        raise DomainError(f"{r.reference} is a {r.strategy} rollout; it has no flag.", field="on")
    if r.state not in selectors.HOLDING_STATES:
        raise Conflict(
            f"{r.reference} is {r.get_state_display().lower()}; its flag is over.", field="state"
        )
    if bool(on) == r.flag_on:
        raise Conflict(f"The flag '{r.flag_key}' is {'on' if on else 'off'} already.", field="on")
    if on:
        if r.flag_expires_at is not None and r.flag_expires_at <= t.now:
            raise Conflict(
                f"The flag '{r.flag_key}' expired at {r.flag_expires_at.isoformat()}; it can only "
                "be switched off.",
                field="flag_expires_at",
            )
        _check_candidates(t)
    t.save(flag_on=bool(on))
    if r.state != RolloutState.DRAFT:
        flag_moves(t, on=bool(on), reason=reason)
    t.event(EventKind.ROLLOUT_FLAG_SET, reason, flag_key=r.flag_key, on=bool(on))
    return t.record()
