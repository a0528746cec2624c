"""A draft rollout of a promoted change: its strategy, steps, cohort or flag, and targets."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, events_record
from governance.kernel.inputs import clean_text
from registry.choices import ImpactChoice
from registry.models import Artifact, Version
from reviews import services as reviews
from reviews.choices import ChangeStatus
from reviews.models import ChangeItem, ChangeRequest
from rollouts import permissions, selectors
from rollouts.choices import BUCKETS, CANARY_DEFAULT_STEPS, PromotionTarget, RolloutStrategy
from rollouts.criteria import require_approved
from rollouts.manifest import manifest_append
from rollouts.models import Rollout, RolloutTarget, Slot
from rollouts.services.moves import REASON_LIMIT, require_servable, slot_label, version_ref
from rollouts.services.transitions import state_payload

#: PostgreSQL advisory lock that serialises the handing out of rollout numbers ("gov-ro#").
NUMBER_LOCK_ID = 0x676F762D726F23

FLAG_KEY_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
COHORT_LIMIT = 10_000


def _next_number() -> int:
    """max + 1 under a transaction-long lock (rollouts are never deleted, so max only grows)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [NUMBER_LOCK_ID])
    return (Rollout.objects.aggregate(m=Max("number"))["m"] or 0) + 1


def _canary_steps(steps: Any) -> list[int]:
    if steps is None:
        return list(CANARY_DEFAULT_STEPS)
    if not isinstance(steps, list | tuple) or not steps:
        raise DomainError("Give the canary weights as a non-empty list.", field="steps")
    weights: list[int] = []
    for raw in steps:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise DomainError(
                f"Each weight is a whole number of buckets (1..{BUCKETS}).", field="steps"
            )
        if not 1 <= raw <= BUCKETS:
            raise DomainError(f"Each weight is between 1 and {BUCKETS}.", field="steps")
        if weights and raw <= weights[-1]:
            raise DomainError("The weights must strictly increase.", field="steps")
        weights.append(raw)
    if weights[-1] != BUCKETS:
        raise DomainError(f"The last weight must be {BUCKETS} (everyone).", field="steps")
    return weights


def _tenant_waves(steps: Any, tenant: Tenant, slots: Sequence[Slot]) -> list[list[str]]:
    if not isinstance(steps, list | tuple) or not steps:
        raise DomainError(
            "A tenant-scoped rollout needs its waves: a list of lists of tenant slugs.",
            field="steps",
        )
    waves: list[list[str]] = []
    seen: set[str] = set()
    for wave in steps:
        if not isinstance(wave, list | tuple) or not wave:
            raise DomainError("Each wave is a non-empty list of tenant slugs.", field="steps")
        if not all(isinstance(s, str) and s for s in wave):
            raise DomainError("Each wave is a non-empty list of tenant slugs.", field="steps")
        repeated = seen & set(wave) or (len(set(wave)) != len(wave))
        if repeated:
            raise DomainError("A tenant may appear in one wave only, once.", field="steps")
        seen |= set(wave)
        waves.append(list(wave))
    known = {t.slug: t for t in Tenant.objects.filter(slug__in=seen)}
    missing = sorted(seen - set(known))
    if missing:
        raise DomainError(f"No tenant {', '.join(missing)}.", field="steps")
    if not selectors.is_platform(tenant) and seen != {tenant.slug}:
        raise DomainError(
            f"A rollout of '{tenant.slug}' can only reach '{tenant.slug}'; waves across tenants "
            "are for platform changes.",
            field="steps",
        )
    for slug in sorted(seen):
        for slot in slots:
            if not selectors.slot_serves_tenant(slot, known[slug]):
                raise DomainError(
                    f"{slot_label(slot)} is not part of '{slug}''s runtime.", field="steps"
                )
    return waves


def _cohort(cohort: Any) -> list[str]:
    if not isinstance(cohort, list | tuple) or not cohort:
        raise DomainError("A paper canary needs a non-empty cohort of subjects.", field="cohort")
    subjects: list[str] = []
    for raw in cohort:
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 200 or "\x00" in raw:
            raise DomainError("Each subject is a non-empty text of at most 200.", field="cohort")
        if raw.strip() not in subjects:
            subjects.append(raw.strip())
    if len(subjects) > COHORT_LIMIT:
        raise DomainError(f"At most {COHORT_LIMIT} subjects.", field="cohort")
    return subjects


def _flag_expiry(value: Any) -> datetime:
    if value is None:
        raise DomainError(
            "A flag needs an expiry date (flags must be temporary).", field="flag_expires_at"
        )
    if not isinstance(value, datetime):
        raise DomainError("Give a date and time.", field="flag_expires_at")
    expiry = timezone.make_aware(value) if timezone.is_naive(value) else value
    now = timezone.now()
    if expiry <= now:
        raise DomainError("The expiry must be in the future.", field="flag_expires_at")
    limit = settings.ROLLOUT_FLAG_MAX_DAYS
    if expiry > now + timedelta(days=limit):
        raise DomainError(f"A flag lives at most {limit} days.", field="flag_expires_at")
    return expiry


@dataclass(frozen=True)
class _Asked:
    """What the caller asked for, beside the change."""

    strategy: str
    target: str
    steps: Any
    cohort: Any
    flag_key: str
    flag_expires_at: datetime | None


@dataclass(frozen=True)
class _Plan:
    """The checked steps, cohort and flag the rollout is created with."""

    steps: list[Any] = field(default_factory=list)
    cohort: list[str] = field(default_factory=list)
    flag_key: str = ""
    flag_expires_at: datetime | None = None


def _require_promoted(change: ChangeRequest) -> None:
    if change.status != ChangeStatus.PROMOTED or change.promoted_at is None:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; only a promoted "
            "change can be rolled out.",
            field="change",
        )


def _slots_to_move(
    change: ChangeRequest, artifact_ids: set[Any], artifacts: dict[Any, Artifact]
) -> tuple[list[Slot], dict[Any, Version]]:
    """The slots bound to what ``change`` changes and each artifact's candidate; refused when
    none is bound, a candidate may not serve or is the default already, or another rollout
    holds a slot."""
    items = list(
        ChangeItem.objects.filter(change=change).select_related(
            "proposed__artifact__artifact_class", "proposed__artifact__tenant"
        )
    )
    slots = list(
        Slot.objects.filter(artifact_id__in=artifact_ids)
        .select_related("application__tenant", "artifact__tenant", "artifact__artifact_class")
        .order_by("application__slug", "name")
    )
    if not slots:
        raise DomainError(
            f"No application slot is bound to what {change.reference} changes; its promotion "
            "already made it active.",
            field="change",
        )
    candidates = {i.artifact_id: i.proposed for i in items}
    require_servable(
        [candidates[a] for a in sorted({s.artifact_id for s in slots}, key=str)], "change"
    )
    for slot in slots:
        if artifacts[slot.artifact_id].active_version_id == candidates[slot.artifact_id].pk:
            raise Conflict(
                f"{candidates[slot.artifact_id].path} is already the default of {slot_label(slot)}.",
                field="change",
            )
    holding = selectors.rollouts_holding([s.pk for s in slots]).order_by("number").first()
    if holding is not None:
        raise Conflict(
            f"{holding.reference} ({holding.get_state_display().lower()}) already moves these "
            "slots; finish, abort or roll it back first.",
            field="change",
        )
    return slots, candidates


def _refuse_global_major(
    asked: _Asked, slots: Sequence[Slot], candidates: dict[Any, Version]
) -> None:
    if asked.strategy != RolloutStrategy.GLOBAL:
        return
    major = sorted(
        candidates[a].path
        for a in {s.artifact_id for s in slots}
        if candidates[a].declared_impact == ImpactChoice.MAJOR
    )
    if major:
        raise DomainError(
            f"{', '.join(major)} is a major version: a global rollout is for patch and minor "
            "versions only. Use a tenant, flag or canary rollout.",
            field="strategy",
        )


def _refuse_mismatches(asked: _Asked) -> None:
    """Options that belong to another strategy or target."""
    strategy = asked.strategy
    if asked.target == PromotionTarget.PAPER and strategy != RolloutStrategy.CANARY:
        raise DomainError("Only a canary can target a paper cohort.", field="target")
    if asked.cohort and asked.target != PromotionTarget.PAPER:
        raise DomainError("Only a paper canary has a cohort.", field="cohort")
    if (asked.flag_key or asked.flag_expires_at) and strategy != RolloutStrategy.FLAG:
        raise DomainError("Only a flag rollout has a flag.", field="flag_key")
    if asked.steps is not None and strategy in {RolloutStrategy.GLOBAL, RolloutStrategy.FLAG}:
        raise DomainError(f"A {strategy} rollout has one step; give no steps.", field="steps")


def _flag_plan(asked: _Asked, tenant: Tenant) -> _Plan:
    flag_key = clean_text(asked.flag_key, "flag_key", required=True, limit=100)
    if not re.match(FLAG_KEY_RE, flag_key):
        raise DomainError(
            "Start with a letter; then letters, digits, '_', '.' or '-'.", field="flag_key"
        )
    expires = _flag_expiry(asked.flag_expires_at)
    clash = (
        Rollout.objects.filter(
            tenant=tenant, flag_key=flag_key, state__in=list(selectors.HOLDING_STATES)
        )
        .order_by("number")
        .first()
    )
    if clash is not None:
        raise Conflict(f"{clash.reference} uses the flag '{flag_key}'.", field="flag_key")
    return _Plan(flag_key=flag_key, flag_expires_at=expires)


def _plan(asked: _Asked, tenant: Tenant, slots: Sequence[Slot]) -> _Plan:
    """The strategy's own checks: a canary's weights (and a paper cohort), a tenant rollout's
    waves, a flag's key and expiry."""
    if asked.strategy == RolloutStrategy.CANARY:
        steps: list[Any] = list(_canary_steps(asked.steps))
        if asked.target == PromotionTarget.PAPER:
            return _Plan(steps=steps, cohort=_cohort(asked.cohort))
        return _Plan(steps=steps)
    if asked.strategy == RolloutStrategy.TENANT:
        return _Plan(steps=list(_tenant_waves(asked.steps, tenant, slots)))
    if asked.strategy == RolloutStrategy.FLAG:
        return _flag_plan(asked, tenant)
    return _Plan()


def _created_event(
    rollout: Rollout, targets: Sequence[RolloutTarget], reason: str, actor: User | None
) -> EventSpec:
    expires = rollout.flag_expires_at
    return EventSpec(
        EventKind.ROLLOUT_CREATED,
        actor,
        tenant=rollout.tenant,
        subject=rollout,
        payload={
            **state_payload(rollout, reason),
            "change": rollout.change.reference,
            "target": rollout.target,
            "steps": rollout.steps,
            "cohort_size": len(rollout.cohort),
            "flag_key": rollout.flag_key,
            "flag_expires_at": expires.isoformat() if expires else None,
            "targets": [
                {
                    "slot": slot_label(t.slot),
                    "baseline": version_ref(t.baseline),
                    "candidate": version_ref(t.candidate),
                }
                for t in targets
            ],
        },
    )


@transaction.atomic
def rollout_create(
    *,
    change: ChangeRequest,
    actor: User | None,
    strategy: str | None = None,
    steps: Any = None,
    target: str = PromotionTarget.LIVE,
    cohort: Any = None,
    flag_key: str = "",
    flag_expires_at: datetime | None = None,
    reason: str = "",
) -> Rollout:
    """A draft rollout of a promoted change's versions to every slot bound to their artifacts.

    One target per slot (a bundle moves and rolls back together): its baseline is the
    slot's default now, its candidate the version the change proposes. ``strategy``
    defaults to the change's. A candidate that may not serve, a slot another unfinished
    rollout holds, or a global rollout of a major version are refused.
    """
    reason = clean_text(reason, "reason", required=False, limit=REASON_LIMIT)
    strategy = strategy or change.rollout_strategy
    if strategy not in RolloutStrategy.values:
        raise DomainError(f"Choose one of {', '.join(RolloutStrategy.values)}.", field="strategy")
    if target not in PromotionTarget.values:
        raise DomainError(f"Choose one of {', '.join(PromotionTarget.values)}.", field="target")
    asked = _Asked(strategy, target, steps, cohort, flag_key, flag_expires_at)
    artifact_ids = set(
        ChangeItem.objects.filter(change=change).values_list("artifact_id", flat=True)
    )
    artifacts = reviews.activation_lock(artifact_ids=artifact_ids, change=change)
    change = ChangeRequest.objects.select_related("tenant").get(pk=change.pk)
    permissions.can_create_rollout(actor, change).require()
    _require_promoted(change)
    slots, candidates = _slots_to_move(change, artifact_ids, artifacts)
    require_approved(change, candidates.values())  # an enforced lifecycle policy's Approved
    _refuse_global_major(asked, slots, candidates)
    _refuse_mismatches(asked)
    plan = _plan(asked, change.tenant, slots)
    rollout = Rollout.objects.create(
        number=_next_number(),
        tenant=change.tenant,
        change=change,
        strategy=strategy,
        target=target,
        steps=plan.steps,
        cohort=plan.cohort,
        salt=secrets.token_hex(16),
        flag_key=plan.flag_key,
        flag_expires_at=plan.flag_expires_at,
        reason=reason,
        created_by=actor,
    )
    targets = [
        RolloutTarget.objects.create(
            rollout=rollout,
            slot=slot,
            baseline=artifacts[slot.artifact_id].active_version,
            candidate=candidates[slot.artifact_id],
        )
        for slot in slots
    ]
    events_record([_created_event(rollout, targets, reason, actor)])
    manifest_append(rollout=rollout, actor=actor)  # version 1: the draft's phases
    return rollout
