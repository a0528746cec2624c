"""Who may do what to a change request: one predicate per action.

Each answers a :class:`~governance.kernel.permissions.Decision`; ``reviews.services`` refuses with
its reason (``.require()``), and the change page, the API and the templates ask the same
function to show or hide the action. ``user=None`` is the system. These decide *who*; whether
the change is in a state that allows the action stays a ``Conflict`` in the service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from accounts.choices import Role
from accounts.selectors import AnyUser, is_member, is_platform_admin
from governance.kernel.permissions import ALLOWED, Decision, deny, roles_of

if TYPE_CHECKING:
    from accounts.models import Tenant
    from registry.models import Artifact
    from reviews.models import ChangeRequest


def _admin(user: AnyUser | None, tenant: Tenant, roles: Iterable[str] | None) -> bool:
    return user is None or Role.ADMINISTRATOR in roles_of(user, tenant, roles)


def _member(user: AnyUser, tenant: Tenant) -> bool:
    return is_member(user, tenant) or is_platform_admin(user)


def can_open_change(user: AnyUser | None, tenant: Tenant) -> Decision:
    if user is None or _member(user, tenant):
        return ALLOWED
    return deny(f"Only members of '{tenant.slug}' can open changes there.")


def can_act_as_author(
    user: AnyUser | None,
    change: ChangeRequest,
    action: str = "revise",
    *,
    roles: Iterable[str] | None = None,
) -> Decision:
    """Revise, submit or withdraw: the author or an administrator of the change's tenant."""
    if user is None or user.pk == change.author_id or _admin(user, change.tenant, roles):
        return ALLOWED
    return deny(f"Only the author or an administrator can {action} this change.")


def can_comment(user: AnyUser | None, change: ChangeRequest) -> Decision:
    if user is None or _member(user, change.tenant):
        return ALLOWED
    return deny("Only members of the change's tenant can comment.")


def can_decide(user: AnyUser, change: ChangeRequest, requirement: str | None = None) -> Decision:
    """Approve or reject (sign off): never the author; only in a slot whose role you hold here."""
    from reviews import selectors
    from reviews.choices import Requirement

    if user.pk == change.author_id:
        return deny("The author of a change cannot approve or reject it.")
    holdable = selectors.requirements_held_by(change, user)
    if requirement is not None:
        if requirement in change.requirements and requirement not in holdable:
            return deny(f"You do not hold the {Requirement(requirement).label} role here.")
        return ALLOWED
    if not any(r in holdable for r in change.requirements):
        return deny(
            f"{change.reference} needs "
            f"{', '.join(Requirement(r).label for r in change.requirements)}; "
            "you hold none of these roles here."
        )
    return ALLOWED


def can_rerun_checks(user: AnyUser | None, change: ChangeRequest) -> Decision:
    if user is None or user.pk == change.author_id or _member(user, change.tenant):
        return ALLOWED
    return deny("Only members of the change's tenant can re-run its checks.")


def can_attach_evidence(user: AnyUser | None, change: ChangeRequest) -> Decision:
    if user is None or _member(user, change.tenant):
        return ALLOWED
    return deny("Only members of the change's tenant can attach evidence.")


def can_complete_deployment_checklist(
    user: AnyUser | None, change: ChangeRequest, *, roles: Iterable[str] | None = None
) -> Decision:
    """The Approved stage's deployment checklist: the change's author or a tenant administrator."""
    if user is None or user.pk == change.author_id or _admin(user, change.tenant, roles):
        return ALLOWED
    return deny("Only the author or an administrator can complete the deployment checklist.")


def can_promote(
    user: AnyUser | None, change: ChangeRequest, *, roles: Iterable[str] | None = None
) -> Decision:
    """An administrator; where the approval policy says ``"promoted_by": "owner"``, only an
    accountable owner of a changed artifact (not the system either: someone accountable acts)."""
    from reviews import selectors

    if selectors.promotion_by_owner(change):
        if user is not None and user.is_active and user.pk in selectors.owners_of(change):
            return ALLOWED
        return deny(
            f"The approval policy lets only the accountable owner promote {change.reference}."
        )
    if _admin(user, change.tenant, roles):
        return ALLOWED
    return deny("Only an administrator can promote a change.")


def can_roll_back(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    if _admin(user, artifact.tenant, roles):
        return ALLOWED
    return deny("Only an administrator can roll back.")


def can_record_postmortem(
    user: AnyUser | None,
    change: ChangeRequest,
    *,
    roles: Iterable[str] | None = None,
    owners: Iterable[object] | None = None,
) -> Decision:
    """The author, an owner of a changed artifact, an administrator or a security officer."""
    from reviews import selectors

    if user is None or user.pk == change.author_id:
        return ALLOWED
    held = roles_of(user, change.tenant, roles)
    if {Role.ADMINISTRATOR, Role.SECURITY_OFFICER} & held:
        return ALLOWED
    if user.pk in set(owners if owners is not None else selectors.owners_of(change)):
        return ALLOWED
    return deny("Only the author, an owner, an administrator or a security officer can record it.")


def can_change_policy(
    user: AnyUser | None, tenant: Tenant | None, *, roles: Iterable[str] | None = None
) -> Decision:
    """A tenant's approval policy: its administrators; the platform default: a platform admin."""
    if user is None:
        return ALLOWED
    allowed = is_platform_admin(user) if tenant is None else _admin(user, tenant, roles)
    return ALLOWED if allowed else deny("Only an administrator can change the approval policy.")


def can_change_lifecycle_policy(
    user: AnyUser | None, tenant: Tenant | None, *, roles: Iterable[str] | None = None
) -> Decision:
    """A tenant's stage criteria: its administrators; the platform default: a platform admin."""
    if user is None:
        return ALLOWED
    allowed = is_platform_admin(user) if tenant is None else _admin(user, tenant, roles)
    return ALLOWED if allowed else deny("Only an administrator can change the stage criteria.")


def can_set_gates(user: AnyUser | None, tenant: Tenant) -> Decision:
    if _admin(user, tenant, None):
        return ALLOWED
    return deny("Only an administrator can change the gates.")


def can_deactivate(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """The safety switch (leave an artifact with no active version): its tenant's administrators."""
    if _admin(user, artifact.tenant, roles):
        return ALLOWED
    return deny("Only an administrator can switch an artifact off.")


@dataclass
class ChangeActions:
    """What a person may do to a change now: who may (the predicates above) and its status.

    The change page and the API's change detail both read this, so they never disagree.
    """

    submit: bool
    revise: bool
    withdraw: bool
    sign_off: bool
    rerun_checks: bool
    attach_evidence: bool
    complete_checklist: bool
    promote: bool

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


def change_actions(
    user: AnyUser, change: ChangeRequest, *, roles: Iterable[str] | None = None
) -> ChangeActions:
    from reviews.choices import EDITABLE_STATES, OPEN_STATES, TRANSITIONS, ChangeStatus

    held = roles_of(user, change.tenant, roles)
    author_like = bool(can_act_as_author(user, change, roles=held))
    following = TRANSITIONS[change.status]
    is_open = change.status in OPEN_STATES
    return ChangeActions(
        submit=author_like
        and change.status == ChangeStatus.DRAFT
        and ChangeStatus.IN_REVIEW in following,
        revise=author_like and change.status in EDITABLE_STATES,
        withdraw=author_like and ChangeStatus.WITHDRAWN in following,
        sign_off=is_open and bool(can_decide(user, change)),
        rerun_checks=is_open and bool(can_rerun_checks(user, change)),
        attach_evidence=change.status in EDITABLE_STATES
        and bool(can_attach_evidence(user, change)),
        complete_checklist=change.status in EDITABLE_STATES
        and bool(can_complete_deployment_checklist(user, change, roles=held)),
        promote=change.status == ChangeStatus.APPROVED
        and bool(can_promote(user, change, roles=held)),
    )
