"""Who may do what to applications, slots, overrides and rollouts: one predicate per action.

Each answers a :class:`~governance.kernel.permissions.Decision`; ``rollouts.services`` refuses with
its reason (``.require()``), and pages, the API and the CLI ask the same function to show or
hide the action. ``user=None`` is the system. A platform administrator administers every
tenant. Whether the rollout's state allows the action stays a ``Conflict`` in the service;
:func:`rollout_actions` combines both for pages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from accounts.choices import Role
from accounts.selectors import AnyUser
from governance.kernel.permissions import ALLOWED, Decision, deny, roles_of

if TYPE_CHECKING:
    from accounts.models import Tenant
    from reviews.models import ChangeRequest
    from rollouts.models import Application, Rollout


def _admin(user: AnyUser | None, tenant: Tenant, roles: Iterable[str] | None = None) -> bool:
    return user is None or Role.ADMINISTRATOR in roles_of(user, tenant, roles)


def can_manage_application(
    user: AnyUser | None, tenant: Tenant, *, roles: Iterable[str] | None = None
) -> Decision:
    """Create or edit an application owned by ``tenant``: its administrators."""
    if _admin(user, tenant, roles):
        return ALLOWED
    return deny(f"Only an administrator of '{tenant.slug}' can manage its applications.")


def can_manage_slots(
    user: AnyUser | None, application: Application, *, roles: Iterable[str] | None = None
) -> Decision:
    """Create or edit the slots of an application: administrators of its tenant."""
    if _admin(user, application.tenant, roles):
        return ALLOWED
    return deny(f"Only an administrator of '{application.tenant.slug}' can manage its slots.")


def can_set_override(
    user: AnyUser | None, tenant: Tenant, *, roles: Iterable[str] | None = None
) -> Decision:
    """Set or clear a tenant's override of a slot: administrators of that tenant."""
    if _admin(user, tenant, roles):
        return ALLOWED
    return deny(f"Only an administrator of '{tenant.slug}' can set its overrides.")


def can_create_rollout(
    user: AnyUser | None, change: ChangeRequest, *, roles: Iterable[str] | None = None
) -> Decision:
    """Roll out a promoted change: administrators of the change's tenant."""
    if _admin(user, change.tenant, roles):
        return ALLOWED
    return deny("Only an administrator can roll out a change.")


def can_operate_rollout(
    user: AnyUser | None,
    rollout: Rollout,
    action: str = "operate",
    *,
    roles: Iterable[str] | None = None,
) -> Decision:
    """Start, advance, pause, resume, abort, roll back or flip the flag: administrators of
    the rollout's tenant (platform administrators everywhere)."""
    if _admin(user, rollout.tenant, roles):
        return ALLOWED
    return deny(f"Only an administrator can {action} a rollout.")


@dataclass
class RolloutActions:
    """What a person may do to a rollout now (who may, and its state): pages and API read this."""

    start: bool
    advance: bool
    pause: bool
    resume: bool
    abort: bool
    rollback: bool
    flag: bool

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


def rollout_actions(
    user: AnyUser | None, rollout: Rollout, *, roles: Iterable[str] | None = None
) -> RolloutActions:
    from rollouts.choices import TRANSITIONS, RolloutState, RolloutStrategy

    held = roles_of(user, rollout.tenant, roles) if user is not None else None
    may = bool(can_operate_rollout(user, rollout, roles=held))
    state = rollout.state
    following = TRANSITIONS[state]
    return RolloutActions(
        start=may and state == RolloutState.DRAFT,
        advance=may and state == RolloutState.PROGRESSING,
        pause=may and state != RolloutState.PAUSED and RolloutState.PAUSED in following,
        resume=may and state == RolloutState.PAUSED,
        abort=may and RolloutState.ABORTED in following,
        rollback=may and RolloutState.ROLLED_BACK in following,
        flag=may
        and rollout.strategy == RolloutStrategy.FLAG
        and state in {RolloutState.DRAFT, RolloutState.PROGRESSING, RolloutState.PAUSED},
    )
