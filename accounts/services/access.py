"""Who may act in a tenant: memberships and role grants (never the last administrator away)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import hooks
from accounts.choices import PLATFORM_ROLES, Role
from accounts.models import (
    Membership,
    RoleGrant,
    Tenant,
    User,
)
from accounts.selectors import is_platform_admin
from accounts.services.common import lock_tenant, require_role_admin
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text


def validate_role(role: str, *, platform: bool = False) -> Role:
    if role not in Role.values:
        raise DomainError(
            f"Unknown role '{role}'; choose one of: {', '.join(Role.values)}.", field="role"
        )
    if platform and role not in PLATFORM_ROLES:
        raise DomainError(f"'{role}' cannot be granted platform-wide.", field="role")
    return Role(role)


@transaction.atomic
def membership_add(*, user: User, tenant: Tenant, actor: User | None) -> Membership:
    """Make ``user`` a member of ``tenant`` (idempotent: an active membership is returned as is).

    Users are not scoped to a tenant, so only a platform administrator (or the
    system) may bring one in: a tenant administrator could otherwise pull in,
    and probe for, users of other tenants.
    """
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden(
            f"Only a platform administrator can add members to '{tenant.slug}'.",
            field="username",
        )
    existing = Membership.objects.filter(user=user, tenant=tenant, removed_at__isnull=True).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            membership = Membership.objects.create(user=user, tenant=tenant, added_by=actor)
    except IntegrityError:
        # A concurrent request added the same membership first.
        return Membership.objects.get(user=user, tenant=tenant, removed_at__isnull=True)
    event_record(
        kind=EventKind.MEMBERSHIP_ADDED,
        actor=actor,
        tenant=tenant,
        subject=membership,
        payload={"username": user.username},
    )
    return membership


@transaction.atomic
def membership_remove(*, user: User, tenant: Tenant, actor: User | None) -> Membership:
    """End a membership and revoke every role the user held in the tenant.

    Refused when it would leave the tenant without an administrator.
    """
    lock_tenant(tenant)
    require_role_admin(actor, tenant)
    membership = (
        Membership.objects.select_for_update()
        .filter(user=user, tenant=tenant, removed_at__isnull=True)
        .first()
    )
    if membership is None:
        raise NotFound(_no_member_message(user.username, tenant), field="username")
    held = RoleGrant.objects.filter(user=user, tenant=tenant, revoked_at__isnull=True)
    roles = sorted(held.values_list("role", flat=True))
    if Role.ADMINISTRATOR in roles:
        refuse_last_administrator(user, tenant)
    now = timezone.now()
    held.update(revoked_at=now, revoked_by=actor, revoke_reason="membership removed")
    membership.removed_at = now
    membership.removed_by = actor
    membership.save(update_fields=["removed_at", "removed_by"])
    event_record(
        kind=EventKind.MEMBERSHIP_REMOVED,
        actor=actor,
        tenant=tenant,
        subject=membership,
        payload={"username": user.username, "roles_revoked": roles},
    )
    return membership


def refuse_last_administrator(user: User, tenant: Tenant, *, field: str = "role") -> None:
    """Call with the tenant locked: refuse to take away the tenant's last administrator.

    The one rule for revoking the grant, ending the membership and deactivating the
    user: some other active user must still hold the tenant's administrator grant
    (a deactivated user's grant administers nothing).
    """
    others = RoleGrant.objects.filter(
        tenant=tenant, role=Role.ADMINISTRATOR, revoked_at__isnull=True, user__is_active=True
    ).exclude(user=user)
    if not others.exists():
        raise Conflict(
            f"'{user}' is the last administrator of '{tenant.slug}'; grant the role to "
            "someone else first.",
            field=field,
        )


def _no_member_message(username: str, tenant: Tenant) -> str:
    # One message for unknown users and users of other tenants, so neither can be probed.
    return f"No member '{username}' in '{tenant.slug}'."


def _grantee(user: User | str, tenant: Tenant | None, actor: User | None) -> User:
    """The user a grant or revocation is about, as the actor may see them.

    A tenant administrator sees only the tenant's members: an unknown username
    and another tenant's user get the same NotFound. A platform administrator
    (or the system) sees every user.
    """
    username = user.username if isinstance(user, User) else (user or "").strip()
    sees_everyone = actor is None or is_platform_admin(actor)
    if sees_everyone:
        found = user if isinstance(user, User) else User.objects.filter(username=username).first()
        if found is None:
            raise NotFound(f"No user '{username}'.", field="username")
        return found
    assert tenant is not None  # platform scope was refused to non-platform administrators
    members = User.objects.filter(memberships__tenant=tenant, memberships__removed_at__isnull=True)
    if isinstance(user, User):
        found = user if members.filter(pk=user.pk).exists() else None
    else:
        found = members.filter(username=username).first()
    if found is None:
        raise NotFound(_no_member_message(username, tenant), field="username")
    return found


@transaction.atomic
def role_grant(
    *, user: User | str, role: str, tenant: Tenant | None, actor: User | None, reason: str = ""
) -> tuple[RoleGrant, bool]:
    """Grant ``role`` in ``tenant`` (or platform-wide when ``tenant`` is None).

    ``user`` is a user or a username (pages, API and CLI pass what was typed).
    A tenant administrator grants only to the tenant's members; a platform
    administrator (or the system) may grant to any user, who then becomes a
    member. Returns the grant and whether it is new: granting a role already
    held changes nothing.
    """
    checked = validate_role(role, platform=tenant is None)
    reason = clean_text(reason, "reason", required=False, limit=500)
    lock_tenant(tenant)
    require_role_admin(actor, tenant)
    grantee = _grantee(user, tenant, actor)
    if not grantee.is_active:
        raise DomainError(f"User '{grantee}' is deactivated.", field="username")
    if (
        tenant is not None
        and not Membership.objects.filter(
            user=grantee, tenant=tenant, removed_at__isnull=True
        ).exists()
    ):
        membership_add(user=grantee, tenant=tenant, actor=actor)
    current = RoleGrant.objects.filter(
        user=grantee, tenant=tenant, role=checked, revoked_at__isnull=True
    ).first()
    if current:
        return current, False
    try:
        with transaction.atomic():
            grant = RoleGrant.objects.create(
                user=grantee, tenant=tenant, role=checked, granted_by=actor, reason=reason
            )
    except IntegrityError:
        # Another request granted the same role at the same moment: one grant stands.
        return RoleGrant.objects.get(
            user=grantee, tenant=tenant, role=checked, revoked_at__isnull=True
        ), False
    event_record(
        kind=EventKind.ROLE_GRANTED,
        actor=actor,
        tenant=tenant,
        subject=grant,
        payload={
            "username": grantee.username,
            "role": str(checked),
            "scope": tenant.slug if tenant else "platform",
            "reason": grant.reason,
        },
    )
    return grant, True


@transaction.atomic
def role_revoke(
    *, user: User | str, role: str, tenant: Tenant | None, actor: User | None, reason: str
) -> RoleGrant:
    """Revoke an active grant, saying why. It stops counting on the next request.

    The tenant's row is locked first, so the last administrator grant of a
    tenant is never revoked, even by two administrators revoking each other.
    """
    checked = validate_role(role, platform=tenant is None)
    reason = clean_text(reason, "reason", limit=500)
    lock_tenant(tenant)
    require_role_admin(actor, tenant)
    grantee = _grantee(user, tenant, actor)
    grant = (
        RoleGrant.objects.select_for_update()
        .filter(user=grantee, tenant=tenant, role=checked, revoked_at__isnull=True)
        .first()
    )
    if grant is None:
        scope = f"in '{tenant.slug}'" if tenant else "platform-wide"
        raise NotFound(f"'{grantee}' does not hold the role '{role}' {scope}.", field="role")
    if tenant is not None and checked == Role.ADMINISTRATOR:
        refuse_last_administrator(grantee, tenant)
    grant.revoked_at = timezone.now()
    grant.revoked_by = actor
    grant.revoke_reason = reason
    grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    event_record(
        kind=EventKind.ROLE_REVOKED,
        actor=actor,
        tenant=tenant,
        subject=grant,
        payload={
            "username": grantee.username,
            "role": str(checked),
            "scope": tenant.slug if tenant else "platform",
            "reason": reason,
        },
    )
    hooks.role_revoked(user=grantee, role=str(checked), tenant=tenant)
    return grant
