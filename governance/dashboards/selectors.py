"""Reads of the readiness dashboard: what needs attention across the tenants a person oversees
(approvals waiting, waivers expiring, deprecations still in use, overdue post-mortems,
emergency changes, lead times, rollouts in progress, deployment drift) and, for platform administrators, how
fresh the proof of recovery is (backups, drills, rollback rehearsals)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.choices import Role
from accounts.models import Tenant
from governance.recovery.selectors import RecoveryStatus, recovery_status
from reviews.waivers.choices import STATE_ORDER, WaiverState
from reviews.waivers.models import Waiver
from reviews.waivers.selectors import waiver_state_counts, waivers_by_state

if TYPE_CHECKING:
    from registry.models import Artifact, Deprecation
    from reviews.models import ChangeRequest as ReviewChange
    from rollouts.models import DeploymentDrift, Rollout


#: Who sees the readiness dashboard of a tenant (platform administrators see every tenant's).
OVERSIGHT_ROLES = frozenset({Role.ADMINISTRATOR, Role.PRIVACY_OFFICER, Role.SECURITY_OFFICER})
#: How far back the dashboard counts emergency changes and measures lead time.
EMERGENCY_MONTHS = 12
LEAD_TIME_DAYS = 30


def readiness_tenants(user: Any) -> list[Tenant]:
    """The tenants whose readiness ``user`` oversees: all for a platform administrator, else
    those where they are an administrator or a privacy or security officer (two queries)."""
    from accounts.selectors import access_by_tenant

    return [row.tenant for row in access_by_tenant(user) if OVERSIGHT_ROLES.intersection(row.roles)]


@dataclass
class PendingSlots:
    """One approval requirement and how many open changes still wait for it."""

    requirement: str
    label: str
    open_slots: int


def pending_approvals_by_requirement(tenants: Sequence[Tenant]) -> list[PendingSlots]:
    """Required approval slots still open across the tenants' open changes, per requirement.

    A slot counts as filled exactly as the change page judges it (five queries in all).
    A change needs each slot at most once, so the count is also the number of changes waiting.
    """
    from reviews.choices import OPEN_STATES, Requirement
    from reviews.models import ChangeRequest

    # The change page's own judgement of which slots are filled, made for many changes at once.
    from reviews.selectors import filled_slots

    changes = list(
        ChangeRequest.objects.filter(tenant__in=tenants, status__in=OPEN_STATES).only(
            "pk", "tenant_id", "requirements"
        )
    )
    filled = filled_slots(changes)
    open_slots: dict[str, int] = dict.fromkeys(Requirement.values, 0)
    for change in changes:
        for requirement in set(change.requirements) - filled[change.pk]:
            if requirement in open_slots:
                open_slots[requirement] += 1
    return [PendingSlots(r.value, r.label, open_slots[r.value]) for r in Requirement]


#: The most rows a dashboard list shows; the rest are one link away (the page stays small).
DASHBOARD_LIST_LIMIT = 25


def waivers_expiring_soon(
    tenants: Sequence[Tenant], now: datetime, limit: int = DASHBOARD_LIST_LIMIT
) -> list[Waiver]:
    """The first ``limit`` waivers of the tenants that expire within the warning window, soonest first."""
    qs = Waiver.objects.filter(tenant__in=tenants).select_related(
        "tenant", "owner", "change", "renewal"
    )
    # ``state`` is an annotation, which the django-stubs plugin cannot see.
    return list(waivers_by_state(qs, now).filter(state=WaiverState.EXPIRING_SOON)[:limit])  # type: ignore[misc]


def deprecations_with_usage(tenants: Sequence[Tenant]) -> QuerySet[Deprecation]:
    """Versions deprecated and not yet removed, with who still asks for them (``usage_*``).

    The usage comes from runtime resolution; until that reports, ``usage_consumers`` is 0.
    """
    from registry.selectors import deprecations

    return (
        deprecations(tenants)
        .filter(removed_at__isnull=True)
        .annotate(
            usage_consumers=Count("version__usage", distinct=True),
            usage_requests=Sum("version__usage__requests"),
            usage_last_seen=Max("version__usage__last_seen_at"),
        )
        .order_by("remove_after", "version_id")
    )


def overdue_postmortems(tenants: Sequence[Tenant], now: datetime) -> QuerySet[ReviewChange]:
    """Emergency changes whose post-mortem is past due and not written, the most overdue first."""
    from reviews.models import ChangeRequest

    return (
        ChangeRequest.objects.filter(
            tenant__in=tenants,
            emergency=True,
            postmortem_due_at__lt=now,
            postmortem_done_at__isnull=True,
        )
        .select_related("tenant", "author", "promoted_by")
        .order_by("postmortem_due_at")
    )


def _month_starts(now: datetime, months: int) -> list[date]:
    """The first day of each of the last ``months`` months, oldest first, this month last."""
    year, month = now.year, now.month
    starts = []
    for _ in range(months):
        starts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return starts[::-1]


@dataclass
class EmergencyCounts:
    months: list[date]
    rows: list[tuple[Tenant, list[int]]]


def emergency_changes_by_month(
    tenants: Sequence[Tenant], now: datetime, months: int = EMERGENCY_MONTHS
) -> EmergencyCounts:
    """Emergency changes opened per tenant and calendar month (by ``created_at``), one query."""
    from reviews.models import ChangeRequest

    starts = _month_starts(timezone.localtime(now), months)
    since = timezone.make_aware(datetime.combine(starts[0], datetime.min.time()))
    counted = (
        ChangeRequest.objects.filter(tenant__in=tenants, emergency=True, created_at__gte=since)
        .annotate(month=TruncMonth("created_at"))
        .values("tenant_id", "month")
        .annotate(n=Count("pk"))
    )
    table: dict[tuple[Any, date], int] = {}
    for row in counted:
        month = row["month"]
        key = month.date() if isinstance(month, datetime) else month
        table[(row["tenant_id"], key)] = row["n"]
    return EmergencyCounts(
        months=starts,
        rows=[(t, [table.get((t.pk, m), 0) for m in starts]) for t in tenants],
    )


@dataclass
class LeadTime:
    reference: str
    url: str
    tenant: str
    opened_at: datetime
    promoted_at: datetime
    hours: float


@dataclass
class LeadTimes:
    days: int
    samples: list[LeadTime]
    median_hours: float | None
    p90_hours: float | None


def _percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: the smallest value with at least ``fraction`` of them at or below."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def lead_times(tenants: Sequence[Tenant], now: datetime, days: int = LEAD_TIME_DAYS) -> LeadTimes:
    """Time from a change being opened to its promotion, for changes promoted in the last ``days``."""
    from reviews.models import ChangeRequest

    rows = (
        ChangeRequest.objects.filter(
            tenant__in=tenants,
            promoted_at__isnull=False,
            promoted_at__gte=now - timedelta(days=days),
        )
        .select_related("tenant")
        .order_by("promoted_at", "year", "number")
    )
    samples = [
        LeadTime(
            reference=c.reference,
            url=c.get_absolute_url(),
            tenant=c.tenant.slug,
            opened_at=c.created_at,
            promoted_at=c.promoted_at,
            hours=max(0.0, (c.promoted_at - c.created_at).total_seconds() / 3600),
        )
        for c in rows
        if c.promoted_at is not None
    ]
    ordered = sorted(s.hours for s in samples)
    return LeadTimes(
        days=days,
        samples=samples,
        median_hours=statistics.median(ordered) if ordered else None,
        p90_hours=_percentile(ordered, 0.9) if ordered else None,
    )


def _with_platform(tenants: Sequence[Tenant]) -> Q:
    """Rows of ``tenants`` or of the platform tenant (whose rollouts apply to every tenant)."""
    return Q(tenant__in=tenants) | Q(tenant__slug=settings.PLATFORM_TENANT_SLUG)


def rollouts_in_progress(tenants: Sequence[Tenant]) -> QuerySet[Rollout]:
    """Rollouts progressing or paused that touch ``tenants`` (theirs or the platform's),
    the longest-running first, with what their dashboard row shows (one query per slice)."""
    from rollouts.choices import ACTIVE_STATES
    from rollouts.models import Rollout

    return (
        Rollout.objects.filter(_with_platform(tenants), state__in=ACTIVE_STATES)
        .select_related("tenant", "change")
        .order_by("started_at", "number")
    )


def rollout_flags_expiring(
    tenants: Sequence[Tenant], now: datetime, days: int | None = None
) -> QuerySet[Rollout]:
    """Flags of rollouts in progress that expire within ``days`` (ROLLOUT_FLAG_WARNING_DAYS)
    or have expired already (those serve the default), soonest first."""
    from rollouts.choices import RolloutStrategy

    days = settings.ROLLOUT_FLAG_WARNING_DAYS if days is None else days
    return (
        rollouts_in_progress(tenants)
        .filter(strategy=RolloutStrategy.FLAG, flag_expires_at__lte=now + timedelta(days=days))
        .order_by("flag_expires_at", "number")
    )


@dataclass
class RolloutRow:
    """A rollout in progress as the dashboard shows it: where it stands, in words."""

    rollout: Rollout
    progress: str


def rollout_progress(rollout: Rollout) -> str:
    """Where a rollout stands: its step of all steps and, for a canary, the weight in percent."""
    from rollouts.choices import BUCKETS, RolloutStrategy

    total = len(rollout.steps)
    if rollout.strategy == RolloutStrategy.CANARY:
        percent = f"{100 * rollout.weight / BUCKETS:g}%"
        return f"step {rollout.step} of {total}, {percent}"
    if rollout.strategy == RolloutStrategy.TENANT:
        return f"wave {rollout.step} of {total}"
    if rollout.strategy == RolloutStrategy.FLAG:
        return f"flag {rollout.flag_key or '?'} {'on' if rollout.flag_on else 'off'}"
    return f"step {rollout.step}"


@dataclass
class ReadinessDashboard:
    """Everything the readiness page shows, read at one moment; its query count is fixed."""

    now: datetime
    tenants: list[Tenant]
    pending: list[PendingSlots]
    waiver_counts: dict[str, int]
    expiring: list[Waiver]
    deprecations: list[Deprecation]
    deprecations_total: int
    overdue_postmortems: list[ReviewChange]
    overdue_total: int
    emergencies: EmergencyCounts
    ownerless: list[Artifact]
    ownerless_total: int
    latest_verification: Any
    latest_checkpoint: Any
    lead: LeadTimes
    rollouts: list[RolloutRow]
    rollouts_total: int
    flags_expiring: list[Rollout]
    #: Backups, drills, rehearsals: the platform's, so for platform administrators only (None).
    recovery: RecoveryStatus | None = None
    #: Open deployment drift episodes (clients running a hash other than the approved one).
    drifts: list[DeploymentDrift] = field(default_factory=list)

    @property
    def waiver_states(self) -> list[tuple[str, str, int]]:
        return [(s.value, s.label, self.waiver_counts.get(s.value, 0)) for s in STATE_ORDER]

    @property
    def expiring_total(self) -> int:
        return self.waiver_counts.get(WaiverState.EXPIRING_SOON, 0)


def readiness_dashboard(
    tenants: Sequence[Tenant], now: datetime, *, viewer: Any
) -> ReadinessDashboard:
    from accounts.selectors import is_platform_admin
    from governance.kernel.events import selectors as event_selectors
    from registry.selectors import artifacts_without_active_owner
    from rollouts.drift import open_drifts

    tenants = list(tenants)
    deprecated = deprecations_with_usage(tenants)
    overdue = overdue_postmortems(tenants, now)
    ownerless = artifacts_without_active_owner(tenants)
    in_progress = rollouts_in_progress(tenants)
    return ReadinessDashboard(
        now=now,
        tenants=tenants,
        pending=pending_approvals_by_requirement(tenants),
        waiver_counts=waiver_state_counts(tenants, now),
        expiring=waivers_expiring_soon(tenants, now),
        # Each list shows its first DASHBOARD_LIST_LIMIT rows and says how many there are.
        deprecations=list(deprecated[:DASHBOARD_LIST_LIMIT]),
        deprecations_total=deprecated.count(),
        overdue_postmortems=list(overdue[:DASHBOARD_LIST_LIMIT]),
        overdue_total=overdue.count(),
        emergencies=emergency_changes_by_month(tenants, now),
        ownerless=list(ownerless[:DASHBOARD_LIST_LIMIT]),
        ownerless_total=ownerless.count(),
        latest_verification=event_selectors.latest_verification_for(viewer),
        latest_checkpoint=event_selectors.latest_checkpoint(),
        lead=lead_times(tenants, now),
        rollouts=[RolloutRow(r, rollout_progress(r)) for r in in_progress[:DASHBOARD_LIST_LIMIT]],
        rollouts_total=in_progress.count(),
        flags_expiring=list(rollout_flags_expiring(tenants, now)[:DASHBOARD_LIST_LIMIT]),
        recovery=recovery_status(now) if is_platform_admin(viewer) else None,
        drifts=list(open_drifts(tenants, limit=DASHBOARD_LIST_LIMIT)),
    )
