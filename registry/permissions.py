"""Who may do what in the registry: one predicate per action.

Each answers a :class:`~governance.kernel.permissions.Decision`; ``registry.services`` refuses with
its reason, and the artifact and version pages ask the same function to show or hide the
action. ``user=None`` is the system (the CLI, an import). These decide *who*; whether the
version is in a state that allows the action stays a ``Conflict`` in the service.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from accounts.choices import Role
from accounts.selectors import AnyUser, is_member, is_platform_admin
from governance.kernel.permissions import ALLOWED, Decision, deny, roles_of

if TYPE_CHECKING:
    from accounts.models import Tenant
    from registry.models import Artifact, Version


def can_publish(user: AnyUser | None, tenant: Tenant) -> Decision:
    """Any member of a tenant may author there (create artifacts, publish versions)."""
    if user is None or is_platform_admin(user) or is_member(user, tenant):
        return ALLOWED
    return deny(f"Only members of '{tenant.slug}' can publish there.")


def _admin_of(
    user: AnyUser | None, tenant: Tenant, action: str, roles: Iterable[str] | None
) -> Decision:
    if user is None or Role.ADMINISTRATOR in roles_of(user, tenant, roles):
        return ALLOWED
    return deny(f"Only an administrator of {tenant.slug} can {action}.")


def can_deprecate(
    user: AnyUser | None, version: Version, *, roles: Iterable[str] | None = None
) -> Decision:
    return _admin_of(user, version.artifact.tenant, "deprecate a version", roles)


def can_retire(
    user: AnyUser | None, version: Version, *, roles: Iterable[str] | None = None
) -> Decision:
    return _admin_of(user, version.artifact.tenant, "retire a version", roles)


def _owner_or_admin(user: AnyUser | None, artifact: Artifact, roles: Iterable[str] | None) -> bool:
    if user is None:
        return True
    if artifact.owner_id is not None and artifact.owner_id == user.pk:
        return True
    return Role.ADMINISTRATOR in roles_of(user, artifact.tenant, roles)


def can_change_owner(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """The owner may hand their artifact on; an administrator of its tenant may reassign it."""
    if _owner_or_admin(user, artifact, roles):
        return ALLOWED
    return deny("Only the owner or an administrator can change the owner.")


def can_describe(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """The owner keeps their artifact's title and summary true; an administrator may too."""
    if _owner_or_admin(user, artifact, roles):
        return ALLOWED
    return deny("Only the owner or an administrator can change the title and summary.")


def can_recommend(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    if _owner_or_admin(user, artifact, roles):
        return ALLOWED
    return deny("Only the owner or an administrator can set the recommended version.")


def can_set_action_eligible(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """Marking an artifact action-eligible (or not) is its tenant's administrators' call."""
    return _admin_of(user, artifact.tenant, "mark an artifact action-eligible", roles)


def can_set_deputy(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """The owner names their deputy; an administrator of the tenant may too."""
    if _owner_or_admin(user, artifact, roles):
        return ALLOWED
    return deny("Only the owner or an administrator can name the deputy.")


def can_flip_safety_switch(
    user: AnyUser | None, artifact: Artifact, *, roles: Iterable[str] | None = None
) -> Decision:
    """Engaging or releasing an artifact's safety switch: its tenant's administrators."""
    return _admin_of(user, artifact.tenant, "engage or release the safety switch", roles)
