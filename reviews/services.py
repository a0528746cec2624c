"""Every change to change requests: open, submit, revise, decide, check, attach evidence, promote, roll back.

Each function is atomic and appends its events in the same transaction. Rules
live here, not in views: the pages, the API, the CLI and the tasks all call these.
Production stays fail-closed: nothing becomes active without every required
approval and every required check of the change's current revision.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, canonical, event_record, events_record
from governance.kernel.inputs import clean_text
from governance.kernel.notifications import notification_send
from governance.selectors import waivers_in_scope
from registry.choices import Stage
from registry.models import Artifact, ArtifactClass, Deprecation, Retirement, Version, VersionState
from registry.selectors import lifecycle_refusal
from registry.services import version_stage_set
from registry.verification import verify_versions
from reviews import checks as check_catalog
from reviews import hooks, permissions, selectors
from reviews import policy as approval_policy
from reviews.choices import (
    EDITABLE_STATES,
    OPEN_STATES,
    TRANSITIONS,
    ActivationKind,
    ChangeStatus,
    CheckStatus,
    Decision,
    Requirement,
    RolloutStrategy,
)
from reviews.models import (
    Activation,
    Approval,
    ApprovalPolicy,
    ChangeCounter,
    ChangeGate,
    ChangeItem,
    ChangeRequest,
    CheckRun,
    Comment,
    EvaluationReport,
)

# --- helpers -------------------------------------------------------------------------


def _transition(change: ChangeRequest, to: str) -> None:
    """Move a change along its lifecycle, refusing any step ``TRANSITIONS`` does not allow."""
    if to not in TRANSITIONS[change.status]:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; "
            f"it cannot become {ChangeStatus(to).label.lower()}.",
            field="status",
        )
    change.status = to


def _lock(change: ChangeRequest) -> ChangeRequest:
    """Re-read a change with its row locked, so concurrent decisions on it queue up."""
    return (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("tenant", "author", "policy", "golden_corpus")
        .get(pk=change.pk)
    )


def _open_changes_proposing(version: Version) -> list[Any]:
    return list(
        ChangeRequest.objects.filter(items__proposed=version, status__in=EDITABLE_STATES)
        .order_by("pk")
        .values_list("pk", flat=True)
        .distinct()
    )


def _require_author_or_admin(change: ChangeRequest, actor: User | None, action: str) -> None:
    permissions.can_act_as_author(actor, change, action).require()


def _label(change: ChangeRequest) -> str:
    """How notifications name a change: emergency changes say so first, everywhere."""
    return f"[Emergency] {change.reference}" if change.emergency else change.reference


def _subject(change: ChangeRequest) -> tuple[str, str, str]:
    return ("reviews.changerequest", str(change.pk), f"{change.reference} {change.title}"[:200])


def _record(kind: str, change: ChangeRequest, actor: User | None, **payload: Any) -> None:
    event_record(
        kind=kind,
        actor=actor,
        tenant=change.tenant,
        subject=_subject(change),
        payload={"change": change.reference, **payload},
    )


def _version_ref(version: Version | None) -> dict[str, str] | None:
    if version is None:
        return None
    return {"path": version.path, "sha256": version.manifest_sha256}


def _void_approvals(change: ChangeRequest, actor: User | None, reason: str) -> int:
    live = list(change.approvals.filter(voided_at__isnull=True).select_related("approver"))
    if not live:
        return 0
    Approval.objects.filter(pk__in=[a.pk for a in live]).update(
        voided_at=timezone.now(), void_reason=reason[:300]
    )
    _record(
        EventKind.APPROVAL_VOIDED,
        change,
        actor,
        reason=reason,
        approvals=[
            {"approver": a.approver.username, "requirement": a.requirement, "decision": a.decision}
            for a in live
        ],
    )
    return len(live)


def stage_set(
    *, version: Version, stage: str, actor: User | None, change: ChangeRequest | None
) -> bool:
    """Record a version's new lifecycle stage (and its event); False if it already stands there."""
    return version_stage_set(version=version, stage=stage, actor=actor, change=change)


#: The stages a review may move a version out of. A live (active), deprecated or retired
#: version keeps its stage whatever another change proposing it goes through.
_REVIEW_FROM: dict[str, frozenset[str]] = {
    Stage.EVALUATED: frozenset({Stage.DRAFT}),
    Stage.APPROVED: frozenset({Stage.DRAFT, Stage.EVALUATED}),
}


def _review_stage_set(
    *, version: Version, stage: str, actor: User | None, change: ChangeRequest
) -> bool:
    """Move a proposed version forward as its review progresses; never a live version's stage."""
    if version.artifact.active_version_id == version.pk:
        return False
    state = VersionState.objects.filter(version=version).first()
    if (state.stage if state else Stage.DRAFT) not in _REVIEW_FROM[stage]:
        return False
    return stage_set(version=version, stage=stage, actor=actor, change=change)


def _resolve_version(tenant: Tenant, item: Version | str, *, field: str) -> Version:
    """One version of ``tenant``; an error names ``field``.

    A version of another tenant gets the same answer as one that does not exist, so a
    reference cannot be used to learn what other tenants hold.
    """
    from registry.selectors import parse, version_in_tenant

    if isinstance(item, Version):
        if item.artifact.tenant_id != tenant.pk:
            raise DomainError(f"No version '{item.path}' in {tenant.slug}.", field=field)
        return item
    try:
        ref = parse(str(item), tenant=tenant.slug)
        if ref.tenant != tenant.slug:
            raise DomainError(f"No version '{ref}' in {tenant.slug}.", field=field)
        return version_in_tenant(ref, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _resolve_versions(tenant: Tenant, proposed: Sequence[Version | str]) -> list[Version]:
    versions: list[Version] = []
    for i, item in enumerate(proposed):
        try:
            version = _resolve_version(tenant, item, field="proposed")
        except DomainError as exc:
            raise DomainError(f"proposed[{i}]: {exc.message}", field="proposed") from exc
        refusal = lifecycle_refusal(version)
        if refusal is not None:
            raise DomainError(f"proposed[{i}]: {refusal}.", field="proposed")
        versions.append(version)
    if not versions:
        raise DomainError("Propose at least one version.", field="proposed")
    seen: set[Any] = set()
    for version in versions:
        if version.artifact_id in seen:
            raise DomainError(
                f"{version.artifact.path} appears twice; propose one version per artifact.",
                field="proposed",
            )
        seen.add(version.artifact_id)
    return versions


def _set_items(change: ChangeRequest, versions: Sequence[Version]) -> None:
    change.items.all().delete()
    for version in versions:
        artifact = version.artifact
        if artifact.active_version_id == version.pk:
            raise DomainError(f"{version.path} is already the active version.", field="proposed")
        ChangeItem.objects.create(
            change=change, artifact=artifact, proposed=version, current=artifact.active_version
        )


def _resolve_corpus(tenant: Tenant, corpus: Version | str | None) -> Version | None:
    if corpus is None or corpus == "":
        return None
    version = _resolve_version(tenant, corpus, field="golden_corpus")
    if version.artifact.artifact_class.slug != "golden-corpus":
        raise DomainError(f"{version.path} is not a golden corpus.", field="golden_corpus")
    return version


def _next_number(year: int) -> int:
    counter, _ = ChangeCounter.objects.get_or_create(year=year)
    counter = ChangeCounter.objects.select_for_update().get(pk=counter.pk)
    counter.last += 1
    counter.save(update_fields=["last"])
    return counter.last


def _rollout_strategy(value: str) -> str:
    if value not in RolloutStrategy.values:
        raise DomainError(
            f"Choose one of {', '.join(RolloutStrategy.values)}.", field="rollout_strategy"
        )
    return value


def _storable_json(value: Any, field: str) -> None:
    """Refuse what JSON can carry but the database cannot store: NUL characters, non-finite floats."""
    if isinstance(value, str):
        if "\x00" in value:
            raise DomainError("NUL characters are not allowed.", field=field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise DomainError("Numbers must be finite.", field=field)
    elif isinstance(value, dict):
        for key, item in value.items():
            _storable_json(key, field)
            _storable_json(item, field)
    elif isinstance(value, list | tuple):
        for item in value:
            _storable_json(item, field)


def _text(value: str | None, field: str, *, required: bool, limit: int | None = None) -> str:
    return clean_text(value, field, required=required, limit=limit)


# --- opening and editing ---------------------------------------------------------------


@transaction.atomic
def change_create(
    *,
    tenant: Tenant,
    actor: User,
    title: str,
    rollback_plan: str,
    proposed: Sequence[Version | str],
    description: str = "",
    risk_note: str = "",
    privacy_related: bool = False,
    external_egress: bool = False,
    emergency: bool = False,
    golden_corpus: Version | str | None = None,
    rollout_strategy: str = RolloutStrategy.CANARY,
) -> ChangeRequest:
    """Open a change request (a draft) proposing versions to replace their artifacts' active ones.

    ``rollout_strategy`` says how its versions reach the application slots bound to their
    artifacts once promoted (``rollouts.services.rollout_create`` defaults to it).
    """
    permissions.can_open_change(actor, tenant).require()
    strategy = _rollout_strategy(rollout_strategy)
    title = _text(title, "title", required=True, limit=200)
    plan = _text(rollback_plan, "rollback_plan", required=True)
    versions = _resolve_versions(tenant, proposed)
    corpus = _resolve_corpus(tenant, golden_corpus)
    now = timezone.now()
    change = ChangeRequest(
        year=now.year,
        number=_next_number(now.year),
        tenant=tenant,
        change_type=versions[0].artifact.artifact_class.slug,
        title=title,
        description=(description or "").strip(),
        risk_note=(risk_note or "").strip(),
        rollback_plan=plan,
        privacy_related=privacy_related,
        external_egress=external_egress,
        emergency=emergency,
        golden_corpus=corpus,
        rollout_strategy=strategy,
        author=actor,
        created_at=now,
    )
    change.save()
    _set_items(change, versions)
    change.binding_sha256 = selectors.binding_hash(change)
    change.save(update_fields=["binding_sha256"])
    _record(
        EventKind.CHANGE_REQUEST_OPENED,
        change,
        actor,
        title=title,
        change_type=change.change_type,
        emergency=emergency,
        privacy_related=privacy_related,
        external_egress=external_egress,
        rollout_strategy=strategy,
        items=[
            {"proposed": _version_ref(i.proposed), "current": _version_ref(i.current)}
            for i in selectors.items_of(change)
        ],
    )
    return change


@transaction.atomic
def change_revise(
    *,
    change: ChangeRequest,
    actor: User | None,
    reason: str,
    proposed: Sequence[Version | str] | None = None,
    title: str | None = None,
    description: str | None = None,
    risk_note: str | None = None,
    rollback_plan: str | None = None,
    privacy_related: bool | None = None,
    external_egress: bool | None = None,
    emergency: bool | None = None,
    golden_corpus: Version | str | None = None,
    rollout_strategy: str | None = None,
) -> ChangeRequest:
    """Change what is proposed (or the record): a new revision, back to draft; every live decision is voided."""
    change = _lock(change)
    _require_author_or_admin(change, actor, "revise")
    if change.status not in EDITABLE_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; it can no longer be revised.",
            field="status",
        )
    reason = _text(reason, "reason", required=True, limit=500)
    if title is not None:
        change.title = _text(title, "title", required=True, limit=200)
    if rollback_plan is not None:
        change.rollback_plan = _text(rollback_plan, "rollback_plan", required=True)
    if description is not None:
        change.description = description.strip()
    if risk_note is not None:
        change.risk_note = risk_note.strip()
    for flag, value in (
        ("privacy_related", privacy_related),
        ("external_egress", external_egress),
        ("emergency", emergency),
    ):
        if value is not None:
            setattr(change, flag, value)
    if golden_corpus is not None:
        change.golden_corpus = _resolve_corpus(change.tenant, golden_corpus)
    if rollout_strategy is not None:
        change.rollout_strategy = _rollout_strategy(rollout_strategy)
    if proposed is not None:
        versions = _resolve_versions(change.tenant, proposed)
        _set_items(change, versions)
        change.change_type = versions[0].artifact.artifact_class.slug
    if change.status != ChangeStatus.DRAFT:
        _transition(change, ChangeStatus.DRAFT)
    change.revision += 1
    change.decided_at = None
    change.save()
    change.binding_sha256 = selectors.binding_hash(change)
    change.save(update_fields=["binding_sha256"])
    _void_approvals(change, actor, f"revised to revision {change.revision}: {reason}")
    _record(
        EventKind.CHANGE_REQUEST_REVISED,
        change,
        actor,
        revision=change.revision,
        reason=reason,
        binding_sha256=change.binding_sha256,
        rollout_strategy=change.rollout_strategy,
        items=[
            {"proposed": _version_ref(i.proposed), "current": _version_ref(i.current)}
            for i in selectors.items_of(change)
        ],
    )
    return change


@transaction.atomic
def change_submit(*, change: ChangeRequest, actor: User | None) -> ChangeRequest:
    """Send a draft for review: fix the approval slots from the policy, start the required checks, notify."""
    change = _lock(change)
    _require_author_or_admin(change, actor, "submit")
    _transition(change, ChangeStatus.IN_REVIEW)
    items = selectors.items_of(change)
    # The active versions may have moved since the draft was opened: compare with today's.
    for item in items:
        active = Artifact.objects.only("active_version").get(pk=item.artifact_id).active_version
        if active is not None and active.pk == item.proposed_id:
            raise Conflict(f"{item.proposed.path} is already active.", field="proposed")
        if item.current_id != (active.pk if active else None):
            ChangeItem.objects.filter(pk=item.pk).update(current=active)
    policy_row, document = selectors.effective_policy(change.tenant)
    facts = approval_policy.ChangeFacts(
        classes=frozenset(i.artifact.artifact_class.slug for i in items),
        emergency=change.emergency,
        privacy_related=change.privacy_related,
        external_egress=change.external_egress,
    )
    change.requirements = approval_policy.requirements_for(document, facts)
    if Requirement.OWNER in change.requirements:
        owners = {i.artifact.owner_id for i in items if i.artifact.owner_id} - {change.author_id}
        if not owners:
            raise DomainError(
                "This change needs its accountable owner's approval, but no artifact in it has an "
                "owner other than the author: set an owner first.",
                field="proposed",
            )
    change.policy = policy_row
    change.submitted_at = timezone.now()
    change.save()
    change.binding_sha256 = selectors.binding_hash(change)
    change.save(update_fields=["binding_sha256"])
    kinds = check_catalog.required_checks(change)
    runs = _start_checks(change, kinds)
    _record(
        EventKind.CHANGE_REQUEST_SUBMITTED,
        change,
        actor,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        requirements=change.requirements,
        waivers_in_scope=[w.reference for w in waivers_in_scope(change)],
        policy=policy_row.number if policy_row else "built-in",
        policy_rules=list(approval_policy.applying_rules(document, facts)),
        checks=[r.kind for r in runs],
    )
    _notify_requirements(change)
    return change


def _start_checks(change: ChangeRequest, kinds: Sequence[str]) -> list[CheckRun]:
    from reviews import tasks

    runs = []
    for kind in kinds:
        last = (
            CheckRun.objects.filter(change=change, kind=kind, revision=change.revision).aggregate(
                n=Max("attempt")
            )["n"]
            or 0
        )
        run = CheckRun.objects.create(
            change=change, kind=kind, revision=change.revision, attempt=last + 1
        )
        runs.append(run)
        tasks.run_check.delay_on_commit(str(run.pk))  # type: ignore[attr-defined]
    return runs


def _notify_requirements(change: ChangeRequest) -> None:
    """Tell the people who can fill a missing slot that the change waits for them."""
    status = selectors.approval_status(change)
    missing = [slot.requirement for slot in status.slots if slot.approval is None]
    if not missing:
        return
    people = selectors.people_for_requirements(change, missing)
    notification_send(
        users=[u for u in people if u.pk != change.author_id],
        tenant=change.tenant,
        title=f"{_label(change)} needs your review: {change.title}"[:200],
        body=f"Waiting for: {', '.join(Requirement(m).label for m in missing)}.",
        url=change.get_absolute_url(),
        dedupe_key=f"review:{change.pk}:r{change.revision}",
    )


@transaction.atomic
def change_withdraw(
    *, change: ChangeRequest, actor: User | None, reason: str = ""
) -> ChangeRequest:
    """The author (or an administrator) gives up on a change; it stays on record."""
    change = _lock(change)
    _require_author_or_admin(change, actor, "withdraw")
    _transition(change, ChangeStatus.WITHDRAWN)
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_at"])
    _record(EventKind.CHANGE_REQUEST_WITHDRAWN, change, actor, reason=(reason or "").strip())
    return change


@transaction.atomic
def comment_add(*, change: ChangeRequest, actor: User, body: str) -> Comment:
    """A remark on a change, by anyone in its tenant."""
    permissions.can_comment(actor, change).require()
    text = _text(body, "body", required=True, limit=5000)
    comment = Comment.objects.create(change=change, author=actor, body=text)
    _record(EventKind.CHANGE_REQUEST_COMMENTED, change, actor, body=text)
    return comment


# --- decisions -------------------------------------------------------------------------


@transaction.atomic
def approval_decide(
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    comment: str = "",
    requirement: str | None = None,
) -> Approval:
    """Approve or reject a change in one required slot the approver can fill.

    The author never approves their own change; a person fills one slot at most; an
    identical repeat returns the existing decision (no second row, no second event).
    """
    if decision not in Decision.values:
        raise DomainError("Decide 'approve' or 'reject'.", field="decision")
    change = _lock(change)
    permissions.can_decide(actor, change, requirement).require()
    existing = change.approvals.filter(approver=actor, voided_at__isnull=True).first()
    if existing is not None:
        if existing.decision == decision and (requirement in (None, existing.requirement)):
            return existing
        raise Conflict(
            f"You already decided '{existing.decision}' as {existing.get_requirement_display()} "
            "on this revision; one person counts once.",
            field="decision",
        )
    if change.status not in OPEN_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; it is not open for review.",
            field="status",
        )
    status = selectors.approval_status(change)
    holdable = selectors.requirements_held_by(change, actor)
    open_slots = [s.requirement for s in status.slots if s.approval is None]
    if requirement is not None:
        if requirement not in change.requirements:
            raise DomainError(
                f"'{requirement}' is not required for {change.reference}.", field="requirement"
            )
        if decision == Decision.APPROVE and requirement not in open_slots:
            raise Conflict(
                f"The {Requirement(requirement).label} slot is already filled by someone else.",
                field="requirement",
            )
        slot = requirement
    else:
        mine = [r for r in change.requirements if r in holdable]  # not empty: can_decide
        free = [r for r in mine if r in open_slots]
        if decision == Decision.APPROVE and not free:
            raise Conflict(
                "Every slot you could fill is already filled by someone else.", field="requirement"
            )
        slot = (free or mine)[0]
    text = (comment or "").strip()
    if decision == Decision.REJECT and not text:
        raise DomainError("Say why you reject the change.", field="comment")
    if decision == Decision.APPROVE:
        failing = selectors.failed_checks_without_waiver(change, timezone.now())
        if failing:
            raise Conflict(
                f"{change.reference} cannot be approved while a check fails without an active "
                f"waiver: {'; '.join(failing)}. Fix it, re-run it, or ask an administrator "
                "for a waiver.",
                field="decision",
            )
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                change=change,
                approver=actor,
                requirement=slot,
                decision=decision,
                comment=text,
                revision=change.revision,
                binding_sha256=change.binding_sha256,
            )
    except IntegrityError as exc:  # a concurrent identical request won the race
        raise Conflict("You already decided on this revision.", field="decision") from exc
    kind = (
        EventKind.APPROVAL_GRANTED if decision == Decision.APPROVE else EventKind.APPROVAL_REJECTED
    )
    _record(
        kind,
        change,
        actor,
        requirement=slot,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        comment=text,
    )
    if decision == Decision.REJECT:
        _transition(change, ChangeStatus.REJECTED)
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decided_at"])
        _record(EventKind.CHANGE_REQUEST_REJECTED, change, actor, requirement=slot, comment=text)
        notification_send(
            users=[change.author],
            tenant=change.tenant,
            title=f"{_label(change)} was rejected by {actor.username}",
            body=text,
            url=change.get_absolute_url(),
            dedupe_key=f"rejected:{approval.pk}",
        )
        return approval
    _settle(change, actor)
    return approval


def _settle(change: ChangeRequest, actor: User | None) -> None:
    """After a decision or a finished check: approve the change once every slot is filled."""
    status = selectors.approval_status(change)
    if change.status == ChangeStatus.IN_REVIEW and status.complete:
        _transition(change, ChangeStatus.APPROVED)
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decided_at"])
        verdicts = selectors.check_verdicts(change, change.decided_at)
        _record(
            EventKind.CHANGE_REQUEST_APPROVED,
            change,
            actor,
            revision=change.revision,
            binding_sha256=change.binding_sha256,
            approvals=[
                {"requirement": s.requirement, "approver": s.approval.approver.username}
                for s in status.slots
                if s.approval is not None
            ],
            waivers=selectors.waivers_used(verdicts),
        )
        all_pass = all(v.passes for v in verdicts)
        for item in selectors.items_of(change):
            if all_pass:
                _review_stage_set(
                    version=item.proposed, stage=Stage.APPROVED, actor=actor, change=change
                )
        admins = selectors.people_for_requirements(change, [Requirement.ADMINISTRATOR])
        notification_send(
            users=[change.author, *admins],
            tenant=change.tenant,
            title=f"{_label(change)} is approved and can be promoted",
            body=change.title,
            url=change.get_absolute_url(),
            dedupe_key=f"approved:{change.pk}:r{change.revision}",
        )


# --- checks and evidence ---------------------------------------------------------------


@transaction.atomic
def check_rerun(*, change: ChangeRequest, kind: str | None, actor: User | None) -> list[CheckRun]:
    """Run one required check (or all) again on the current revision, as a new attempt."""
    change = _lock(change)
    if change.status not in OPEN_STATES:
        raise Conflict("Checks run on changes in review or approved.", field="status")
    required = check_catalog.required_checks(change)
    if kind is not None and kind not in required:
        raise DomainError(f"'{kind}' is not a required check of {change.reference}.", field="kind")
    permissions.can_rerun_checks(actor, change).require()
    return _start_checks(change, [kind] if kind else required)


@transaction.atomic
def check_execute(*, run: CheckRun) -> CheckRun:
    """Run a check and store its result and log as evidence (called by the worker)."""
    run = CheckRun.objects.select_for_update().select_related("change").get(pk=run.pk)
    if run.status != CheckStatus.PENDING:
        return run  # a retried task: already ran
    change = run.change
    started = timezone.now()
    outcome = check_catalog.run(run.kind, change)
    run.status = outcome.status
    run.summary = outcome.summary[:500]
    run.log = outcome.log
    run.result = outcome.result
    run.started_at = started
    run.finished_at = timezone.now()
    run.save()
    _record(
        EventKind.CHECK_COMPLETED,
        change,
        None,
        check=run.kind,
        revision=run.revision,
        attempt=run.attempt,
        status=run.status,
        summary=run.summary,
        log_sha256=hashlib.sha256(run.log.encode()).hexdigest(),
    )
    current = run.revision == change.revision
    if current and selectors.check_summary(change).all_passed:
        for item in selectors.items_of(change):
            _review_stage_set(
                version=item.proposed, stage=Stage.EVALUATED, actor=None, change=change
            )
            if change.status == ChangeStatus.APPROVED:
                _review_stage_set(
                    version=item.proposed, stage=Stage.APPROVED, actor=None, change=change
                )
    elif current and run.status != CheckStatus.PASSED:
        notification_send(
            users=[change.author],
            tenant=change.tenant,
            title=f"{_label(change)}: {run.get_kind_display()} {run.status}",
            body=run.summary,
            url=change.get_absolute_url(),
            dedupe_key=f"check:{run.pk}",
        )
    return run


@transaction.atomic
def evidence_attach(
    *,
    change: ChangeRequest,
    actor: User | None,
    version: Version | str,
    metrics: dict[str, Any],
    bias: dict[str, Any] | None = None,
    safety: dict[str, Any] | None = None,
    seed: str = "",
    rng: str = "",
    test_run_ids: Sequence[str] = (),
    notes: str = "",
) -> EvaluationReport:
    """Attach an evaluation report to a proposed version (CI does this through the API).

    The report is part of what approvals cover: attaching one after approval voids them,
    and the checks that read evidence run again.
    """
    permissions.can_attach_evidence(actor, change).require()
    target = _resolve_version(change.tenant, version, field="version")
    # Evidence belongs to the version: the other open changes proposing it are rebound too.
    # Lock every change this writes at once, by primary key, so two attaches never cross.
    locked, _ = _lock_changes_and_artifacts({change.pk, *_open_changes_proposing(target)}, set())
    change = locked[change.pk]
    if change.status not in EDITABLE_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; evidence is closed.",
            field="status",
        )
    if not change.items.filter(proposed=target).exists():
        raise DomainError(f"{target.path} is not proposed in {change.reference}.", field="version")
    if not isinstance(metrics, dict) or not metrics:
        raise DomainError("Report at least one metric.", field="metrics")
    for name, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DomainError(f"Metric '{name}' must be a number.", field="metrics")
        if not math.isfinite(value):
            raise DomainError(f"Metric '{name}' must be a finite number.", field="metrics")
    for field, value in (("bias", bias), ("safety", safety)):
        if value is not None and not isinstance(value, dict):
            raise DomainError(f"'{field}' must be an object.", field=field)
    if not all(isinstance(t, str) for t in test_run_ids):
        raise DomainError("Test run ids must be strings.", field="test_run_ids")
    seed = _text(seed, "seed", required=False, limit=100)
    rng = _text(rng, "rng", required=False, limit=200)
    notes = _text(notes, "notes", required=False, limit=10000)
    for field, value in (
        ("metrics", metrics),
        ("bias", bias),
        ("safety", safety),
        ("seed", seed),
        ("rng", rng),
        ("test_run_ids", list(test_run_ids)),
        ("notes", notes),
    ):
        _storable_json(value, field)
    body = {
        "version": target.pinned,
        "metrics": metrics,
        "bias": bias or {},
        "safety": safety or {},
        "seed": seed,
        "rng": rng,
        "test_run_ids": list(test_run_ids),
        "notes": notes,
    }
    digest = hashlib.sha256(canonical(body)).hexdigest()
    report = EvaluationReport.objects.create(
        version=target,
        change=change,
        metrics=metrics,
        bias=bias or {},
        safety=safety or {},
        seed=seed,
        rng=rng,
        test_run_ids=list(test_run_ids),
        notes=notes,
        sha256=digest,
        submitted_by=actor,
    )
    before = change.binding_sha256
    change.binding_sha256 = selectors.binding_hash(change)
    change.save(update_fields=["binding_sha256"])
    _record(
        EventKind.EVIDENCE_ATTACHED,
        change,
        actor,
        version=target.pinned,
        report_sha256=digest,
        metrics=metrics,
        test_run_ids=list(test_run_ids),
    )
    _rebind(change, actor, before, "new evidence was attached")
    # Other open changes proposing the version were reviewed against the old reports, so
    # their approvals are voided and their checks re-run too. (Locked above; one that
    # started proposing it since is locked now, after the others: that is rare.)
    late = set(_open_changes_proposing(target)) - set(locked)
    if late:
        locked.update(_lock_changes_and_artifacts(late, set())[0])
    others = [
        other
        for pk, other in sorted(locked.items())
        if pk != change.pk and other.status in EDITABLE_STATES
    ]
    for other in others:
        before_other = other.binding_sha256
        other.binding_sha256 = selectors.binding_hash(other)
        other.save(update_fields=["binding_sha256"])
        _rebind(other, actor, before_other, f"new evidence for {target.path} was attached")
    return report


def _rebind(change: ChangeRequest, actor: User | None, before: str, reason: str) -> None:
    """After what approvals cover changed: void them, reopen review, re-run evidence checks."""
    if before != change.binding_sha256:
        voided = _void_approvals(change, actor, reason)
        if voided and change.status == ChangeStatus.APPROVED:
            _transition(change, ChangeStatus.IN_REVIEW)
            change.decided_at = None
            change.save(update_fields=["status", "decided_at"])
    if change.status in OPEN_STATES:
        required = check_catalog.required_checks(change)
        _start_checks(change, [k for k in check_catalog.EVIDENCE_CHECKS if k in required])
        _notify_requirements(change)


# --- promotion and rollback ------------------------------------------------------------


def _lock_changes_and_artifacts(
    changes: set[Any], artifacts: set[Any]
) -> tuple[dict[Any, ChangeRequest], dict[Any, Artifact]]:
    """Lock change rows, then artifact rows, each in primary-key order, before any event.

    Every promotion, rollback and deactivation takes its locks in this one order, so two
    of them touching the same changes or artifacts queue up instead of deadlocking.
    """
    locked_changes = {
        c.pk: c
        for c in ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("tenant", "author", "policy", "golden_corpus")
        .filter(pk__in=changes)
        .order_by("pk")
    }
    locked_artifacts = {
        a.pk: a
        for a in Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "active_version__artifact__artifact_class")
        .filter(pk__in=artifacts)
        .order_by("pk")
    }
    return locked_changes, locked_artifacts


def activation_lock(
    *, artifact_ids: set[Any], change: ChangeRequest | None = None
) -> dict[Any, Artifact]:
    """Take the locks a default move needs, in the one order: the change and every open change
    on these artifacts, then the artifacts, each by primary key. Returns the locked artifacts.

    For callers above reviews (rollouts) that lock their own rows first and may move a
    default later in the same transaction (``versions_activate`` then re-takes these locks,
    which this transaction already holds), so they never take a change's lock after an
    artifact's.
    """
    others = _open_changes_on(artifact_ids, exclude={change.pk} if change else set())
    _, artifacts = _lock_changes_and_artifacts(
        ({change.pk} if change else set()) | others, artifact_ids
    )
    return artifacts


def _open_changes_on(artifact_ids: set[Any], *, exclude: set[Any]) -> set[Any]:
    """Changes still being worked on that propose a version of one of these artifacts."""
    return set(
        ChangeItem.objects.filter(artifact_id__in=artifact_ids, change__status__in=EDITABLE_STATES)
        .exclude(change_id__in=exclude)
        .values_list("change_id", flat=True)
    )


def _follow_active(
    others: Sequence[ChangeRequest], moved: dict[Any, Version | None], actor: User | None, why: str
) -> None:
    """Open changes on artifacts whose active version moved now name the new one as current.

    What they replace is part of what their approvals cover, so those are voided and the
    review reopens (as when evidence changes). Every rebound change, a draft too, records
    ``change_request.rebound`` (old and new current version, and why) in its own timeline.
    """
    for other in others:
        if other.status not in EDITABLE_STATES:
            continue  # decided meanwhile
        rebound = []
        for artifact_id, active in moved.items():
            stale = list(
                ChangeItem.objects.filter(change=other, artifact_id=artifact_id)
                .exclude(current=active)
                .select_related(
                    "artifact__artifact_class",
                    "artifact__tenant",
                    "current__artifact__artifact_class",
                    "current__artifact__tenant",
                )
            )
            if not stale:
                continue
            ChangeItem.objects.filter(pk__in=[i.pk for i in stale]).update(current=active)
            rebound += [
                {
                    "artifact": item.artifact.path,
                    "from": _version_ref(item.current),
                    "to": _version_ref(active),
                }
                for item in stale
            ]
        if not rebound:
            continue
        _record(EventKind.CHANGE_REQUEST_REBOUND, other, actor, reason=why, items=rebound)
        before = other.binding_sha256
        other.binding_sha256 = selectors.binding_hash(other)
        other.save(update_fields=["binding_sha256"])
        _rebind(other, actor, before, why)


def _active_conflicts(items: Sequence[ChangeItem], artifacts: dict[Any, Artifact]) -> list[str]:
    return [
        f"{item.proposed.path} is already the active version"
        for item in items
        if artifacts[item.artifact_id].active_version_id == item.proposed_id
    ]


def _activate(
    moves: Sequence[tuple[Artifact, Version]],
    *,
    change: ChangeRequest | None,
    kind: str,
    reason: str,
    actor: User | None,
    now: Any,
) -> tuple[list[tuple[Version, Version | None]], dict[Any, Version | None]]:
    """Make each version the active one of its (locked) artifact: the column, an
    ``Activation`` row, and the stages (the new one active, the one it replaces approved)."""
    activated: list[tuple[Version, Version | None]] = []
    moved: dict[Any, Version | None] = {}
    for artifact, version in moves:
        previous = artifact.active_version
        Artifact.objects.filter(pk=artifact.pk).update(active_version=version)
        artifact.active_version = version
        moved[artifact.pk] = version
        Activation.objects.create(
            artifact=artifact,
            version=version,
            previous=previous,
            kind=kind,
            change=change,
            reason=reason,
            actor=actor,
            created_at=now,
        )
        activated.append((version, previous))
    for version, previous in activated:
        stage_set(version=version, stage=Stage.ACTIVE, actor=actor, change=change)
        if previous is not None:
            stage_set(version=previous, stage=Stage.APPROVED, actor=actor, change=change)
    return activated, moved


@transaction.atomic
def versions_activate(
    *,
    versions: Sequence[Version],
    change: ChangeRequest | None,
    actor: User | None,
    reason: str,
    kind: str = ActivationKind.PROMOTION,
) -> list[tuple[Version, Version | None]]:
    """Make these versions the defaults (active versions) of their artifacts, now.

    The one way a default moves outside ``change_promote``: a rollout's success (kind
    promotion, with the change it rolls out) and a rollout's rollback (kind rollback).
    Locks open changes on the artifacts, then the artifacts, in primary-key order (a
    caller holding its own rows locked first keeps that order); writes the column, an
    ``Activation`` row per artifact and the stages; open changes on those artifacts are
    rebound to the new current version. A version that is already active is skipped.
    Returns (version, previous) for each artifact that moved. Records no event of its
    own: the caller records what it did (``rollout.succeeded``, ``pointer.moved``).
    """
    artifact_ids = {v.artifact_id for v in versions}
    if len(artifact_ids) != len(versions):
        raise DomainError("Name one version per artifact.", field="versions")
    others = _open_changes_on(artifact_ids, exclude={change.pk} if change else set())
    changes, artifacts = _lock_changes_and_artifacts(
        ({change.pk} if change else set()) | others, artifact_ids
    )
    moves = [
        (artifacts[v.artifact_id], v)
        for v in sorted(versions, key=lambda v: str(v.artifact_id))
        if artifacts[v.artifact_id].active_version_id != v.pk
    ]
    activated, moved = _activate(
        moves, change=change, kind=kind, reason=reason, actor=actor, now=timezone.now()
    )
    where = change.reference if change is not None else "a rollout"
    _follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{where} moved the default: the active versions it replaces changed",
    )
    return activated


@transaction.atomic
def change_promote(*, change: ChangeRequest, actor: User | None) -> ChangeRequest:
    """Make an approved change's versions the active ones (an administrator's act).

    Re-checks everything at the moment of promotion, with one "now": every slot still
    filled by someone who still holds the role, every required check of this revision
    passed, and pack verification of every version and its dependencies. A version that
    is already active is refused (409): promoting it would change nothing. Other open
    changes on the same artifacts then name the new active version as their current one.
    """
    artifact_ids = set(change.items.values_list("artifact_id", flat=True))
    others = _open_changes_on(artifact_ids, exclude={change.pk})
    changes, artifacts = _lock_changes_and_artifacts({change.pk, *others}, artifact_ids)
    change = changes[change.pk]
    permissions.can_promote(actor, change).require()
    if change.status == ChangeStatus.PROMOTED:
        raise Conflict(f"{change.reference} is already promoted.", field="status")
    items = selectors.items_of(change)
    if {i.artifact_id for i in items} != artifact_ids:
        raise Conflict(f"{change.reference} was revised meanwhile; look again.", field="status")
    already = _active_conflicts(items, artifacts)
    if already:
        raise Conflict(
            f"{change.reference} cannot be promoted: {'; '.join(already)}. Revise the change "
            "to propose another version, or withdraw it.",
            field="proposed",
        )
    _transition(change, ChangeStatus.PROMOTED)  # refuses anything but approved
    now = timezone.now()  # one moment for every waiver and check in this decision
    verdicts = selectors.check_verdicts(change, now)
    blockers = selectors.promotion_blockers(change, now)
    if blockers:
        raise Conflict(
            f"{change.reference} cannot be promoted: {'; '.join(blockers)}", field="status"
        )
    checked, failure = verify_versions([i.proposed for i in items])
    if failure is not None:
        raise Conflict(
            f"Pack verification failed for {failure.version.path}: {failure.reason}", field="status"
        )
    # Artifacts bound to an application slot: the promotion approves their versions for
    # production, and a rollout moves their default (rollouts answers through the hook).
    bound = hooks.slot_bound(artifact_ids)
    change.promoted_at = now
    change.promoted_by = actor
    if change.emergency:
        days = selectors.effective_policy(change.tenant)[1]["postmortem_days"]
        change.postmortem_due_at = now + timedelta(days=days)
    change.save(update_fields=["status", "promoted_at", "promoted_by", "postmortem_due_at"])
    activated, moved = _activate(
        [(artifacts[i.artifact_id], i.proposed) for i in items if i.artifact_id not in bound],
        change=change,
        kind=ActivationKind.PROMOTION,
        reason=change.title,
        actor=actor,
        now=now,
    )
    _record(
        EventKind.CHANGE_REQUEST_PROMOTED,
        change,
        actor,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        activated=[
            {"active": _version_ref(proposed), "previous": _version_ref(previous)}
            for proposed, previous in activated
        ],
        awaiting_rollout=sorted(i.proposed.path for i in items if i.artifact_id in bound),
        waivers=selectors.waivers_used(verdicts),
        pack_verification=f"OK: {checked} versions verified",
        postmortem_due_at=change.postmortem_due_at.isoformat()
        if change.postmortem_due_at
        else None,
    )
    _follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{change.reference} was promoted: the active versions it replaces changed",
    )
    notification_send(
        users=[change.author],
        tenant=change.tenant,
        title=f"{_label(change)} was promoted",
        body=change.title,
        url=change.get_absolute_url(),
        dedupe_key=f"promoted:{change.pk}",
    )
    return change


def _promotion_of(artifact: Artifact) -> Activation | None:
    """The promotion that made the artifact's active version active: its rollback point and change.

    (After a rollback, rolling back again goes further back; it never undoes the rollback.)
    """
    if artifact.active_version_id is None:
        return None
    return (
        Activation.objects.filter(
            artifact=artifact, version_id=artifact.active_version_id, kind=ActivationKind.PROMOTION
        )
        .select_related(
            "previous__artifact__artifact_class", "previous__artifact__tenant", "change"
        )
        .order_by("-created_at")
        .first()
    )


def _restorable(to: Version, override_reason: str) -> Deprecation | None:
    """Refuse a retired or removed version; a deprecated one only with an override reason."""
    if Retirement.objects.filter(version=to).exists():
        raise Conflict(
            f"{to.path} is retired or removed; it cannot be made active again.", field="target"
        )
    deprecation = (
        Deprecation.objects.filter(version=to)
        .select_related("replacement__artifact__artifact_class", "replacement__artifact__tenant")
        .first()
    )
    if deprecation is None:
        return None
    if deprecation.removed_at is not None:
        raise Conflict(
            f"{to.path} is retired or removed; it cannot be made active again.", field="target"
        )
    if not override_reason:
        raise Conflict(
            f"{to.path} is deprecated (replaced by {deprecation.replacement.version}: "
            f"{deprecation.reason}). Restoring it needs an administrator's override reason.",
            field="override_reason",
        )
    return deprecation


#: The code of rollback's refusal of a first promotion (the API names the safety switch).
NOTHING_TO_ROLL_BACK_TO = "nothing_to_roll_back_to"


def _mark_rolled_back(change: ChangeRequest | None, actor: User | None, now: Any) -> None:
    if change is None or change.status != ChangeStatus.PROMOTED:
        return
    _transition(change, ChangeStatus.ROLLED_BACK)
    change.rolled_back_at = now
    change.rolled_back_by = actor
    change.save(update_fields=["status", "rolled_back_at", "rolled_back_by"])


@transaction.atomic
def rollback(
    *,
    artifact: Artifact,
    actor: User | None,
    reason: str,
    target: Version | str | None = None,
    override_reason: str = "",
) -> Activation:
    """Undo the promotion that made ``artifact``'s active version active (or go to ``target``).

    The change that promoted it is rolled back as a whole: each of its versions that is
    still active goes back to the version it replaced (``artifact`` to ``target`` if
    given, any version that was active before), in one transaction with one
    ``rollout.rolled_back`` event, and the change reads "rolled back". No approvals:
    going back to a version that already passed them is allowed, except to a deprecated
    one, which needs an administrator's ``override_reason`` (recorded). Pack
    verification runs again. A first promotion has nothing to go back to: switch the
    artifact off with ``artifact_deactivate`` instead.
    """
    reason = _text(reason, "reason", required=True, limit=2000)
    override_reason = _text(override_reason, "override_reason", required=False, limit=2000)
    # Read what the rollback touches, then lock it all (changes, then artifacts) and re-read.
    seen = Artifact.objects.only("active_version").get(pk=artifact.pk)
    promoted = _promotion_of(seen)
    undone = promoted.change if promoted else None
    scope = {artifact.pk}
    if undone is not None:
        scope |= set(undone.items.values_list("artifact_id", flat=True))
    others = _open_changes_on(scope, exclude={undone.pk} if undone else set())
    changes, artifacts = _lock_changes_and_artifacts(
        {undone.pk, *others} if undone else others, scope
    )
    artifact = artifacts[artifact.pk]
    permissions.can_roll_back(actor, artifact).require()
    current = artifact.active_version
    if current is None and target is None:
        raise Conflict(
            f"{artifact.path} has no active version to roll back from. Name the version to "
            "restore.",
            field="artifact",
        )
    if (current.pk if current else None) != seen.active_version_id:
        raise Conflict(
            f"{artifact.path}'s active version changed meanwhile; look again.", field="artifact"
        )
    change = changes[undone.pk] if undone is not None else None
    # Each artifact the change made active and that still has its version: where it goes.
    plan: list[tuple[Artifact, Version | None, Version | None]] = []
    left = []
    if change is not None:
        rows = Activation.objects.filter(
            change=change, kind=ActivationKind.PROMOTION
        ).select_related(
            "version", "previous__artifact__artifact_class", "previous__artifact__tenant"
        )
        for row in sorted(rows, key=lambda r: (r.artifact_id != artifact.pk, str(r.artifact_id))):
            held = artifacts.get(row.artifact_id)
            if held is None or row.artifact_id in {a.pk for a, _, _ in plan}:
                continue
            if held.active_version_id != row.version_id:
                left.append({"artifact": held.path, "active": _version_ref(held.active_version)})
                continue
            plan.append((held, held.active_version, row.previous))
    else:
        plan.append((artifact, current, None))
    if target is not None:
        to = _resolve_version(artifact.tenant, target, field="target")
        if to.artifact_id != artifact.pk:
            raise DomainError(f"{to.path} is not a version of {artifact.path}.", field="target")
        if current is not None and to.pk == current.pk:
            raise Conflict(f"{to.path} is already the active version.", field="target")
        if not Activation.objects.filter(artifact=artifact, version=to).exists():
            raise Conflict(
                f"{to.path} was never active; only previously promoted versions can be restored "
                "without approvals.",
                field="target",
            )
        assert plan[0][0].pk == artifact.pk  # the named artifact comes first
        plan[0] = (artifact, current, to)
    steps: list[tuple[Artifact, Version | None, Version]] = []
    for held, before, back_to in plan:
        if back_to is None:
            raise Conflict(
                f"{held.path} has no earlier promoted version to go back to; to take it out of "
                "service, deactivate it (the safety switch).",
                field="target",
                code=NOTHING_TO_ROLL_BACK_TO,
            )
        steps.append((held, before, back_to))
    overrides = {v.pk: _restorable(v, override_reason) for _, _, v in steps}
    checked, failure = verify_versions([v for _, _, v in steps])
    if failure is not None:
        raise Conflict(
            f"Pack verification failed for {failure.version.path}: {failure.reason}", field="target"
        )
    now = timezone.now()
    activations = []
    moved: dict[Any, Version | None] = {}
    for held, before, back_to in steps:
        Artifact.objects.filter(pk=held.pk).update(active_version=back_to)
        moved[held.pk] = back_to
        activations.append(
            Activation.objects.create(
                artifact=held,
                version=back_to,
                previous=before,
                kind=ActivationKind.ROLLBACK,
                change=change,
                reason=reason,
                override_reason=override_reason if overrides[back_to.pk] else "",
                actor=actor,
                created_at=now,
            )
        )
    _mark_rolled_back(change, actor, now)
    hooks.default_moved([(held, b, t) for held, b, t in steps], actor, reason)
    for _, before, back_to in steps:
        stage_set(version=back_to, stage=Stage.ACTIVE, actor=actor, change=change)
        if before is not None:
            stage_set(version=before, stage=Stage.APPROVED, actor=actor, change=change)
    restored = [v.path for _, _, v in steps if overrides[v.pk]]
    events_record(
        [
            EventSpec(
                EventKind.ROLLOUT_ROLLED_BACK,
                actor,
                tenant=artifact.tenant,
                subject=_subject(change) if change is not None else artifact,
                payload={
                    "artifact": artifact.path,
                    "from": _version_ref(current),
                    "to": _version_ref(steps[0][2]),
                    "change": change.reference if change else None,
                    "reason": reason,
                    "items": [
                        {"artifact": held.path, "from": _version_ref(b), "to": _version_ref(t)}
                        for held, b, t in steps
                    ],
                    "left": left,
                    "deprecated_restored": restored,
                    "override_reason": override_reason if restored else None,
                    "pack_verification": f"OK: {checked} versions verified",
                },
            )
        ]
    )
    _follow_active(
        [changes[pk] for pk in sorted(others)],
        moved,
        actor,
        f"{artifact.path} was rolled back: the active versions it replaces changed",
    )
    return activations[0]


@transaction.atomic
def artifact_deactivate(*, artifact: Artifact, actor: User | None, reason: str) -> Activation:
    """The safety switch: leave an artifact with no active version (resolution answers 404).

    For a version that was promoted first (nothing to roll back to), or to halt it while a
    fix is prepared. Logged as ``artifact.deactivated``; when it switches off the last
    version a change made active, that change reads "rolled back". A later promotion (or
    a rollback to a version that was active before) turns it back on.
    """
    reason = _text(reason, "reason", required=True, limit=2000)
    seen = Artifact.objects.only("active_version").get(pk=artifact.pk)
    promoted = _promotion_of(seen)
    undone = promoted.change if promoted else None
    others = _open_changes_on({artifact.pk}, exclude={undone.pk} if undone else set())
    changes, artifacts = _lock_changes_and_artifacts(
        {undone.pk, *others} if undone else others, {artifact.pk}
    )
    artifact = artifacts[artifact.pk]
    permissions.can_deactivate(actor, artifact).require()
    current = artifact.active_version
    if current is None:
        raise Conflict(f"{artifact.path} has no active version.", field="artifact")
    if current.pk != seen.active_version_id:
        raise Conflict(
            f"{artifact.path}'s active version changed meanwhile; look again.", field="artifact"
        )
    change = changes[undone.pk] if undone is not None else None
    now = timezone.now()
    Artifact.objects.filter(pk=artifact.pk).update(active_version=None)
    activation = Activation.objects.create(
        artifact=artifact,
        version=None,
        previous=current,
        kind=ActivationKind.DEACTIVATION,
        change=change,
        reason=reason,
        actor=actor,
        created_at=now,
    )
    if change is not None:
        still_live = Artifact.objects.filter(
            pk__in=change.items.values("artifact_id"),
            active_version_id__in=change.items.values("proposed_id"),
        ).exists()
        if not still_live:
            _mark_rolled_back(change, actor, now)
    stage_set(version=current, stage=Stage.APPROVED, actor=actor, change=change)
    hooks.default_moved([(artifact, current, None)], actor, reason)
    event_record(
        kind=EventKind.ARTIFACT_DEACTIVATED,
        actor=actor,
        tenant=artifact.tenant,
        subject=_subject(change) if change is not None else artifact,
        payload={
            "artifact": artifact.path,
            "from": _version_ref(current),
            "change": change.reference if change else None,
            "reason": reason,
        },
    )
    _follow_active(
        [changes[pk] for pk in sorted(others)],
        {artifact.pk: None},
        actor,
        f"{artifact.path} was deactivated: it has no active version now",
    )
    return activation


@transaction.atomic
def change_switch_off(
    *, change: ChangeRequest, actor: User | None, reason: str
) -> list[Activation]:
    """The safety switch for a whole promoted change, from its page.

    For a first promotion, which rollback cannot undo (no earlier promoted version):
    every artifact still serving a version this change made active is left with no
    active version by ``artifact_deactivate`` (one ``artifact.deactivated`` event each),
    all in one transaction, and the change then reads "rolled back". Administrators of
    the tenant only (``can_deactivate``, checked for every artifact before any write).
    """
    reason = _text(reason, "reason", required=True, limit=2000)
    artifact_ids = set(change.items.values_list("artifact_id", flat=True))
    others = _open_changes_on(artifact_ids, exclude={change.pk})
    # The one lock order (changes, then artifacts); each artifact_deactivate below re-takes
    # locks this transaction already holds.
    changes, artifacts = _lock_changes_and_artifacts({change.pk, *others}, artifact_ids)
    change = changes[change.pk]
    for artifact in artifacts.values():
        permissions.can_deactivate(actor, artifact).require()
    if change.status != ChangeStatus.PROMOTED:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; only a promoted "
            "change can be switched off.",
            field="status",
        )
    live = sorted(
        {
            item.artifact_id
            for item in change.items.all()
            if artifacts[item.artifact_id].active_version_id == item.proposed_id
        },
        key=str,
    )
    if not live:
        raise Conflict(
            f"None of the versions {change.reference} made active is active now.", field="status"
        )
    return [artifact_deactivate(artifact=artifacts[pk], actor=actor, reason=reason) for pk in live]


# --- policy and gates ------------------------------------------------------------------


@transaction.atomic
def approval_policy_update(
    *, tenant: Tenant | None, rules: Any, reason: str, actor: User | None
) -> ApprovalPolicy:
    """Save a new version of a tenant's (or the platform default) approval policy."""
    permissions.can_change_policy(actor, tenant).require()
    reason = _text(reason, "reason", required=True, limit=500)
    try:
        document = approval_policy.validate(rules)
    except approval_policy.PolicyError as exc:
        raise DomainError(str(exc), field="rules") from exc
    last = (
        ApprovalPolicy.objects.select_for_update().filter(tenant=tenant).order_by("-number").first()
    )
    row = ApprovalPolicy.objects.create(
        tenant=tenant,
        number=(last.number if last else 0) + 1,
        rules=document,
        reason=reason,
        created_by=actor,
    )
    event_record(
        kind=EventKind.APPROVAL_POLICY_UPDATED,
        actor=actor,
        tenant=tenant,
        subject=row,
        payload={
            "scope": tenant.slug if tenant else "default",
            "number": row.number,
            "reason": reason,
            "rules_sha256": hashlib.sha256(canonical(document)).hexdigest(),
            "rules": document,
        },
    )
    return row


@transaction.atomic
def change_gate_set(
    *, tenant: Tenant, artifact_class: ArtifactClass, gates: Any, actor: User | None
) -> ChangeGate:
    """Set the metric thresholds an artifact class's changes must meet in a tenant."""
    from reviews import gates as gate_rules

    permissions.can_set_gates(actor, tenant).require()
    if not isinstance(gates, list):
        raise DomainError("Gates must be a list.", field="gates")
    for i, gate in enumerate(gates):
        problems = gate_rules.validate_gate(gate)
        if problems:
            raise DomainError(f"gates[{i}]: {'; '.join(problems)}", field="gates")
    row, _ = ChangeGate.objects.select_for_update().get_or_create(
        tenant=tenant, artifact_class=artifact_class
    )
    ChangeGate.objects.filter(pk=row.pk).update(
        gates=gates, updated_at=timezone.now(), updated_by=actor
    )
    row.refresh_from_db()
    event_record(
        kind=EventKind.CHANGE_GATE_UPDATED,
        actor=actor,
        tenant=tenant,
        subject=("reviews.changegate", str(row.pk), str(row)),
        payload={"class": artifact_class.slug, "gates": gates},
    )
    return row


# --- emergency follow-up -----------------------------------------------------------------


@transaction.atomic
def postmortem_record(
    *, change: ChangeRequest, actor: User | None, summary: str, url: str = ""
) -> ChangeRequest:
    """Close an emergency change's follow-up with the post-mortem's summary (and a link to it).

    The author, an owner of a changed artifact, an administrator or a security officer
    may record it; late ones are accepted and marked late in the event.
    """
    from django.core.exceptions import ValidationError
    from django.core.validators import URLValidator

    change = _lock(change)
    if not change.emergency or change.postmortem_due_at is None:
        raise Conflict(
            f"{change.reference} is not a promoted emergency change; it has no post-mortem.",
            field="status",
        )
    if change.postmortem_done_at is not None:
        raise Conflict(f"{change.reference}'s post-mortem is already recorded.", field="status")
    permissions.can_record_postmortem(actor, change).require()
    summary = _text(summary, "summary", required=True, limit=20000)
    url = (url or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError as exc:
            raise DomainError("Give an http(s) link to the post-mortem.", field="url") from exc
        if len(url) > 500:
            raise DomainError("At most 500 characters.", field="url")
    now = timezone.now()
    change.postmortem_done_at = now
    change.postmortem_by = actor
    change.postmortem_summary = summary
    change.postmortem_url = url
    change.save(
        update_fields=[
            "postmortem_done_at",
            "postmortem_by",
            "postmortem_summary",
            "postmortem_url",
        ]
    )
    _record(
        EventKind.POSTMORTEM_RECORDED,
        change,
        actor,
        summary=summary,
        url=url or None,
        due_at=change.postmortem_due_at.isoformat(),
        late=now > change.postmortem_due_at,
    )
    return change


def postmortem_reminders_send(*, now: Any = None) -> int:
    """Notify the owners and author of each emergency change whose post-mortem is overdue, once each."""
    now = now or timezone.now()
    overdue = ChangeRequest.objects.filter(
        emergency=True, postmortem_due_at__lt=now, postmortem_done_at__isnull=True
    ).select_related("tenant", "author")
    created = 0
    for change in overdue:
        owners = list(User.objects.filter(pk__in=selectors.owners_of(change)))
        with transaction.atomic():
            created += len(
                notification_send(
                    users=[*owners, change.author],
                    tenant=change.tenant,
                    title=f"The post-mortem of emergency change {change.reference} is overdue",
                    body=(
                        f"It was due on {change.postmortem_due_at:%Y-%m-%d} "
                        f"(promoted {change.promoted_at:%Y-%m-%d}). Record it on the change page."
                    ),
                    url=change.get_absolute_url(),
                    dedupe_key=f"postmortem:{change.pk}:overdue",
                )
            )
    return created
