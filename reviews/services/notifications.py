"""What reviews tells people, phrased as the action to take, and resolving it when its reason goes away.

Each kind of notification about a change has a *subject* (its reason): a person has at most
one open notification per subject, and the service that ends the reason resolves it
(:func:`governance.kernel.notifications.notification_resolve`) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from accounts.choices import Role
from accounts.models import Tenant, User
from governance.kernel.models import Notification
from governance.kernel.notifications import notification_resolve, notification_send
from reviews import selectors
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, Requirement
from reviews.models import ChangeRequest, CheckRun


def review_subject(change: ChangeRequest) -> str:
    """Asking to review: open while the person can fill a missing slot of a change in review."""
    return f"change:{change.pk}:review"


def promote_subject(change: ChangeRequest) -> str:
    """Asking to promote: open while the change is approved."""
    return f"change:{change.pk}:promote"


def rejected_subject(change: ChangeRequest) -> str:
    """Asking to revise or withdraw: open while the change stays rejected."""
    return f"change:{change.pk}:rejected"


def check_subject(change: ChangeRequest, kind: str) -> str:
    """Asking to fix what a check found: open until the check passes on the current revision."""
    return f"change:{change.pk}:check:{kind}"


def postmortem_subject(change: ChangeRequest) -> str:
    """Asking to record the post-mortem: open until it is recorded."""
    return f"change:{change.pk}:postmortem"


def decision_subjects(change: ChangeRequest) -> list[str]:
    """Every subject about the change's review (not its post-mortem, which outlives it)."""
    return [
        review_subject(change),
        promote_subject(change),
        rejected_subject(change),
        *(check_subject(change, kind) for kind in CheckKind.values),
    ]


def _prefix(change: ChangeRequest) -> str:
    """Emergency changes say so first, everywhere."""
    return "[Emergency] " if change.emergency else ""


def _roles_text(requirements: list[str]) -> str:
    return " or ".join(Requirement(r).label.lower() for r in requirements)


def review_requests_sync(change: ChangeRequest, why: str = "") -> None:
    """Ask each person who can fill a missing slot to review; resolve it for everyone else.

    One open "Review CR-12 as ..." per person and change: the same revision refreshes the
    wording (the roles still missing), a new revision replaces it, and a person who decided,
    whose slots were filled by others, or whose change left review has theirs resolved.
    """
    subject = review_subject(change)
    if change.status != ChangeStatus.IN_REVIEW:
        notification_resolve(
            subject=subject,
            reason=why or f"{change.reference} is {change.get_status_display().lower()}.",
        )
        return
    status = selectors.approval_status(change)
    missing = [slot.requirement for slot in status.slots if slot.approval is None]
    decided = set(
        change.approvals.filter(voided_at__isnull=True, revision=change.revision).values_list(
            "approver_id", flat=True
        )
    )
    roles_of: dict[Any, list[str]] = defaultdict(list)
    people: dict[Any, User] = {}
    for requirement in missing:
        for person in selectors.people_for_requirements(change, [requirement]):
            if person.pk == change.author_id or person.pk in decided:
                continue
            people[person.pk] = person
            roles_of[person.pk].append(requirement)
    filled = [
        f"{Requirement(s.requirement).label} by {s.approval.approver.username}"
        for s in status.slots
        if s.approval is not None
    ]
    notification_resolve(
        subject=subject,
        exclude_users=list(people),
        reason=why or (f"Filled: {', '.join(filled)}." if filled else ""),
    )
    groups: dict[tuple[str, ...], list[User]] = defaultdict(list)
    for pk, person in people.items():
        groups[tuple(roles_of[pk])].append(person)
    for roles, users in groups.items():
        notification_send(
            users=users,
            tenant=change.tenant,
            title=(
                f"{_prefix(change)}Review {change.reference} as {_roles_text(list(roles))}: "
                f"{change.title}"
            )[:200],
            body=(
                f"Revision {change.revision} waits for: "
                f"{', '.join(Requirement(m).label for m in missing)}. "
                "Open the change to approve or reject it."
            ),
            url=change.get_absolute_url(),
            dedupe_key=f"review:{change.pk}:r{change.revision}",
            subject=subject,
        )


def role_revoked_resolve(*, user: User, role: str, tenant: Tenant | None) -> None:
    """A revoked role: the person's open "Review ... as" asks are worked out again, so those
    they can no longer fill are resolved (saying why) and the rest name the roles left.
    Registered with ``accounts.hooks`` (accounts cannot import reviews)."""
    asks = Notification.objects.filter(
        user=user, resolved_at__isnull=True, subject__startswith="change:"
    ).filter(subject__endswith=":review")
    if tenant is not None:
        asks = asks.filter(tenant=tenant)
    ids = {subject.split(":")[1] for subject in asks.values_list("subject", flat=True)}
    if not ids:
        return
    scope = f"in {tenant.slug}" if tenant is not None else "platform-wide"
    why = f"{user.username}'s {Role(role).label.lower()} role {scope} was revoked."
    for change in ChangeRequest.objects.filter(pk__in=ids).select_related("tenant"):
        review_requests_sync(change, why=why)


def approved_notify(change: ChangeRequest, admins: list[User]) -> None:
    """Administrators are asked to promote; the author learns who can."""
    url = change.get_absolute_url()
    key = f"approved:{change.pk}:r{change.revision}"
    notification_send(
        users=admins,
        tenant=change.tenant,
        title=f"{_prefix(change)}Promote {change.reference}: every approval is in",
        body=change.title,
        url=url,
        dedupe_key=key,
        subject=promote_subject(change),
    )
    if change.author not in admins:
        notification_send(
            users=[change.author],
            tenant=change.tenant,
            title=(
                f"{_prefix(change)}{change.reference} is approved: "
                "an administrator can promote it now"
            ),
            body=change.title,
            url=url,
            dedupe_key=key,
            subject=promote_subject(change),
        )


def rejected_notify(
    change: ChangeRequest, actor: User, requirement: str, comment: str, key: str
) -> None:
    """The author is asked to revise or withdraw, with the reason."""
    notification_send(
        users=[change.author],
        tenant=change.tenant,
        title=(
            f"{_prefix(change)}Revise or withdraw {change.reference}: {actor.username} "
            f"rejected it as {Requirement(requirement).label.lower()}"
        )[:200],
        body=comment,
        url=change.get_absolute_url(),
        dedupe_key=key,
        subject=rejected_subject(change),
    )


#: What the author does when a check does not pass.
CHECK_ACTIONS: dict[str, str] = {
    CheckKind.RULES_LINT: "Fix the ruleset of",
    CheckKind.RULES_SIMULATION: "Fix the ruleset of",
    CheckKind.MODEL_PINS: "Pin the models and prompt hashes of",
    CheckKind.OFFLINE_EVALUATION: "Attach evaluation evidence to",
    CheckKind.POLICY: "Fix the text proposed in",
    CheckKind.PACK_VERIFICATION: "Publish again the versions of",
    CheckKind.CHANGE_GATES: "Improve the evaluated metrics of",
}


def check_failed_notify(change: ChangeRequest, run: CheckRun) -> None:
    """The author is told what to do about a check that did not pass (a newer run replaces it)."""
    label = run.get_kind_display()
    if run.status == CheckStatus.ERROR:
        title = f"Re-run the {label} check of {change.reference}: it stopped with an error"
    else:
        action = CHECK_ACTIONS.get(run.kind, "Fix")
        title = f"{action} {change.reference}: the {label} check failed"
    notification_send(
        users=[change.author],
        tenant=change.tenant,
        title=f"{_prefix(change)}{title}"[:200],
        body=run.summary,
        url=change.get_absolute_url(),
        dedupe_key=f"check:{run.pk}",
        subject=check_subject(change, run.kind),
    )


def check_passed_resolve(change: ChangeRequest, run: CheckRun) -> None:
    notification_resolve(
        subject=check_subject(change, run.kind),
        reason=f"The {run.get_kind_display()} check passed (attempt {run.attempt}).",
    )


def change_closed_resolve(change: ChangeRequest, why: str) -> None:
    """The change left review (revised, withdrawn, promoted, rolled back): its asks are moot."""
    notification_resolve(subject=decision_subjects(change), reason=why)
