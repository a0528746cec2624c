"""Who may manage access (memberships and role grants) and a tenant's service tokens: one
predicate per action, asked by the services (which refuse with its reason) and by the tenant
page and the API (which show or hide the forms)."""

from __future__ import annotations

from accounts.choices import Role
from accounts.models import Tenant
from accounts.selectors import AnyUser, has_role, is_platform_admin
from governance.kernel.permissions import ALLOWED, Decision, deny


def can_manage_access(user: AnyUser | None, tenant: Tenant | None) -> Decision:
    """The system, a platform administrator, or an administrator of the tenant (it administers it).

    ``tenant=None`` is the platform: only a platform administrator manages platform-wide roles.
    """
    if user is None or is_platform_admin(user):
        return ALLOWED
    if tenant is None:
        return deny("Only a platform administrator can manage platform-wide roles.")
    if not has_role(user, tenant, Role.ADMINISTRATOR):
        return deny(f"Only an administrator of '{tenant.slug}' can manage its access.")
    return ALLOWED


def can_manage_service_tokens(user: AnyUser | None, tenant: Tenant) -> Decision:
    """See, create and revoke ``tenant``'s service tokens: the system, a platform
    administrator, or an administrator of the tenant."""
    if user is None or is_platform_admin(user):
        return ALLOWED
    if not has_role(user, tenant, Role.ADMINISTRATOR):
        return deny(f"Only an administrator of '{tenant.slug}' can manage its service tokens.")
    return ALLOWED
