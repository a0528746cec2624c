"""Reads about change requests shared by pages, the API, the CLI and services.

Who may approve is read from role grants at the moment of asking, so a role revoked
before promotion stops its approval from counting.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.choices import Role
from accounts.models import RoleGrant, Tenant, User
from accounts.selectors import AnyUser, roles_in_tenant, tenant_scoped
from governance.kernel import passkey_proof
from governance.kernel.errors import NotFound
from governance.kernel.events.models import Event
from governance.kernel.events.services import canonical
from registry.choices import ImpactChoice
from reviews import checks as check_catalog
from reviews import policy as approval_policy
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, Decision, Requirement
from reviews.models import (
    Approval,
    ApprovalPolicy,
    ChangeItem,
    ChangeRequest,
    CheckRun,
    DeploymentChecklist,
    EvaluationReport,
    Recertification,
)

_ROLE_SLOTS = {
    Role.REVIEWER: Requirement.REVIEWER,
    Role.ADMINISTRATOR: Requirement.ADMINISTRATOR,
    Role.PRIVACY_OFFICER: Requirement.PRIVACY_OFFICER,
    Role.SECURITY_OFFICER: Requirement.SECURITY_OFFICER,
}


def items_of(change: ChangeRequest) -> list[ChangeItem]:
    return list(
        change.items.select_related(
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__owner",
            "proposed__artifact__artifact_class",
            "proposed__artifact__tenant",
            "current__artifact__artifact_class",
            "current__artifact__tenant",
        ).order_by("id")
    )


def binding_hash(change: ChangeRequest, items: list[ChangeItem] | None = None) -> str:
    """SHA-256 of what an approval of this revision covers: items, their hashes, evidence, flags, plan."""
    items = items_of(change) if items is None else items
    evidence = sorted(
        EvaluationReport.objects.filter(version_id__in=[i.proposed_id for i in items]).values_list(
            "sha256", flat=True
        )
    )
    body = {
        "change": change.reference,
        "revision": change.revision,
        "items": [
            {
                "artifact": i.artifact.path,
                "proposed": i.proposed.manifest_sha256,
                "current": i.current.manifest_sha256 if i.current else None,
            }
            for i in items
        ],
        "evidence": evidence,
        "flags": {
            "emergency": change.emergency,
            "privacy_related": change.privacy_related,
            "external_egress": change.external_egress,
        },
        "rollback_plan": change.rollback_plan,
        "golden_corpus": change.golden_corpus.manifest_sha256 if change.golden_corpus else None,
    }
    if change.migration_plan:  # covered once there is one (earlier hashes stay as they were)
        body["migration_plan"] = change.migration_plan
    return hashlib.sha256(canonical(body)).hexdigest()


# --- policy ------------------------------------------------------------------------------


def effective_policy(tenant: Tenant) -> tuple[ApprovalPolicy | None, dict[str, Any]]:
    """The policy in force for a tenant: its own newest, else the platform default's newest, else built-in."""
    own = ApprovalPolicy.objects.filter(tenant=tenant).order_by("-number").first()
    row = own or ApprovalPolicy.objects.filter(tenant__isnull=True).order_by("-number").first()
    if row is None:
        return None, approval_policy.DEFAULT_RULES
    return row, row.rules


def passkey_required(change: ChangeRequest, requirement: str) -> bool:
    """Whether signing off ``change`` in ``requirement`` needs the approver's passkey: when the
    policy fixed at submission says so, or the tenant's policy in force now does (the stricter
    wins). The one predicate the service, the pages and the API ask."""
    if requirement in (change.passkey_requirements or []):
        return True
    _row, document = effective_policy(change.tenant)
    return approval_policy.passkey_required(document, requirement)


def passkey_problem(approval: Approval) -> str | None:
    """Why a passkey approval does not count, or None: its key was revoked, or the statement it
    signed is not this approval's (a stored column changed after signing)."""
    if approval.passkey_id is None:
        return None
    passkey = approval.passkey
    if passkey is not None and passkey.revoked_at is not None:
        return f"signed with a passkey revoked on {passkey.revoked_at:%Y-%m-%d %H:%M} UTC"
    try:
        statement = passkey_proof.parse_statement(approval.passkey_statement)
    except passkey_proof.ProofError as exc:
        return f"its signed statement is unreadable ({exc})"
    expected = {
        "change_uuid": str(approval.change_id),
        "revision": approval.revision,
        "binding_sha256": approval.binding_sha256,
        "decision": approval.decision,
        "requirement": approval.requirement,
        "approver": str(approval.approver_id),
        "comment_sha256": passkey_proof.comment_digest(approval.comment),
    }
    wrong = [k for k, v in expected.items() if statement.get(k) != v]
    if wrong:
        return f"its signed statement does not match the approval ({', '.join(wrong)})"
    return None


def policy_history(tenant: Tenant | None) -> QuerySet[ApprovalPolicy]:
    return (
        ApprovalPolicy.objects.filter(tenant=tenant)
        .select_related("created_by")
        .order_by("-number")
    )


# --- approvals ---------------------------------------------------------------------------


@dataclass
class Slot:
    requirement: str
    approval: Approval | None = None

    @property
    def label(self) -> str:
        return Requirement(self.requirement).label


@dataclass
class ApprovalStatus:
    slots: list[Slot]
    rejections: list[Approval] = field(default_factory=list)
    not_counting: list[tuple[Approval, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return (
            bool(self.slots)
            and all(s.approval is not None for s in self.slots)
            and not self.rejections
        )

    @property
    def missing(self) -> list[str]:
        return [s.requirement for s in self.slots if s.approval is None]


def _held_slots(
    tenant: Tenant, users: Sequence[AnyUser], owners: set[Any], deputies: set[Any]
) -> dict[Any, set[str]]:
    """The approval slots each user can fill now (one query for all of them)."""
    held: dict[Any, set[str]] = defaultdict(set)
    ids = [u.pk for u in users if u.is_active]
    grants = RoleGrant.objects.filter(user_id__in=ids, revoked_at__isnull=True).filter(
        Q(tenant=tenant) | Q(tenant__isnull=True)
    )
    for user_id, role in grants.values_list("user_id", "role"):
        held[user_id].add(_ROLE_SLOTS[Role(role)].value)
    for user in users:
        if user.is_active and user.is_superuser:
            held[user.pk].add(Requirement.ADMINISTRATOR.value)
        if user.is_active and user.pk in owners:
            held[user.pk].add(Requirement.OWNER.value)
        if user.is_active and user.pk in deputies:
            held[user.pk].add(Requirement.DEPUTY.value)
    return held


def owners_of(change: ChangeRequest) -> set[Any]:
    """Ids of the owners of the artifacts a change touches (its accountable owners)."""
    return _owners(change)


def _owners(change: ChangeRequest) -> set[Any]:
    return set(
        change.items.exclude(artifact__owner__isnull=True).values_list(
            "artifact__owner_id", flat=True
        )
    )


def deputies_of(change: ChangeRequest) -> set[Any]:
    """Ids of the deputy owners of the artifacts a change touches."""
    return set(
        change.items.exclude(artifact__deputy__isnull=True).values_list(
            "artifact__deputy_id", flat=True
        )
    )


def promotion_by_owner(change: ChangeRequest) -> bool:
    """Whether the approval policy the change was submitted under (or, before submission, the
    one in force) lets only an accountable owner promote it (a rule's ``promoted_by``)."""
    if change.policy_id is not None and change.policy is not None:
        document = change.policy.rules
    elif change.submitted_at is not None:
        document = approval_policy.DEFAULT_RULES
    else:
        document = effective_policy(change.tenant)[1]
    if not approval_policy.names_owner_promotion(document):
        return False  # most policies: no need to read the change's items
    return approval_policy.promoted_by_owner(document, change_facts(change))


def change_facts(change: ChangeRequest, items: Sequence[ChangeItem] | None = None) -> Any:
    """What the approval policy looks at in a change (``reviews.policy.ChangeFacts``)."""
    items = items_of(change) if items is None else items
    return approval_policy.ChangeFacts(
        classes=frozenset(i.artifact.artifact_class.slug for i in items),
        emergency=change.emergency,
        privacy_related=change.privacy_related,
        external_egress=change.external_egress,
        action_eligible=any(i.artifact.action_eligible for i in items),
    )


def approval_status(change: ChangeRequest) -> ApprovalStatus:
    """Which required slots are filled, by whom, and which decisions do not count (and why)."""
    live = list(
        change.approvals.filter(voided_at__isnull=True)
        .select_related("approver", "passkey")
        .order_by("created_at")
    )
    needs_passkey = set(change.passkey_requirements or [])
    held = _held_slots(
        change.tenant, [a.approver for a in live], _owners(change), deputies_of(change)
    )
    status = ApprovalStatus(slots=[Slot(r) for r in change.requirements])
    by_slot = {s.requirement: s for s in status.slots}
    for approval in live:
        if approval.revision != change.revision or approval.binding_sha256 != change.binding_sha256:
            status.not_counting.append((approval, "given for an earlier revision"))
            continue
        if approval.requirement not in held.get(approval.approver_id, set()):
            status.not_counting.append(
                (approval, f"{approval.approver.username} no longer holds the role")
            )
            continue
        problem = passkey_problem(approval)
        if (
            problem is None
            and approval.passkey_id is None
            and approval.requirement in needs_passkey
        ):
            problem = "signed off without the approver's passkey, which the policy requires"
        if problem is not None:
            status.not_counting.append((approval, problem))
            continue
        if approval.decision == Decision.REJECT:
            status.rejections.append(approval)
            continue
        slot = by_slot.get(approval.requirement)
        if slot is None:
            status.not_counting.append((approval, "that role is no longer required"))
        elif slot.approval is None:
            slot.approval = approval
        else:
            status.not_counting.append(
                (approval, f"the slot was already filled by {slot.approval.approver.username}")
            )
    return status


def requirements_held_by(change: ChangeRequest, user: AnyUser) -> set[str]:
    return _held_slots(change.tenant, [user], _owners(change), deputies_of(change)).get(
        user.pk, set()
    )


def people_for_requirements(change: ChangeRequest, requirements: Iterable[str]) -> list[User]:
    """Everyone who could fill one of these slots in the change's tenant."""
    wanted = set(requirements)
    roles = [role for role, slot in _ROLE_SLOTS.items() if slot in wanted]
    grant_filter = Q(role_grants__revoked_at__isnull=True, role_grants__role__in=roles) & (
        Q(role_grants__tenant=change.tenant) | Q(role_grants__tenant__isnull=True)
    )
    query = grant_filter if roles else Q(pk__in=[])
    if Requirement.OWNER in wanted:
        query |= Q(pk__in=_owners(change))
    if Requirement.DEPUTY in wanted:
        query |= Q(pk__in=deputies_of(change))
    return list(User.objects.filter(query, is_active=True).distinct())


# --- checks ------------------------------------------------------------------------------


@dataclass
class CheckSummary:
    runs: dict[str, CheckRun | None]

    @property
    def all_passed(self) -> bool:
        return all(r is not None and r.status == CheckStatus.PASSED for r in self.runs.values())

    @property
    def not_passed(self) -> list[str]:
        return [
            f"{check_catalog.label(kind)} {run.status if run else 'not run'}"
            for kind, run in self.runs.items()
            if run is None or run.status != CheckStatus.PASSED
        ]


def check_summary(change: ChangeRequest) -> CheckSummary:
    """The newest attempt of each required check on the current revision."""
    required = check_catalog.required_checks(change)
    runs: dict[str, CheckRun | None] = dict.fromkeys(required)
    for run in CheckRun.objects.filter(change=change, revision=change.revision).order_by(
        "kind", "-attempt"
    ):
        if run.kind in runs and runs[run.kind] is None:
            runs[run.kind] = run
    return CheckSummary(runs)


@dataclass
class CheckVerdict:
    """A required check's standing at one moment: passed, passed under a waiver, or blocking (and why)."""

    kind: str
    run: CheckRun | None
    waivers: list[Any] = field(default_factory=list)
    blocked_by: str | None = None
    #: Waivers in scope that do not count now (expired, revoked, awaiting a countersignature).
    lapsed: list[Any] = field(default_factory=list)

    @property
    def label(self) -> str:
        return check_catalog.label(self.kind)

    @property
    def passes(self) -> bool:
        return self.blocked_by is None

    @property
    def waived(self) -> bool:
        return self.passes and bool(self.waivers)


def failing_metrics(run: CheckRun) -> tuple[set[str], bool]:
    """The gate metrics a change-gates run failed, and whether it had problems no metric names."""
    metrics: set[str] = set()
    problems = False
    for report in (run.result or {}).values():
        if not isinstance(report, dict):
            continue
        problems |= bool(report.get("problems"))
        for row in report.get("rows", []):
            if isinstance(row, dict) and not row.get("passed"):
                metrics.add(str(row.get("metric", "")))
    return metrics, problems


def check_verdicts(change: ChangeRequest, now: datetime | None = None) -> list[CheckVerdict]:
    """Each required check with the waivers that let it pass at ``now`` (one fixed moment).

    A waiver lets a *failed* check pass while it is active; one that could not run
    (error) must run again. A change-gates waiver naming a metric covers that metric only.
    """
    from reviews.waivers.choices import COVERING_STATES
    from reviews.waivers.selectors import waivers_in_scope

    now = now or timezone.now()
    summary = check_summary(change)
    in_scope = (
        waivers_in_scope(change)
        if any(r is not None and r.status == CheckStatus.FAILED for r in summary.runs.values())
        else []
    )
    verdicts = []
    for kind, run in summary.runs.items():
        verdict = CheckVerdict(kind=kind, run=run)
        verdicts.append(verdict)
        label = check_catalog.label(kind)
        if run is None:
            verdict.blocked_by = f"{label} not run"
            continue
        if run.status == CheckStatus.PASSED:
            continue
        if run.status != CheckStatus.FAILED:
            verdict.blocked_by = f"{label} {run.status}" + (
                "; run it again (a waiver covers a failed check, not one that could not run)"
                if run.status == CheckStatus.ERROR
                else ""
            )
            continue
        mine = [w for w in in_scope if w.check_kind == kind]
        live = [
            w for w in mine if w.state_at(now) in COVERING_STATES and w.covers_revision_of(change)
        ]
        verdict.lapsed = [w for w in mine if w not in live]
        whole = [w for w in live if not w.metric]
        if whole:
            verdict.waivers = whole[:1]
            continue
        if kind == CheckKind.CHANGE_GATES and live:
            failing, problems = failing_metrics(run)
            by_metric = {w.metric: w for w in live}
            if failing and not problems and failing <= set(by_metric):
                verdict.waivers = [by_metric[m] for m in sorted(failing)]
                continue
            uncovered = ", ".join(sorted(failing - set(by_metric))) or "its invalid gates"
            covered = ", ".join(sorted(by_metric))
            verdict.blocked_by = (
                f"{label} failed (waivers cover only the {covered} gate; {uncovered} is not waived)"
            )
            continue
        verdict.blocked_by = f"{label} failed" + _lapsed_text(verdict.lapsed, now, change)
    return verdicts


def lapse_reason(waiver: Any, now: datetime, change: ChangeRequest | None = None) -> str:
    """Why a waiver in scope does not let its check pass at ``now``, in words."""
    from reviews.waivers.choices import WaiverState

    state = waiver.state_at(now)
    if state == WaiverState.EXPIRED:
        return f"expired on {waiver.expires_at:%Y-%m-%d %H:%M} UTC"
    if state == WaiverState.REVOKED and waiver.revoked_at is not None:
        return f"was revoked on {waiver.revoked_at:%Y-%m-%d %H:%M} UTC"
    if state == WaiverState.PENDING:
        return "awaits a security officer's countersignature"
    if change is not None and not waiver.covers_revision_of(change):
        return (
            f"was granted for revision {waiver.change_revision}; the change was revised "
            "since, so renew it"
        )
    return "does not cover this change"


def _lapsed_text(lapsed: list[Any], now: datetime, change: ChangeRequest) -> str:
    if not lapsed:
        return ""
    return f" (waiver {lapsed[0].reference} {lapse_reason(lapsed[0], now, change)})"


def promotion_blockers(change: ChangeRequest, now: datetime | None = None) -> list[str]:
    """Everything that stops a promotion at ``now``; empty means it may go ahead."""
    now = now or timezone.now()
    items = items_of(change)
    blockers = [
        f"{item.proposed.path} is already the active version"
        for item in items
        if item.artifact.active_version_id == item.proposed_id
    ]
    if binding_hash(change, items) != change.binding_sha256:
        blockers.append("what is proposed changed since it was reviewed; revise and resubmit")
    status = approval_status(change)
    if status.rejections:
        blockers.append("rejected by " + ", ".join(a.approver.username for a in status.rejections))
    if status.missing:
        blockers.append(
            "missing approval from " + ", ".join(Requirement(m).label for m in status.missing)
        )
    blockers.extend(
        f"check {v.blocked_by}" for v in check_verdicts(change, now) if v.blocked_by is not None
    )
    gaps = breaking_change_gaps(change, items)
    if gaps:
        blockers.append("a breaking change of an action-eligible artifact needs " + "; ".join(gaps))
    return blockers


def breaking_items(
    change: ChangeRequest, items: list[ChangeItem] | None = None
) -> list[ChangeItem]:
    """Items of action-eligible artifacts whose proposed version breaks the contract of the one
    it replaces: declared major, or a major contract change detected at publication."""
    items = items_of(change) if items is None else items
    return [
        item
        for item in items
        if item.artifact.action_eligible
        and item.current_id is not None
        and (
            item.proposed.declared_impact == ImpactChoice.MAJOR
            or any(
                isinstance(c, dict) and c.get("impact") == ImpactChoice.MAJOR.value
                for c in item.proposed.detected_changes or []
            )
        )
    ]


def breaking_change_gaps(change: ChangeRequest, items: list[ChangeItem] | None = None) -> list[str]:
    """What a breaking change of an action-eligible artifact still lacks before it can be
    approved: a migration plan, and a simulation report for each breaking version."""
    breaking = breaking_items(change, items)
    if not breaking:
        return []
    gaps = []
    if not change.migration_plan.strip():
        gaps.append("a migration plan (revise the change to add one)")
    simulated = set(
        EvaluationReport.objects.filter(
            version_id__in=[i.proposed_id for i in breaking], simulation=True
        ).values_list("version_id", flat=True)
    )
    gaps += [
        f"simulation evidence for {item.proposed.path} (attach an evaluation report of a "
        "simulation run)"
        for item in breaking
        if item.proposed_id not in simulated
    ]
    return gaps


def failed_checks_without_waiver(change: ChangeRequest, now: datetime) -> list[str]:
    """Finished checks that failed and no active waiver covers (pending ones are not counted)."""
    return [
        v.blocked_by
        for v in check_verdicts(change, now)
        if v.blocked_by is not None
        and v.run is not None
        and v.run.status in (CheckStatus.FAILED, CheckStatus.ERROR)
    ]


def waivers_used(verdicts: list[CheckVerdict]) -> list[dict[str, Any]]:
    """The waivers a decision relied on, for its event."""
    return [
        {
            "check": v.kind,
            "waiver": w.reference,
            "metric": w.metric or None,
            "expires_at": w.expires_at.isoformat(),
        }
        for v in verdicts
        for w in v.waivers
    ]


# --- lists -------------------------------------------------------------------------------


def changes_visible_to(user: Any) -> QuerySet[ChangeRequest]:
    return tenant_scoped(ChangeRequest.objects.select_related("tenant", "author"), user=user)


def change_by_reference(reference: str, *, visible_to: Any) -> ChangeRequest:
    """``CR-2026-0042`` (or its UUID) if the user may see it; another tenant's reads as missing."""
    return _change_in(changes_visible_to(visible_to), reference)


def change_by_reference_unscoped(reference: str) -> ChangeRequest:
    """Any tenant's change: only for the CLI and system tasks, which act for the platform."""
    return _change_in(ChangeRequest.objects.all(), reference)


def _change_in(qs: QuerySet[ChangeRequest], reference: str) -> ChangeRequest:
    text = (reference or "").strip().upper()
    parts = text.split("-")
    qs = qs.select_related("tenant", "author", "policy", "golden_corpus__artifact__tenant")
    if len(parts) == 3 and parts[0] == "CR" and parts[1].isdigit() and parts[2].isdigit():
        change = qs.filter(year=int(parts[1]), number=int(parts[2])).first()
    else:
        try:
            change = qs.filter(pk=uuid.UUID(reference.strip())).first()
        except ValueError:
            change = None
    if change is None:
        raise NotFound(f"No change request {reference}.", field="reference")
    return change


@dataclass(frozen=True)
class _Candidate:
    """The three columns "waiting for me" needs of a change, without building the model."""

    pk: Any
    tenant_id: Any
    requirements: list[str]


def waiting_slots(user: User) -> list[tuple[Any, list[str]]]:
    """Ids of the open changes where ``user`` can fill a missing slot, oldest first, with those slots.

    Reads a few columns of every candidate and a fixed number of statements
    (plus one per tenant for the user's roles), so pages can count and cap.
    """
    if not user.is_authenticated:
        return []
    in_review = (
        changes_visible_to(user)
        .select_related(None)
        .filter(status=ChangeStatus.IN_REVIEW)
        .exclude(author=user)
    )
    candidates = [
        _Candidate(pk, tenant_id, requirements)
        for pk, tenant_id, requirements in in_review.order_by("submitted_at").values_list(
            "pk", "tenant_id", "requirements"
        )
    ]
    if not candidates:
        return []
    # The database re-reads the candidates as a subquery: cheaper than sending back every id.
    ids = in_review.values("pk")
    decided = set(
        Approval.objects.filter(
            change_id__in=ids, approver=user, voided_at__isnull=True
        ).values_list("change_id", flat=True)
    )
    tenants = Tenant.objects.in_bulk({c.tenant_id for c in candidates})
    roles_by_tenant = {
        tenant_id: {_ROLE_SLOTS[Role(r)].value for r in roles_in_tenant(user, tenant)}
        for tenant_id, tenant in tenants.items()
    }
    owned: set[Any] = set()
    deputy_for: set[Any] = set()
    for change_id, owner_id, deputy_id in ChangeItem.objects.filter(
        Q(artifact__owner=user) | Q(artifact__deputy=user), change_id__in=ids
    ).values_list("change_id", "artifact__owner_id", "artifact__deputy_id"):
        if owner_id == user.pk:
            owned.add(change_id)
        if deputy_id == user.pk:
            deputy_for.add(change_id)
    live = filled_slots(candidates, ids=ids)
    out = []
    for change in candidates:
        if change.pk in decided:
            continue
        mine = set(roles_by_tenant[change.tenant_id])
        if change.pk in owned:
            mine.add(Requirement.OWNER.value)
        if change.pk in deputy_for:
            mine.add(Requirement.DEPUTY.value)
        open_slots = [r for r in change.requirements if r in mine and r not in live[change.pk]]
        if open_slots:
            out.append((change.pk, open_slots))
    return out


def waiting_changes(
    slots: Sequence[tuple[Any, list[str]]],
) -> list[tuple[ChangeRequest, list[str]]]:
    """The changes behind ``waiting_slots`` rows (in the same order), in one query."""
    full = ChangeRequest.objects.select_related("tenant", "author").in_bulk([pk for pk, _ in slots])
    return [(full[pk], open_slots) for pk, open_slots in slots if pk in full]


def waiting_for(user: User) -> list[tuple[ChangeRequest, list[str]]]:
    """Open changes where ``user`` can fill a missing slot, oldest first, with the slots they can fill."""
    return waiting_changes(waiting_slots(user))


def filled_slots(changes: Sequence[Any], *, ids: Any = None) -> dict[Any, set[str]]:
    """The slots that count as filled on each change, judged as ``approval_status`` does, in 4 queries.

    ``changes`` are change requests, or anything with their ``pk`` and ``tenant_id``;
    ``ids`` may give their primary keys as a subquery.
    """
    if ids is None:
        ids = [c.pk for c in changes]
    approvals = list(
        Approval.objects.filter(
            change_id__in=ids,
            voided_at__isnull=True,
            decision=Decision.APPROVE,
            revision=F("change__revision"),
            binding_sha256=F("change__binding_sha256"),
        ).values_list("change_id", "approver_id", "requirement")
    )
    approvers = {a for _, a, _ in approvals}
    tenant_of = {c.pk: c.tenant_id for c in changes}
    held: dict[tuple[Any, Any], set[str]] = defaultdict(set)  # (user, tenant or None) -> slots
    for user_id, tenant_id, role in RoleGrant.objects.filter(
        user_id__in=approvers, revoked_at__isnull=True, user__is_active=True
    ).values_list("user_id", "tenant_id", "role"):
        held[(user_id, tenant_id)].add(_ROLE_SLOTS[Role(role)].value)
    for user_id in User.objects.filter(
        pk__in=approvers, is_superuser=True, is_active=True
    ).values_list("pk", flat=True):
        held[(user_id, None)].add(Requirement.ADMINISTRATOR.value)
    owners: dict[Any, set[Any]] = defaultdict(set)
    deputies: dict[Any, set[Any]] = defaultdict(set)
    for change_id, owner_id, deputy_id in ChangeItem.objects.filter(change_id__in=ids).values_list(
        "change_id", "artifact__owner_id", "artifact__deputy_id"
    ):
        if owner_id is not None:
            owners[change_id].add(owner_id)
        if deputy_id is not None:
            deputies[change_id].add(deputy_id)
    filled: dict[Any, set[str]] = defaultdict(set)
    for change_id, approver_id, requirement in approvals:
        slots = held[(approver_id, tenant_of[change_id])] | held[(approver_id, None)]
        if approver_id in owners[change_id]:
            slots = slots | {Requirement.OWNER.value}
        if approver_id in deputies[change_id]:
            slots = slots | {Requirement.DEPUTY.value}
        if requirement in slots:
            filled[change_id].add(requirement)
    return filled


def timeline(change: ChangeRequest) -> QuerySet[Event]:
    """The change's own events, in order (its history as the log proves it)."""
    return (
        Event.objects.filter(subject_type="reviews.changerequest", subject_id=str(change.pk))
        .order_by("seq")
        .select_related("actor")
    )


def evaluation_reports(change: ChangeRequest) -> QuerySet[EvaluationReport]:
    return EvaluationReport.objects.filter(
        version_id__in=change.items.values("proposed_id")
    ).select_related(
        "version__artifact__artifact_class", "version__artifact__tenant", "submitted_by"
    )


def latest_report(version_id: Any) -> EvaluationReport | None:
    return EvaluationReport.objects.filter(version_id=version_id).order_by("-created_at").first()


def deployment_checklist_of(change: ChangeRequest) -> DeploymentChecklist | None:
    """The deployment checklist of the change's current revision (the latest completed), or None."""
    return (
        DeploymentChecklist.objects.filter(change=change, revision=change.revision)
        .select_related("completed_by")
        .order_by("-created_at")
        .first()
    )


def deployment_checklist_latest(change: ChangeRequest) -> DeploymentChecklist | None:
    """The change's latest deployment checklist, of any revision (outdated when not the current)."""
    return (
        DeploymentChecklist.objects.filter(change=change)
        .select_related("completed_by")
        .order_by("-created_at")
        .first()
    )


def recertification_of(change: ChangeRequest) -> Recertification | None:
    """An emergency change's re-certification (with the follow-up change), if one was opened."""
    if not change.emergency:
        return None
    return Recertification.objects.select_related("followup").filter(emergency=change).first()


def awaiting_recertification(version_ids: Iterable[Any]) -> dict[Any, Recertification]:
    """The open re-certification of each of these versions that an emergency change made
    active and no normal change has re-certified yet (absent = nothing awaited)."""
    ids = list(version_ids)
    if not ids:
        return {}
    found: dict[Any, Recertification] = {}
    for version_id, recertification in (
        (r.version_id, r)
        for r in Recertification.objects.filter(
            certified_at__isnull=True, emergency__items__proposed_id__in=ids
        )
        .select_related("emergency")
        .annotate(version_id=F("emergency__items__proposed_id"))
        .order_by("due_at")
    ):
        found.setdefault(version_id, recertification)
    return found
