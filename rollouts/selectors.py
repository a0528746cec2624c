"""Reads about applications, slots, pointers and rollouts, shared by pages, the API, the CLI and services.

``servable_versions`` is the one place that decides which versions may serve: every
route (runtime snapshot, resolve, OFREP, overrides, rollout targets) asks it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.urls import NoReverseMatch, reverse

from accounts.models import Tenant
from accounts.selectors import AnyUser, tenant_scoped
from governance.kernel.errors import NotFound
from governance.kernel.events.models import Event
from registry.choices import Stage
from registry.models import Version
from reviews.choices import ChangeStatus
from reviews.models import ChangeItem, ChangeRequest
from rollouts.choices import ACTIVE_STATES, RolloutState
from rollouts.models import (
    Application,
    IterationNote,
    Override,
    PointerMove,
    Rollout,
    RolloutTarget,
    Slot,
)

# --- what may serve --------------------------------------------------------------------


@dataclass(frozen=True)
class ServeInfo:
    """A version that may serve, with its stage and the warning it serves with (deprecated)."""

    version: Version
    stage: str
    warning: str | None


def servable_versions(
    version_ids: Iterable[Any], *, pointed_before: bool = False
) -> dict[Any, ServeInfo | str]:
    """For each version id: ``ServeInfo`` if it may serve, else why not (a sentence).

    Servable = went through a promoted change (a ``ChangeItem`` proposing it whose change is
    promoted) or is its artifact's active version; and not removed, not retired, not a
    draft. A deprecated version serves with a warning naming its replacement. Unknown ids
    are refused. Two queries whatever the number of ids: every route that serves or points
    (runtime snapshot, resolve, OFREP, overrides, rollout targets) asks this one function.

    ``pointed_before``: the versions were pointers before (a rollback restores them), so they
    passed the promoted-change rule when they were set; the other rules still apply.
    """
    ids = list({i for i in version_ids if i is not None})
    if not ids:
        return {}
    rows = Version.objects.filter(pk__in=ids).select_related(
        "artifact__artifact_class",
        "artifact__tenant",
        "state",
        "deprecation__replacement__artifact__artifact_class",
        "deprecation__replacement__artifact__tenant",
        "retirement",
    )
    promoted = set(
        ChangeItem.objects.filter(
            proposed_id__in=ids,
            change__status=ChangeStatus.PROMOTED,
            change__promoted_at__isnull=False,
        ).values_list("proposed_id", flat=True)
    )
    found: dict[Any, ServeInfo | str] = {}
    for v in rows:
        state = getattr(v, "state", None)
        stage = state.stage if state is not None else Stage.DRAFT
        deprecation = getattr(v, "deprecation", None)
        if getattr(v, "retirement", None) is not None:
            found[v.pk] = f"{v.path} is retired"
        elif deprecation is not None and deprecation.removed_at is not None:
            found[v.pk] = f"{v.path} was removed"
        elif stage == Stage.DRAFT:
            found[v.pk] = f"{v.path} is a draft"
        elif not pointed_before and v.pk not in promoted and v.artifact.active_version_id != v.pk:
            found[v.pk] = f"{v.path} went through no promoted change request"
        else:
            warning = None
            if deprecation is not None:
                warning = (
                    f"{v.path} is deprecated (replacement {deprecation.replacement.path}, "
                    f"removed after {deprecation.remove_after:%Y-%m-%d})"
                )
            found[v.pk] = ServeInfo(version=v, stage=stage, warning=warning)
    for missing in set(ids) - set(found):
        found[missing] = "no such version"
    return found


def servable_refusal(version: Version) -> str | None:
    """Why ``version`` may not serve, or None if it may (one version of ``servable_versions``)."""
    verdict = servable_versions([version.pk])[version.pk]
    return verdict if isinstance(verdict, str) else None


# --- tenants, applications, slots --------------------------------------------------------


def platform_tenant() -> Tenant | None:
    """The tenant whose artifacts and applications every tenant may use (may not exist yet)."""
    return Tenant.objects.filter(slug=settings.PLATFORM_TENANT_SLUG).first()


def is_platform(tenant: Tenant) -> bool:
    return tenant.slug == settings.PLATFORM_TENANT_SLUG


def _platform_rows(via: str) -> Q:
    return Q(**{f"{via}__slug": settings.PLATFORM_TENANT_SLUG})


def applications_visible_to(user: AnyUser | None) -> QuerySet[Application]:
    """Applications of the user's tenants, and the platform tenant's (shared with everyone)."""
    return tenant_scoped(
        Application.objects.select_related("tenant"), user=user, also=_platform_rows("tenant")
    )


def application_slugs_readable_by(tenant_slug: str) -> list[str]:
    """The slugs of the applications tenant ``tenant_slug``'s runtime may read: its own and the
    platform's (one query; OFREP's bulk evaluation lists their flags)."""
    owners = Q(tenant__slug=tenant_slug) | _platform_rows("tenant")
    return list(Application.objects.filter(owners).order_by("slug").values_list("slug", flat=True))


def application_by_slug(user: AnyUser | None, slug: str) -> Application:
    application = applications_visible_to(user).filter(slug=slug).first()
    if application is None:
        raise NotFound(f"No application '{slug}' that you can see.", field="application")
    return application


def slots_of(application: Application) -> QuerySet[Slot]:
    return Slot.objects.filter(application=application).select_related(
        "application__tenant",
        "artifact__artifact_class",
        "artifact__tenant",
        "artifact__active_version",
    )


def slot_serves_tenant(slot: Slot, tenant: Tenant) -> bool:
    """A slot is part of tenant T's runtime when both its application and its artifact are
    T's or the platform's."""
    owners = (slot.application.tenant, slot.artifact.tenant)
    return all(o.pk == tenant.pk or is_platform(o) for o in owners)


@dataclass(frozen=True)
class SlotSummary:
    """A slot as the registry list shows it (``registry.hooks.SlotRow``)."""

    label: str
    url: str
    overrides: int
    rollout: str


def slot_summaries(artifact_ids: list[Any]) -> dict[Any, list[SlotSummary]]:
    """The slots each artifact is bound to, with their overrides and a rollout in progress
    (the registry list asks through its hook): one query for the whole page."""
    running = RolloutTarget.objects.filter(
        slot=OuterRef("pk"), rollout__state__in=list(ACTIVE_STATES)
    ).order_by("rollout__number")
    rows = (
        Slot.objects.filter(artifact_id__in=artifact_ids)
        .select_related("application")
        .annotate(
            override_count=Count("overrides", distinct=True),
            rollout_number=Subquery(running.values("rollout__number")[:1]),
        )
        .order_by("application__slug", "name")
    )
    found: dict[Any, list[SlotSummary]] = defaultdict(list)
    for slot in rows:
        number = slot.rollout_number
        found[slot.artifact_id].append(
            SlotSummary(
                label=f"{slot.application.slug}/{slot.name}",
                url=slot.get_absolute_url(),
                overrides=slot.override_count,
                rollout=f"RO-{number}" if number else "",
            )
        )
    return dict(found)


def slot_bound_artifacts(artifact_ids: Iterable[Any]) -> set[Any]:
    """The artifacts among these bound to at least one slot (reviews asks through its hook)."""
    ids = list(artifact_ids)
    if not ids:
        return set()
    return set(
        Slot.objects.filter(artifact_id__in=ids).values_list("artifact_id", flat=True).distinct()
    )


def overrides_for(slots: Iterable[Slot]) -> QuerySet[Override]:
    return Override.objects.filter(slot__in=list(slots)).select_related(
        "tenant", "version__artifact__artifact_class", "version__artifact__tenant", "rollout"
    )


def slot_history(slot: Slot) -> QuerySet[PointerMove]:
    """Every pointer move of the slot (overrides, rollout steps) and of its artifact's default,
    newest first."""
    return (
        PointerMove.objects.filter(
            Q(slot=slot) | Q(slot__isnull=True, artifact_id=slot.artifact_id)
        )
        .select_related(
            "tenant",
            "actor",
            "rollout",
            "from_version__artifact__artifact_class",
            "from_version__artifact__tenant",
            "to_version__artifact__artifact_class",
            "to_version__artifact__tenant",
        )
        .order_by("-id")
    )


# --- rollouts ------------------------------------------------------------------------------


def rollouts_visible_to(user: AnyUser | None) -> QuerySet[Rollout]:
    """Rollouts of the user's tenants, and the platform's (they reach every tenant)."""
    return tenant_scoped(
        Rollout.objects.select_related("tenant", "change", "created_by"),
        user=user,
        also=_platform_rows("tenant"),
    )


def rollout_by_number(user: AnyUser | None, number: int | str) -> Rollout:
    """``RO-12``, ``12`` or 12, if the user may see it; NotFound otherwise."""
    raw = str(number).strip().upper().removeprefix("RO-")
    rollout = rollouts_visible_to(user).filter(number=int(raw)).first() if raw.isdigit() else None
    if rollout is None:
        raise NotFound(f"No rollout RO-{raw} that you can see.", field="rollout")
    return rollout


def rollout_by_number_unscoped(number: int | str) -> Rollout:
    """For the CLI and system tasks, which act for every tenant."""
    raw = str(number).strip().upper().removeprefix("RO-")
    rollout = (
        Rollout.objects.select_related("tenant", "change").filter(number=int(raw)).first()
        if raw.isdigit()
        else None
    )
    if rollout is None:
        raise NotFound(f"No rollout RO-{raw}.", field="rollout")
    return rollout


def targets_of(rollout: Rollout) -> QuerySet[RolloutTarget]:
    return RolloutTarget.objects.filter(rollout=rollout).select_related(
        "slot__application__tenant",
        "slot__artifact__artifact_class",
        "slot__artifact__tenant",
        "baseline__artifact__artifact_class",
        "baseline__artifact__tenant",
        "candidate__artifact__artifact_class",
        "candidate__artifact__tenant",
    )


def rollout_events(rollout: Rollout) -> QuerySet[Event]:
    """The rollout's own events, in order (who did what, as the log proves it)."""
    return (
        Event.objects.filter(subject_type="rollouts.rollout", subject_id=str(rollout.pk))
        .select_related("actor")
        .order_by("seq")
    )


def moves_of(rollout: Rollout) -> QuerySet[PointerMove]:
    """The rollout's pointer moves, oldest first (a rollback replays them backwards)."""
    return PointerMove.objects.filter(rollout=rollout).order_by("id")


def active_rollouts_for(slots: Iterable[Slot]) -> dict[Any, list[RolloutTarget]]:
    """slot id -> the targets of progressing or paused rollouts on it (``target.rollout`` loaded)."""
    found: dict[Any, list[RolloutTarget]] = defaultdict(list)
    rows = (
        RolloutTarget.objects.filter(slot__in=list(slots), rollout__state__in=list(ACTIVE_STATES))
        .select_related(
            "rollout__tenant",
            "candidate__artifact__artifact_class",
            "candidate__artifact__tenant",
            "baseline__artifact__artifact_class",
            "baseline__artifact__tenant",
        )
        .order_by("rollout__number")
    )
    for row in rows:
        found[row.slot_id].append(row)
    return dict(found)


#: States in which a rollout still holds its slots (a second rollout on them is refused).
HOLDING_STATES = frozenset({RolloutState.DRAFT, *ACTIVE_STATES})


def rollouts_holding(slot_ids: Iterable[Any], *, exclude: Any = None) -> QuerySet[Rollout]:
    """Draft, progressing or paused rollouts targeting any of these slots."""
    qs = Rollout.objects.filter(
        targets__slot_id__in=list(slot_ids), state__in=list(HOLDING_STATES)
    ).distinct()
    return qs.exclude(pk=exclude) if exclude is not None else qs


def changes_awaiting_rollout(user: AnyUser | None) -> QuerySet[ChangeRequest]:
    """Promoted changes the user can see with a version not yet the default of a slot-bound
    artifact, that no rollout holds or has finished: what "Start a rollout" offers, newest
    promotion first."""
    done = [*HOLDING_STATES, RolloutState.SUCCEEDED]
    pending = ChangeItem.objects.filter(artifact__slots__isnull=False).exclude(
        proposed_id=F("artifact__active_version_id")
    )
    return (
        tenant_scoped(ChangeRequest.objects.select_related("tenant"), user=user)
        .filter(status=ChangeStatus.PROMOTED, items__in=pending)
        .exclude(rollouts__state__in=done)
        .distinct()
        .order_by("-promoted_at")
    )


def with_last_note(rollouts: QuerySet[Rollout]) -> QuerySet[Rollout]:
    """``rollouts`` annotated with their latest iteration note (``last_note_outcome``,
    ``last_note_reason``, ``last_note_at``), in the same query."""
    latest = IterationNote.objects.filter(rollout=OuterRef("pk")).order_by("-number")
    return rollouts.annotate(
        last_note_outcome=Subquery(latest.values("outcome")[:1]),
        last_note_reason=Subquery(latest.values("reason")[:1]),
        last_note_at=Subquery(latest.values("created_at")[:1]),
    )


def usage_url(artifact: Any) -> str:
    """The usage page of an artifact (who still uses which version): registry links to it."""
    return reverse("rollouts:usage", kwargs=artifact.url_kwargs())


def rollout_url(rollout: Rollout) -> str:
    """The rollout's page, for notifications; empty when the pages are not routed."""
    try:
        return rollout.get_absolute_url()
    except NoReverseMatch:
        return ""
