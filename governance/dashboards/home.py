"""Reads of the home page, "what needs me": across a person's tenants, the changes waiting
for their role, their own changes that are blocked (and why), the changes they may promote,
the rollouts waiting for their decision, the waivers expiring soon and the post-mortems due;
for a platform administrator, recovery proof (backups, drills, rehearsals) that is overdue.

It composes every floor, so it lives at the roof. Each rule is the owning app's: who fills
which approval slot (``reviews.selectors.waiting_slots`` and ``filled_slots``), who may
promote or record a post-mortem (``reviews.permissions``), which rollouts an administrator
operates (``rollouts.permissions``), a waiver's state (``reviews.waivers.selectors``). The
page's query count is fixed whatever the number of rows (``home_board``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db.models import Q

from accounts.choices import Role
from accounts.models import Tenant, User
from accounts.selectors import TenantAccess, access_by_tenant, is_platform_admin
from governance.recovery.selectors import Proof, recovery_status
from reviews import permissions as review_permissions
from reviews import selectors as review_selectors
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, Decision, Requirement
from reviews.models import Approval, ChangeItem, ChangeRequest, CheckRun
from reviews.waivers.choices import COVERING_STATES, WaiverState
from reviews.waivers.models import Waiver
from reviews.waivers.selectors import waivers_by_state
from rollouts import permissions as rollout_permissions
from rollouts.choices import ACTIVE_STATES, RolloutState, RolloutStrategy
from rollouts.contract import NOTE_OUTCOMES
from rollouts.models import Rollout
from rollouts.selectors import with_last_note

#: The most rows one section lists; its heading still counts them all.
HOME_LIST_LIMIT = 25

#: The author's changes that can be blocked: under review, approved, or sent back.
AUTHOR_OPEN_STATES = (ChangeStatus.IN_REVIEW, ChangeStatus.APPROVED, ChangeStatus.REJECTED)

#: Checks that evaluation evidence (attached on the change page) makes pass; the others link
#: to their row on the change page, which says what would make them pass and where.
EVIDENCE_CHECKS = frozenset({CheckKind.OFFLINE_EVALUATION, CheckKind.CHANGE_GATES})

_, _LANE_FAILED, _NO_SIGNAL = NOTE_OUTCOMES


@dataclass(frozen=True)
class Reason:
    """One thing that holds a change back, in words, with the link where it is fixed."""

    text: str
    url: str
    kind: str  # machine value for data-* attributes: approval, rejection, check, waiver


@dataclass
class WaitingItem:
    change: ChangeRequest
    slots: list[str]

    @property
    def slot_labels(self) -> list[str]:
        return [Requirement(s).label for s in self.slots]


@dataclass
class BlockedItem:
    change: ChangeRequest
    reasons: list[Reason]


@dataclass
class RolloutItem:
    rollout: Rollout
    why: str


@dataclass
class PostmortemItem:
    change: ChangeRequest
    overdue: bool


T = TypeVar("T")


@dataclass
class Section(Generic[T]):
    """One section of the home page: its first rows and how many there are in all."""

    rows: list[T] = field(default_factory=list)
    total: int = 0

    @classmethod
    def of(cls, items: Sequence[T]) -> Section[T]:
        return cls(rows=list(items[:HOME_LIST_LIMIT]), total=len(items))

    @property
    def more(self) -> bool:
        return self.total > len(self.rows)


@dataclass
class HomeBoard:
    """Everything the home page shows, read at one moment."""

    now: datetime
    access: list[TenantAccess]
    platform_admin: bool
    waiting: Section[WaitingItem]
    blocked: Section[BlockedItem]
    promotable: Section[ChangeRequest]
    rollouts: Section[RolloutItem]
    waivers: Section[Waiver]
    postmortems: Section[PostmortemItem]
    soon_days: int
    #: Recovery proof past its limit (platform administrators only; empty for everyone else).
    recovery_overdue: list[Proof] = field(default_factory=list)


def _change_anchor(change: ChangeRequest, anchor: str) -> str:
    return f"{change.get_absolute_url()}#{anchor}"


@dataclass
class _ChangeFacts:
    """What the blockers of many changes are read from, in a fixed number of queries."""

    filled: dict[Any, set[str]]
    rejected_by: dict[Any, list[str]]
    latest_runs: dict[Any, dict[str, CheckRun]]
    artifacts: dict[Any, set[Any]]
    waivers: list[Waiver]


def _change_facts(changes: Sequence[ChangeRequest]) -> _ChangeFacts:
    if not changes:
        return _ChangeFacts({}, {}, {}, {}, [])
    ids = [c.pk for c in changes]
    revision = {c.pk: c.revision for c in changes}
    binding = {c.pk: c.binding_sha256 for c in changes}
    rejected_by: dict[Any, list[str]] = defaultdict(list)
    for change_id, rev, sha, name in (
        Approval.objects.filter(change_id__in=ids, voided_at__isnull=True, decision=Decision.REJECT)
        .order_by("created_at")
        .values_list("change_id", "revision", "binding_sha256", "approver__username")
    ):
        if rev == revision[change_id] and sha == binding[change_id]:
            rejected_by[change_id].append(name)
    latest: dict[Any, dict[str, CheckRun]] = defaultdict(dict)
    for run in CheckRun.objects.filter(change_id__in=ids).order_by("kind", "-attempt"):
        if run.revision == revision[run.change_id]:
            latest[run.change_id].setdefault(run.kind, run)
    artifacts: dict[Any, set[Any]] = defaultdict(set)
    for change_id, artifact_id in ChangeItem.objects.filter(change_id__in=ids).values_list(
        "change_id", "artifact_id"
    ):
        artifacts[change_id].add(artifact_id)
    waivers = list(
        Waiver.objects.filter(tenant_id__in={c.tenant_id for c in changes})
        .filter(Q(change_id__in=ids) | Q(change__isnull=True, artifacts__in=_union(artifacts)))
        .distinct()
        .prefetch_related("artifacts")
    )
    return _ChangeFacts(
        filled=review_selectors.filled_slots(changes),
        rejected_by=rejected_by,
        latest_runs=latest,
        artifacts=artifacts,
        waivers=waivers,
    )


def _union(by_change: dict[Any, set[Any]]) -> set[Any]:
    return set().union(*by_change.values()) if by_change else set()


def _in_scope(waiver: Waiver, change: ChangeRequest, artifacts: set[Any]) -> bool:
    """As ``reviews.waivers.selectors.waivers_in_scope`` judges it, from rows already read."""
    if waiver.tenant_id != change.tenant_id:
        return False
    if waiver.change_id is not None:
        return bool(waiver.change_id == change.pk)
    return bool(artifacts) and artifacts <= {a.pk for a in waiver.artifacts.all()}


def _check_reasons(change: ChangeRequest, facts: _ChangeFacts, now: datetime) -> list[Reason]:
    """The checks of the current revision that stop the change, with where to fix each."""
    reasons = []
    for kind, run in facts.latest_runs.get(change.pk, {}).items():
        label = CheckKind(kind).label if kind in CheckKind.values else kind
        anchor = _change_anchor(change, f"check-{kind}")
        if run.status in (CheckStatus.PENDING, CheckStatus.RUNNING):
            reasons.append(
                Reason(f"{label} is {run.get_status_display().lower()}", anchor, "check")
            )
            continue
        if run.status == CheckStatus.ERROR:
            reasons.append(Reason(f"{label} could not run; run it again", anchor, "check"))
            continue
        if run.status != CheckStatus.FAILED:
            continue
        scoped = [
            w
            for w in facts.waivers
            if w.check_kind == kind and _in_scope(w, change, facts.artifacts.get(change.pk, set()))
        ]
        live = [
            w for w in scoped if w.state_at(now) in COVERING_STATES and w.covers_revision_of(change)
        ]
        if any(not w.metric for w in live):
            continue  # a whole-check waiver lets it pass
        if kind == CheckKind.CHANGE_GATES and live:
            # As check_verdicts judges it: metric waivers pass it when they cover every failing gate.
            failing, problems = review_selectors.failing_metrics(run)
            if failing and not problems and failing <= {w.metric for w in live}:
                continue
        text = f"{label} failed"
        if live:
            text += " (waivers cover only some of its gates)"
        url = _change_anchor(change, "evidence") if kind in EVIDENCE_CHECKS else anchor
        text += (
            ": attach evaluation evidence"
            if kind in EVIDENCE_CHECKS
            else ": see what would pass it"
        )
        reasons.append(Reason(text, url, "check"))
        reasons.extend(
            Reason(
                f"waiver {w.reference} {review_selectors.lapse_reason(w, now, change)}",
                w.get_absolute_url(),
                "waiver",
            )
            for w in scoped
            if w not in live
        )
    return reasons


def _blockers(change: ChangeRequest, facts: _ChangeFacts, now: datetime) -> list[Reason]:
    reasons = []
    rejected = facts.rejected_by.get(change.pk)
    if change.status == ChangeStatus.REJECTED or rejected:
        who = f" by {', '.join(rejected)}" if rejected else ""
        reasons.append(
            Reason(
                f"rejected{who}: revise and resubmit",
                _change_anchor(change, "approvals"),
                "rejection",
            )
        )
    missing = [r for r in change.requirements if r not in facts.filled.get(change.pk, set())]
    if missing and change.status != ChangeStatus.REJECTED:
        reasons.append(
            Reason(
                "missing approval from " + ", ".join(Requirement(r).label for r in missing),
                _change_anchor(change, "approvals"),
                "approval",
            )
        )
    return reasons + _check_reasons(change, facts, now)


def _waiting(user: User) -> list[WaitingItem]:
    return [
        WaitingItem(change, slots)
        for change, slots in review_selectors.waiting_changes(review_selectors.waiting_slots(user))
    ]


def _rollout_why(rollout: Any) -> str | None:
    """Why a progressing or paused rollout waits for an administrator (None: it moves by itself)."""
    if rollout.state == RolloutState.PAUSED:
        return "paused: resume, roll back or abort"
    outcome = getattr(rollout, "last_note_outcome", None)
    if outcome == _LANE_FAILED:
        return f"phases failing: {rollout.last_note_reason}"
    if rollout.strategy != RolloutStrategy.CANARY:
        return "waiting for the next step"
    if outcome == _NO_SIGNAL:
        return "no telemetry to judge the canary: advance, pause or roll back by hand"
    return None


def _rollouts(
    user: User, admin_of: dict[Any, list[str]], tenants: Iterable[Tenant]
) -> list[RolloutItem]:
    qs = with_last_note(
        Rollout.objects.filter(tenant__in=list(tenants), state__in=list(ACTIVE_STATES))
        .select_related("tenant", "change")
        .order_by("started_at", "number")
    )
    items = []
    for rollout in qs:
        roles = admin_of.get(rollout.tenant_id, [])
        if not rollout_permissions.can_operate_rollout(user, rollout, roles=roles):
            continue
        why = _rollout_why(rollout)
        if why is not None:
            items.append(RolloutItem(rollout, why))
    return items


def _waivers(
    user: User, tenants: list[Tenant], admin_tenants: list[Tenant], now: datetime
) -> list[Waiver]:
    """Waivers expiring soon: an administrator's tenants' all; else those one granted or owns,
    or that excuse one's own open change (granted for it, or for artifacts it changes)."""
    my_artifacts = ChangeItem.objects.filter(
        change__author=user, change__status__in=AUTHOR_OPEN_STATES
    ).values("artifact_id")
    for_my_artifacts = Waiver.artifacts.through.objects.filter(artifact_id__in=my_artifacts).values(
        "waiver_id"
    )
    mine = (
        Q(tenant__in=admin_tenants)
        | Q(granted_by=user)
        | Q(owner=user)
        | Q(change__author=user)
        | Q(change__isnull=True, pk__in=for_my_artifacts)
    )
    qs = (
        Waiver.objects.filter(tenant__in=tenants)
        .filter(mine)
        .select_related("tenant", "owner", "change")
    )
    return list(waivers_by_state(qs, now).filter(state=WaiverState.EXPIRING_SOON))  # type: ignore[misc]  # an annotation


def _postmortems(
    user: User, roles: dict[Any, list[str]], tenants: list[Tenant], now: datetime
) -> list[PostmortemItem]:
    due = list(
        ChangeRequest.objects.filter(
            tenant__in=tenants,
            emergency=True,
            postmortem_due_at__isnull=False,
            postmortem_done_at__isnull=True,
        )
        .select_related("tenant", "author")
        .order_by("postmortem_due_at")
    )
    owners: dict[Any, set[Any]] = defaultdict(set)
    rows = ChangeItem.objects.filter(
        change_id__in=[c.pk for c in due], artifact__owner__isnull=False
    ).values_list("change_id", "artifact__owner_id")
    for change_id, owner_id in rows if due else []:
        owners[change_id].add(owner_id)
    return [
        PostmortemItem(c, overdue=c.postmortem_due_at is not None and c.postmortem_due_at < now)
        for c in due
        if review_permissions.can_record_postmortem(
            user, c, roles=roles.get(c.tenant_id, []), owners=owners[c.pk]
        )
    ]


def home_board(user: User, now: datetime) -> HomeBoard:
    """What needs ``user`` now, across their tenants (a platform administrator's: all)."""
    access = access_by_tenant(user)
    tenants = [row.tenant for row in access]
    roles = {row.tenant.pk: row.roles for row in access}
    admin_tenants = [row.tenant for row in access if Role.ADMINISTRATOR in row.roles]
    candidates = list(
        ChangeRequest.objects.filter(tenant__in=tenants)
        .filter(
            Q(author=user, status__in=AUTHOR_OPEN_STATES)
            | Q(status=ChangeStatus.APPROVED, tenant__in=admin_tenants)
        )
        .select_related("tenant", "author", "policy")
        .order_by("submitted_at", "year", "number")
    )
    facts = _change_facts(candidates)
    blockers = {c.pk: _blockers(c, facts, now) for c in candidates}
    blocked = [
        BlockedItem(c, blockers[c.pk])
        for c in candidates
        if c.author_id == user.pk and blockers[c.pk]
    ]
    promotable = [
        c
        for c in candidates
        if c.status == ChangeStatus.APPROVED
        and not blockers[c.pk]
        and review_permissions.can_promote(user, c, roles=roles.get(c.tenant_id, []))
    ]
    platform_admin = is_platform_admin(user)
    return HomeBoard(
        now=now,
        access=access,
        platform_admin=platform_admin,
        waiting=Section.of(_waiting(user)),
        blocked=Section.of(blocked),
        promotable=Section.of(promotable),
        rollouts=Section.of(_rollouts(user, roles, admin_tenants)),
        waivers=Section.of(_waivers(user, tenants, admin_tenants, now)),
        postmortems=Section.of(_postmortems(user, roles, tenants, now)),
        soon_days=settings.WAIVER_EXPIRING_SOON_DAYS,
        recovery_overdue=recovery_status(now).stale if platform_admin else [],
    )
