"""Every change to applications, slots, overrides and rollouts; each pointer move is a row and an event.

All functions are keyword-only and atomic, check permissions with ``rollouts.permissions``
and refuse with ``governance.kernel.errors``. Locks, in the one order: Rollout rows, then the
change rows and artifact rows a default move needs (``reviews.services.activation_lock``:
changes, then artifacts, by primary key), then Override rows; events are appended when
the transaction ends (``event_record`` defers them), so the log's lock is taken last.

Rollout transitions follow ``rollouts.choices.TRANSITIONS`` and are compare-and-swap on
``Rollout.revision``: ``UPDATE ... WHERE revision = <seen>``; a stale revision is a 409.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
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
from reviews.choices import ActivationKind, ChangeStatus
from reviews.models import ChangeItem, ChangeRequest
from rollouts import permissions, selectors
from rollouts.choices import (
    BUCKETS,
    CANARY_DEFAULT_STEPS,
    TRANSITIONS,
    PointerKind,
    PromotionTarget,
    RolloutState,
    RolloutStrategy,
)
from rollouts.manifest import canary_blockers, manifest_append
from rollouts.models import (
    APP_SLUG_RE,
    SLOT_NAME_RE,
    Application,
    Override,
    PointerMove,
    Rollout,
    RolloutTarget,
    Slot,
)

#: PostgreSQL advisory lock that serialises the handing out of rollout numbers ("gov-ro#").
NUMBER_LOCK_ID = 0x676F762D726F23

FLAG_KEY_RE = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
COHORT_LIMIT = 10_000

# --- helpers -------------------------------------------------------------------------------


def _text(value: str | None, field: str, *, required: bool, limit: int | None = 2000) -> str:
    return clean_text(value, field, required=required, limit=limit)


def _version_ref(version: Version | None) -> dict[str, str] | None:
    if version is None:
        return None
    return {"path": version.path, "sha256": version.manifest_sha256}


def _slot_label(slot: Slot | None) -> str | None:
    return None if slot is None else f"{slot.application.slug}.{slot.name}"


def _move(
    specs: list[EventSpec],
    *,
    kind: str,
    artifact: Artifact,
    from_version: Version | None,
    to_version: Version | None,
    reason: str,
    actor: User | None,
    slot: Slot | None = None,
    tenant: Tenant | None = None,
    weight: int | None = None,
    rollout: Rollout | None = None,
) -> PointerMove:
    """Record one pointer move (the row now, its ``pointer.moved`` event with the others)."""
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
        "slot": _slot_label(slot),
        "tenant": tenant.slug if tenant else None,
        "from": _version_ref(from_version),
        "to": _version_ref(to_version),
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


def _require_servable(versions: Iterable[Version], field: str) -> dict[Any, str]:
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


def _lock_artifact(artifact: Artifact) -> Artifact:
    return (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("artifact_class", "tenant", "active_version__artifact__artifact_class")
        .get(pk=artifact.pk)
    )


# --- applications and slots -------------------------------------------------------------------


@transaction.atomic
def application_create(
    *, tenant: Tenant, slug: str, name: str, description: str = "", actor: User | None
) -> Application:
    """Declare a consuming service (``sales-agent``) of ``tenant``; the platform's is shared."""
    permissions.can_manage_application(actor, tenant).require()
    slug = _text(slug, "slug", required=True, limit=100)
    if not re.match(APP_SLUG_RE, slug):
        raise DomainError("Use lowercase letters, digits and hyphens.", field="slug")
    name = _text(name, "name", required=True, limit=200)
    description = _text(description, "description", required=False, limit=5000)
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
        new_name = _text(name, "name", required=True, limit=200)
        if new_name != application.name:
            changes["name"] = {"old": application.name, "new": new_name}
            application.name = new_name
    if description is not None:
        new_description = _text(description, "description", required=False, limit=5000)
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
    name = _text(name, "name", required=True, limit=100)
    if not re.match(SLOT_NAME_RE, name):
        raise DomainError(
            "Start with a letter; then letters, digits, '_' or '-' (at most 100).", field="name"
        )
    description = _text(description, "description", required=False, limit=5000)
    artifact = _lock_artifact(artifact)  # a promotion of it waits, and then sees the slot
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
                    "slot": _slot_label(slot),
                    "artifact": artifact.path,
                    "default": _version_ref(artifact.active_version),
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
    description = _text(description, "description", required=False, limit=5000)
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
                    "slot": _slot_label(slot),
                    "changes": {"description": {"old": old, "new": description}},
                },
            )
        ]
    )
    return slot


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
            _move(specs, kind=PointerKind.DEFAULT, artifact=artifact, from_version=before,
                  to_version=after, reason=reason, actor=actor)  # fmt: skip
    if specs:
        events_record(specs)


# --- overrides ------------------------------------------------------------------------------


def _override_target(slot: Slot, tenant: Tenant) -> Slot:
    slot = Slot.objects.select_related(
        "application__tenant", "artifact__tenant", "artifact__artifact_class"
    ).get(pk=slot.pk)
    if not selectors.slot_serves_tenant(slot, tenant):
        raise DomainError(
            f"{_slot_label(slot)} is not part of '{tenant.slug}''s runtime (its application or "
            "artifact belongs to another tenant).",
            field="tenant",
        )
    return slot


def _lock_override(slot: Slot, tenant: Tenant) -> Override | None:
    return (
        Override.objects.select_for_update(of=("self",))
        .select_related("version__artifact__artifact_class", "version__artifact__tenant", "rollout")
        .filter(slot=slot, tenant=tenant)
        .first()
    )


def _refuse_if_held(override: Override | None) -> None:
    held_by = override.rollout if override is not None else None
    if held_by is not None and held_by.state in selectors.HOLDING_STATES:
        raise Conflict(
            f"{held_by.reference} set this override and is "
            f"{held_by.get_state_display().lower()}; finish, abort or roll it back first.",
            field="tenant",
        )


@transaction.atomic
def override_set(
    *, slot: Slot, tenant: Tenant, version: Version, reason: str, actor: User | None
) -> Override:
    """Make ``tenant`` serve ``version`` in ``slot`` instead of the default (a pointer move).

    The version must be of the slot's artifact and servable (went through a promoted
    change; not removed, retired or a draft). An administrator of ``tenant`` only.
    """
    permissions.can_set_override(actor, tenant).require()
    reason = _text(reason, "reason", required=True)
    slot = _override_target(slot, tenant)
    if version.artifact_id != slot.artifact_id:
        raise DomainError(
            f"{version.path} is not a version of {slot.artifact.path}.", field="version"
        )
    artifact = _lock_artifact(slot.artifact)
    _require_servable([version], "version")
    current = _lock_override(slot, tenant)
    _refuse_if_held(current)
    if current is not None and current.version_id == version.pk:
        raise Conflict(f"'{tenant.slug}' already serves {version.path} here.", field="version")
    specs: list[EventSpec] = []
    before = current.version if current is not None else None
    if current is None:
        current = Override.objects.create(
            slot=slot, tenant=tenant, version=version, reason=reason, set_by=actor
        )
    else:
        current.version = version
        current.rollout = None
        current.reason = reason
        current.set_at = timezone.now()
        current.set_by = actor
        current.save(update_fields=["version", "rollout", "reason", "set_at", "set_by"])
    _move(
        specs,
        kind=PointerKind.OVERRIDE,
        artifact=artifact,
        slot=slot,
        tenant=tenant,
        from_version=before,
        to_version=version,
        reason=reason,
        actor=actor,
    )
    events_record(specs)
    return current


@transaction.atomic
def override_clear(*, slot: Slot, tenant: Tenant, reason: str, actor: User | None) -> None:
    """``tenant`` follows the slot's default again (a pointer move)."""
    permissions.can_set_override(actor, tenant).require()
    reason = _text(reason, "reason", required=True)
    slot = _override_target(slot, tenant)
    artifact = _lock_artifact(slot.artifact)
    current = _lock_override(slot, tenant)
    if current is None:
        raise Conflict(f"'{tenant.slug}' has no override of {_slot_label(slot)}.", field="tenant")
    _refuse_if_held(current)
    before = current.version
    current.delete()
    specs: list[EventSpec] = []
    _move(
        specs,
        kind=PointerKind.OVERRIDE,
        artifact=artifact,
        slot=slot,
        tenant=tenant,
        from_version=before,
        to_version=None,
        reason=reason,
        actor=actor,
    )
    events_record(specs)


# --- rollouts: creation ---------------------------------------------------------------------


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
                    f"{_slot_label(slot)} is not part of '{slug}''s runtime.", field="steps"
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
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    now = timezone.now()
    if value <= now:
        raise DomainError("The expiry must be in the future.", field="flag_expires_at")
    limit = settings.ROLLOUT_FLAG_MAX_DAYS
    if value > now + timedelta(days=limit):
        raise DomainError(f"A flag lives at most {limit} days.", field="flag_expires_at")
    return value


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
    reason = _text(reason, "reason", required=False)
    strategy = strategy or change.rollout_strategy
    if strategy not in RolloutStrategy.values:
        raise DomainError(f"Choose one of {', '.join(RolloutStrategy.values)}.", field="strategy")
    if target not in PromotionTarget.values:
        raise DomainError(f"Choose one of {', '.join(PromotionTarget.values)}.", field="target")
    artifact_ids = set(
        ChangeItem.objects.filter(change=change).values_list("artifact_id", flat=True)
    )
    artifacts = reviews.activation_lock(artifact_ids=artifact_ids, change=change)
    change = ChangeRequest.objects.select_related("tenant").get(pk=change.pk)
    permissions.can_create_rollout(actor, change).require()
    if change.status != ChangeStatus.PROMOTED or change.promoted_at is None:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; only a promoted "
            "change can be rolled out.",
            field="change",
        )
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
    _require_servable(
        [candidates[a] for a in sorted({s.artifact_id for s in slots}, key=str)], "change"
    )
    for slot in slots:
        if artifacts[slot.artifact_id].active_version_id == candidates[slot.artifact_id].pk:
            raise Conflict(
                f"{candidates[slot.artifact_id].path} is already the default of {_slot_label(slot)}.",
                field="change",
            )
    holding = selectors.rollouts_holding([s.pk for s in slots]).order_by("number").first()
    if holding is not None:
        raise Conflict(
            f"{holding.reference} ({holding.get_state_display().lower()}) already moves these "
            "slots; finish, abort or roll it back first.",
            field="change",
        )
    if strategy == RolloutStrategy.GLOBAL:
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
    if target == PromotionTarget.PAPER and strategy != RolloutStrategy.CANARY:
        raise DomainError("Only a canary can target a paper cohort.", field="target")
    if cohort and target != PromotionTarget.PAPER:
        raise DomainError("Only a paper canary has a cohort.", field="cohort")
    if (flag_key or flag_expires_at) and strategy != RolloutStrategy.FLAG:
        raise DomainError("Only a flag rollout has a flag.", field="flag_key")
    if steps is not None and strategy in {RolloutStrategy.GLOBAL, RolloutStrategy.FLAG}:
        raise DomainError(f"A {strategy} rollout has one step; give no steps.", field="steps")
    chosen: list[Any] = []
    subjects: list[str] = []
    expires: datetime | None = None
    if strategy == RolloutStrategy.CANARY:
        chosen = list(_canary_steps(steps))
        if target == PromotionTarget.PAPER:
            subjects = _cohort(cohort)
    elif strategy == RolloutStrategy.TENANT:
        chosen = list(_tenant_waves(steps, change.tenant, slots))
    elif strategy == RolloutStrategy.FLAG:
        flag_key = _text(flag_key, "flag_key", required=True, limit=100)
        if not re.match(FLAG_KEY_RE, flag_key):
            raise DomainError(
                "Start with a letter; then letters, digits, '_', '.' or '-'.", field="flag_key"
            )
        expires = _flag_expiry(flag_expires_at)
        clash = (
            Rollout.objects.filter(
                tenant=change.tenant, flag_key=flag_key, state__in=list(selectors.HOLDING_STATES)
            )
            .order_by("number")
            .first()
        )
        if clash is not None:
            raise Conflict(f"{clash.reference} uses the flag '{flag_key}'.", field="flag_key")
    rollout = Rollout.objects.create(
        number=_next_number(),
        tenant=change.tenant,
        change=change,
        strategy=strategy,
        target=target,
        steps=chosen,
        cohort=subjects,
        salt=secrets.token_hex(16),
        flag_key=flag_key if strategy == RolloutStrategy.FLAG else "",
        flag_expires_at=expires,
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
    events_record(
        [
            EventSpec(
                EventKind.ROLLOUT_CREATED,
                actor,
                tenant=rollout.tenant,
                subject=rollout,
                payload={
                    **_state_payload(rollout, reason),
                    "change": change.reference,
                    "target": target,
                    "steps": chosen,
                    "cohort_size": len(subjects),
                    "flag_key": rollout.flag_key,
                    "flag_expires_at": expires.isoformat() if expires else None,
                    "targets": [
                        {
                            "slot": _slot_label(t.slot),
                            "baseline": _version_ref(t.baseline),
                            "candidate": _version_ref(t.candidate),
                        }
                        for t in targets
                    ],
                },
            )
        ]
    )
    manifest_append(rollout=rollout, actor=actor)  # version 1: the draft's phases
    return rollout


# --- rollouts: transitions --------------------------------------------------------------------


def _state_payload(rollout: Rollout, reason: str) -> dict[str, Any]:
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


class _Transition:
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

    def event(self, kind: str, reason: str, **extra: Any) -> None:
        self.specs.insert(
            0,
            EventSpec(
                kind,
                self.actor,
                tenant=self.rollout.tenant,
                subject=self.rollout,
                payload={**_state_payload(self.rollout, reason), **extra},
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


def _check_candidates(t: _Transition) -> None:
    _require_servable(list({x.candidate_id: x.candidate for x in t.targets}.values()), "candidate")


def _apply_step(t: _Transition, reason: str) -> None:
    """The pointer moves of the rollout's current step (``t.rollout.step``, already set)."""
    rollout = t.rollout
    n = rollout.step
    if rollout.strategy == RolloutStrategy.CANARY:
        kind = PointerKind.COHORT if rollout.target == PromotionTarget.PAPER else PointerKind.CANARY
        for target in t.targets:
            _move(
                t.specs,
                kind=kind,
                artifact=t.artifacts[target.slot.artifact_id],
                slot=target.slot,
                tenant=rollout.tenant,
                from_version=target.baseline,
                to_version=target.candidate,
                weight=int(rollout.steps[n - 1]),
                rollout=rollout,
                reason=reason or f"{rollout.reference} step {n}",
                actor=t.actor,
            )
    elif rollout.strategy == RolloutStrategy.TENANT:
        wave = list(Tenant.objects.filter(slug__in=rollout.steps[n - 1]).order_by("slug"))
        _set_wave(t, wave, reason or f"{rollout.reference} wave {n}")
    elif rollout.strategy == RolloutStrategy.FLAG and n == 1 and rollout.flag_on:
        _flag_moves(t, on=True, reason=reason or f"{rollout.reference} started with the flag on")


def _set_wave(t: _Transition, wave: Sequence[Tenant], reason: str) -> None:
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
            _move(
                t.specs,
                kind=PointerKind.OVERRIDE,
                artifact=t.artifacts[target.slot.artifact_id],
                slot=target.slot,
                tenant=tenant,
                from_version=before,
                to_version=target.candidate,
                rollout=t.rollout,
                reason=reason,
                actor=t.actor,
            )


def _flag_moves(t: _Transition, *, on: bool, reason: str) -> None:
    for target in t.targets:
        _move(
            t.specs,
            kind=PointerKind.FLAG,
            artifact=t.artifacts[target.slot.artifact_id],
            slot=target.slot,
            tenant=t.rollout.tenant,
            from_version=target.baseline if on else target.candidate,
            to_version=target.candidate if on else target.baseline,
            rollout=t.rollout,
            reason=reason,
            actor=t.actor,
        )


def _succeed(t: _Transition, reason: str) -> None:
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
        _move(
            t.specs,
            kind=PointerKind.DEFAULT,
            artifact=t.artifacts[version.artifact_id],
            from_version=previous if previous is not None else before.get(version.artifact_id),
            to_version=version,
            rollout=rollout,
            reason=why,
            actor=t.actor,
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
            _move(
                t.specs,
                kind=PointerKind.OVERRIDE,
                artifact=t.artifacts[override.slot.artifact_id],
                slot=override.slot,
                tenant=override.tenant,
                from_version=override.version,
                to_version=None,
                rollout=rollout,
                reason=f"{why}: the tenant follows the default",
                actor=t.actor,
            )


@transaction.atomic
def rollout_start(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str = ""
) -> Rollout:
    """Draft -> progressing at step 1 (a global rollout moves the default and succeeds at once)."""
    reason = _text(reason, "reason", required=False)
    t = _Transition(rollout, revision, actor, "start")
    t.require(RolloutState.PROGRESSING, "start")
    r = t.rollout
    if r.state != RolloutState.DRAFT:
        raise Conflict(f"{r.reference} has started already.", field="state")
    _check_candidates(t)
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
    reason = _text(reason, "reason", required=False)
    t = _Transition(rollout, revision, actor, "advance")
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


def _simple(
    rollout: Rollout,
    actor: User | None,
    revision: int | None,
    reason: str,
    *,
    action: str,
    to: str,
    kind: str,
) -> Rollout:
    reason = _text(reason, "reason", required=True)
    t = _Transition(rollout, revision, actor, action)
    if t.rollout.state == to:
        raise Conflict(f"{t.rollout.reference} is {to.replace('_', ' ')} already.", field="state")
    t.require(to, action)
    t.save(state=to)
    t.event(kind, reason)
    return t.record()


@transaction.atomic
def rollout_pause(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Progressing -> paused: the rules keep serving as they are (same weight, same subjects)."""
    return _simple(rollout, actor, revision, reason, action="pause",
                   to=RolloutState.PAUSED, kind=EventKind.ROLLOUT_PAUSED)  # fmt: skip


@transaction.atomic
def rollout_resume(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Paused -> progressing at the same step."""
    reason = _text(reason, "reason", required=True)
    t = _Transition(rollout, revision, actor, "resume")
    if t.rollout.state != RolloutState.PAUSED:
        raise Conflict(
            f"{t.rollout.reference} is {t.rollout.get_state_display().lower()}, not paused.",
            field="state",
        )
    _check_candidates(t)
    t.save(state=RolloutState.PROGRESSING)
    t.event(EventKind.ROLLOUT_RESUMED, reason)
    return t.record()


def _restore(t: _Transition, reason: str, was: str) -> list[dict[str, Any]]:
    """Put back every pointer the rollout moved, exactly as it was before its first move.

    Replays the rollout's ``PointerMove`` rows backwards: for each pointer (a default, or
    a tenant's override of a slot) the value before the rollout's first move of it. Rules
    (canary weight, flag) end with the state; their end is recorded as moves too.
    """
    rollout = t.rollout
    moves = list(
        PointerMove.objects.filter(rollout=rollout)
        .select_related("from_version__artifact__artifact_class", "from_version__artifact__tenant",
                        "to_version__artifact__artifact_class", "to_version__artifact__tenant",
                        "slot__application", "tenant")
        .order_by("-id")
    )  # fmt: skip
    first_from: dict[tuple[Any, ...], PointerMove] = {}
    for move in moves:  # newest first, so the oldest move of each pointer wins
        if move.kind == PointerKind.DEFAULT:
            first_from[("default", move.artifact_id)] = move
        elif move.kind == PointerKind.OVERRIDE:
            first_from[("override", move.slot_id, move.tenant_id)] = move
    restored: list[dict[str, Any]] = []
    # Rules end first (newest state first), then overrides, then defaults.
    if was in {RolloutState.PROGRESSING, RolloutState.PAUSED} and rollout.step:
        if rollout.strategy == RolloutStrategy.CANARY:
            kind = (
                PointerKind.COHORT
                if rollout.target == PromotionTarget.PAPER
                else PointerKind.CANARY
            )
            for target in t.targets:
                _move(t.specs, kind=kind, artifact=t.artifacts[target.slot.artifact_id],
                      slot=target.slot, tenant=rollout.tenant, from_version=target.candidate,
                      to_version=target.baseline, weight=0, rollout=rollout, reason=reason,
                      actor=t.actor)  # fmt: skip
        elif rollout.strategy == RolloutStrategy.FLAG and rollout.flag_on:
            _flag_moves(t, on=False, reason=reason)
    # Fail closed: a previous pointer retired or removed since is never restored.
    earlier = [m.from_version_id for m in first_from.values() if m.from_version_id]
    verdicts = selectors.servable_versions(earlier, pointed_before=True)
    gone = sorted(v for v in verdicts.values() if isinstance(v, str))
    if gone:
        raise Conflict(
            f"{rollout.reference} cannot restore its previous pointers: {'; '.join(gone)}. "
            "Nothing was changed; bring a new change forward instead.",
            field="state",
        )
    override_keys = [k for k in first_from if k[0] == "override"]
    if override_keys:
        held = {
            (o.slot_id, o.tenant_id): o
            for o in Override.objects.select_for_update(of=("self",))
            .select_related("version")
            .filter(slot_id__in={k[1] for k in override_keys}, tenant_id__in={k[2] for k in override_keys})
            .order_by("pk")
        }  # fmt: skip
        for key in sorted(override_keys, key=lambda k: (str(k[1]), str(k[2]))):
            first = first_from[key]
            current = held.get((key[1], key[2]))
            now_version = current.version if current is not None else None
            back = first.from_version
            if (now_version.pk if now_version else None) == (back.pk if back else None):
                continue
            assert first.slot is not None and first.tenant is not None
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
            _move(t.specs, kind=PointerKind.OVERRIDE, artifact=t.artifacts[first.artifact_id],
                  slot=first.slot, tenant=first.tenant, from_version=now_version, to_version=back,
                  rollout=rollout, reason=reason, actor=t.actor)  # fmt: skip
            restored.append({"slot": _slot_label(first.slot), "tenant": first.tenant.slug,
                             "to": _version_ref(back)})  # fmt: skip
    back_to = [
        first_from[k].from_version
        for k in sorted((k for k in first_from if k[0] == "default"), key=lambda k: str(k[1]))
    ]
    wanted = [
        v for v in back_to if v is not None and t.artifacts[v.artifact_id].active_version_id != v.pk
    ]
    if wanted:
        moved = reviews.versions_activate(
            versions=wanted,
            change=rollout.change,
            actor=t.actor,
            reason=reason,
            kind=ActivationKind.ROLLBACK,
        )
        for version, previous in moved:
            _move(t.specs, kind=PointerKind.DEFAULT, artifact=t.artifacts[version.artifact_id],
                  from_version=previous, to_version=version, rollout=rollout, reason=reason,
                  actor=t.actor)  # fmt: skip
            restored.append({"default": t.artifacts[version.artifact_id].path,
                             "to": _version_ref(version)})  # fmt: skip
    return restored


@transaction.atomic
def rollout_abort(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Stop an unfinished rollout (draft, progressing, paused): its rules end and every pointer
    it moved goes back to what it was."""
    reason = _text(reason, "reason", required=True)
    t = _Transition(rollout, revision, actor, "abort")
    t.require(RolloutState.ABORTED, "be aborted")
    was = t.rollout.state
    t.save(state=RolloutState.ABORTED, finished_at=t.now, finished_by=t.actor,
           finish_reason=reason)  # fmt: skip
    restored = _restore(t, reason, was)
    t.event(EventKind.ROLLOUT_ABORTED, reason, restored=restored)
    return t.record()


@transaction.atomic
def rollout_rollback(
    *, rollout: Rollout, actor: User | None, revision: int | None = None, reason: str
) -> Rollout:
    """Restore the exact previous pointers of every slot the rollout touched, in one
    transaction, from progressing, paused or succeeded. A configuration change only: no
    approvals."""
    reason = _text(reason, "reason", required=True)
    t = _Transition(rollout, revision, actor, "roll back")
    t.require(RolloutState.ROLLED_BACK, "be rolled back")
    was = t.rollout.state
    t.save(state=RolloutState.ROLLED_BACK, finished_at=t.now, finished_by=t.actor,
           finish_reason=reason)  # fmt: skip
    restored = _restore(t, reason, was)
    t.event(EventKind.ROLLOUT_ROLLED_BACK, reason, restored=restored)
    return t.record()


@transaction.atomic
def rollout_flag_set(
    *, rollout: Rollout, on: bool, actor: User | None, reason: str, revision: int | None = None
) -> Rollout:
    """Switch a flag rollout's flag on or off (draft, progressing or paused). An expired flag
    can only be switched off."""
    reason = _text(reason, "reason", required=True)
    t = _Transition(rollout, revision, actor, "switch the flag of")
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
        _flag_moves(t, on=bool(on), reason=reason)
    t.event(EventKind.ROLLOUT_FLAG_SET, reason, flag_key=r.flag_key, on=bool(on))
    return t.record()
