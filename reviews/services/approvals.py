"""Decisions on change requests: approve or reject in a slot; approval once every slot is filled."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.notifications import notification_resolve
from registry.choices import Stage
from reviews import permissions, selectors
from reviews.choices import OPEN_STATES, ChangeStatus, Decision, Requirement
from reviews.models import Approval, ChangeRequest
from reviews.services.common import (
    lock_change,
    record_event,
    review_stage_set,
    transition,
)
from reviews.services.notifications import (
    approved_notify,
    promote_subject,
    rejected_notify,
    review_requests_sync,
)
from reviews.services.passkeys import PasskeyAnswer, passkey_answer_check
from reviews.services.recertification import recertifications_complete


@transaction.atomic
def approval_decide(
    *,
    change: ChangeRequest,
    actor: User,
    decision: str,
    comment: str = "",
    requirement: str | None = None,
    passkey: PasskeyAnswer | None = None,
) -> Approval:
    """Approve or reject a change in one required slot the approver can fill.

    The author never approves their own change; a person fills one slot at most; an
    identical repeat returns the existing decision (no second row, no second event).
    ``passkey``: the approver's WebAuthn answer to :func:`sign_off_challenge`; required where
    the policy asks for passkey sign-off in the slot (``selectors.passkey_required``). The
    statement it signs, the assertion and the key are stored with the approval and logged.
    """
    if decision not in Decision.values:
        raise DomainError("Decide 'approve' or 'reject'.", field="decision")
    change = lock_change(change)
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
    slot = decision_slot(change, actor, decision, requirement)
    text = (comment or "").strip()
    if decision == Decision.REJECT and not text:
        raise DomainError("Say why you reject the change.", field="comment")
    if passkey is None and selectors.passkey_required(change, slot):
        raise Forbidden(
            f"Signing off as {Requirement(slot).label} needs your passkey: the policy asks for "
            "passkey sign-off in that role.",
            field="passkey",
            code="passkey_required",
        )
    if decision == Decision.APPROVE:
        _require_approvable(change)
    signature = None
    if passkey is not None:
        signature = passkey_answer_check(
            change=change,
            actor=actor,
            decision=decision,
            requirement=slot,
            comment=text,
            answer=passkey,
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
                passkey=signature.passkey if signature else None,
                passkey_statement=signature.statement if signature else "",
                passkey_assertion=signature.assertion.as_json() if signature else None,
                passkey_challenge=signature.challenge_sha256 if signature else "",
            )
    except IntegrityError as exc:  # a concurrent identical request won the race
        raise Conflict("You already decided on this revision.", field="decision") from exc
    kind = (
        EventKind.APPROVAL_GRANTED if decision == Decision.APPROVE else EventKind.APPROVAL_REJECTED
    )
    record_event(
        kind,
        change,
        actor,
        requirement=slot,
        revision=change.revision,
        binding_sha256=change.binding_sha256,
        comment=text,
        **({"passkey": signature.as_event()} if signature else {}),
    )
    if decision == Decision.REJECT:
        _reject(change, actor, approval)
    else:
        _settle(change, actor)
    return approval


def _require_approvable(change: ChangeRequest) -> None:
    """An approval needs every check passing (or waived) and a breaking change's plan."""
    failing = selectors.failed_checks_without_waiver(change, timezone.now())
    if failing:
        raise Conflict(
            f"{change.reference} cannot be approved while a check fails without an active "
            f"waiver: {'; '.join(failing)}. Fix it, re-run it, or ask an administrator "
            "for a waiver.",
            field="decision",
        )
    gaps = selectors.breaking_change_gaps(change)
    if gaps:
        raise Conflict(
            f"{change.reference} is a breaking change of an action-eligible artifact; it "
            f"cannot be approved without {'; '.join(gaps)}.",
            field="decision",
        )


def decision_slot(
    change: ChangeRequest, actor: User, decision: str, requirement: str | None
) -> str:
    """The slot a decision fills: the one named, else the first free one the actor can hold."""
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
        return requirement
    mine: list[str] = [r for r in change.requirements if r in holdable]  # not empty: can_decide
    free = [r for r in mine if r in open_slots]
    if decision == Decision.APPROVE and not free:
        raise Conflict(
            "Every slot you could fill is already filled by someone else.", field="requirement"
        )
    return (free or mine)[0]


def _reject(change: ChangeRequest, actor: User, approval: Approval) -> None:
    """A rejection closes the change's review; its author hears why."""
    transition(change, ChangeStatus.REJECTED)
    change.decided_at = timezone.now()
    change.save(update_fields=["status", "decided_at"])
    record_event(
        EventKind.CHANGE_REQUEST_REJECTED,
        change,
        actor,
        requirement=approval.requirement,
        comment=approval.comment,
    )
    why = f"{change.reference} was rejected by {actor.username}."
    review_requests_sync(change, why)
    notification_resolve(subject=promote_subject(change), reason=why)
    rejected_notify(
        change, actor, approval.requirement, approval.comment, key=f"rejected:{approval.pk}"
    )


def _settle(change: ChangeRequest, actor: User | None) -> None:
    """After a decision or a finished check: approve the change once every slot is filled."""
    status = selectors.approval_status(change)
    if change.status == ChangeStatus.IN_REVIEW and status.complete:
        transition(change, ChangeStatus.APPROVED)
        change.decided_at = timezone.now()
        change.save(update_fields=["status", "decided_at"])
        verdicts = selectors.check_verdicts(change, change.decided_at)
        record_event(
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
                review_stage_set(
                    version=item.proposed, stage=Stage.APPROVED, actor=actor, change=change
                )
        admins = selectors.people_for_requirements(change, [Requirement.ADMINISTRATOR])
        approved_notify(change, admins)
        recertifications_complete(change=change, actor=actor)  # a normal change's approval
    review_requests_sync(
        change,
        f"{change.reference} was approved." if change.status != ChangeStatus.IN_REVIEW else "",
    )
