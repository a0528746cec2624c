"""Every change to users, tenants, memberships, roles and tokens.

Each function is the only way its change is made: the admin, the pages, the
API, the CLI and tasks all call it. ``actor`` is the user who asked for the
change, or ``None`` for the system (the CLI run by an operator, a seed, a task).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.choices import PLATFORM_ROLES, Role, TokenScope
from accounts.models import (
    TENANT_SLUG_RE,
    ApiToken,
    Membership,
    RoleGrant,
    ServiceToken,
    Tenant,
    User,
)
from accounts.selectors import is_platform_admin, token_digest
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text

TOKEN_PREFIX = "gov_"  # noqa: S105 - a public marker, not a secret
#: Service tokens (machines of a tenant) start differently, so neither passes for the other.
SERVICE_TOKEN_PREFIX = "gsv_"  # noqa: S105 - a public marker, not a secret


def _new_token(marker: str) -> tuple[str, str, str]:
    """A fresh 256-bit token starting with ``marker``: (raw token, shown prefix, digest)."""
    raw = marker + secrets.token_urlsafe(32)
    return raw, raw[:12], token_digest(raw)


def _require_role_admin(actor: User | None, tenant: Tenant | None) -> None:
    """Only the system, a platform administrator, or the tenant's administrator manages access."""
    from accounts.permissions import can_manage_access

    can_manage_access(actor, tenant).require()


def validate_role(role: str, *, platform: bool = False) -> Role:
    if role not in Role.values:
        raise DomainError(
            f"Unknown role '{role}'; choose one of: {', '.join(Role.values)}.", field="role"
        )
    if platform and role not in PLATFORM_ROLES:
        raise DomainError(f"'{role}' cannot be granted platform-wide.", field="role")
    return Role(role)


@transaction.atomic
def tenant_create(*, slug: str, name: str, actor: User | None) -> Tenant:
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can create tenants.")
    if not re.match(TENANT_SLUG_RE, slug or ""):
        raise DomainError(
            "Use 1-63 lowercase letters, digits or hyphens, starting and ending with one "
            "of the first two.",
            field="slug",
        )
    name = (name or "").strip()
    if not name:
        raise DomainError("A tenant needs a name.", field="name")
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"Tenant '{slug}' already exists.", field="slug")
    tenant = Tenant.objects.create(slug=slug, name=name, created_by=actor)
    event_record(
        kind=EventKind.TENANT_CREATED,
        actor=actor,
        tenant=tenant,
        subject=tenant,
        payload={"slug": slug, "name": name},
    )
    return tenant


@transaction.atomic
def tenant_rename(*, tenant: Tenant, name: str, actor: User | None, reason: str = "") -> Tenant:
    """Change a tenant's display name (its slug never changes). Unchanged names record nothing."""
    name = clean_text(name, "name", limit=200)
    reason = clean_text(reason, "reason", required=False, limit=500)
    _lock_tenant(tenant)
    _require_role_admin(actor, tenant)
    current = Tenant.objects.get(pk=tenant.pk)
    if current.name == name:
        return current
    old = current.name
    current.name = name
    current.save(update_fields=["name"])
    event_record(
        kind=EventKind.TENANT_RENAMED,
        actor=actor,
        tenant=current,
        subject=current,
        payload={"slug": current.slug, "old_name": old, "new_name": name, "reason": reason},
    )
    return current


def _user_flag_set(
    *, user: User, flag: str, value: bool, actor: User | None, reason: str, kind: EventKind
) -> User:
    reason = clean_text(reason, "reason", limit=500)
    if not isinstance(value, bool):
        raise DomainError("Give true or false.", field=flag)
    current = User.objects.select_for_update().get(pk=user.pk)
    old = bool(getattr(current, flag))
    if old != value:
        setattr(current, flag, value)
        current.save(update_fields=[flag])
        event_record(
            kind=kind,
            actor=actor,
            subject=current,
            payload={"username": current.username, "old": old, "new": value, "reason": reason},
        )
    setattr(user, flag, value)
    return current


@transaction.atomic
def user_set_staff(*, user: User, is_staff: bool, actor: User | None, reason: str) -> User:
    """Let ``user`` sign in to the Django admin, or stop them; platform administrators only."""
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden(
            "Only a platform administrator can change who signs in to the admin.", field="is_staff"
        )
    return _user_flag_set(
        user=user,
        flag="is_staff",
        value=is_staff,
        actor=actor,
        reason=reason,
        kind=EventKind.USER_STAFF_CHANGED,
    )


@transaction.atomic
def user_set_superuser(*, user: User, is_superuser: bool, actor: User | None, reason: str) -> User:
    """Make ``user`` a superuser (every permission, administrator everywhere) or stop it.

    Only a superuser (or the system) may: a platform administrator by grant
    cannot raise anyone, themselves included, above that grant.
    """
    if actor is not None and not (actor.is_active and actor.is_superuser):
        raise Forbidden("Only a superuser can change who is a superuser.", field="is_superuser")
    return _user_flag_set(
        user=user,
        flag="is_superuser",
        value=is_superuser,
        actor=actor,
        reason=reason,
        kind=EventKind.USER_SUPERUSER_CHANGED,
    )


@transaction.atomic
def user_set_active(*, user: User, active: bool, actor: User | None, reason: str) -> User:
    """Let ``user`` sign in and use their tokens again, or stop them (history stays).

    Platform administrators only, and only a superuser (de)activates a superuser.
    Deactivation is refused while ``user`` is the last active administrator of a
    tenant, by the same rule as revoking that grant: the tenants' rows are locked
    first, so two deactivations at once cannot leave a tenant without one.
    """
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden(
            "Only a platform administrator can activate or deactivate users.", field="is_active"
        )
    if actor is not None and user.is_superuser and not actor.is_superuser:
        raise Forbidden(
            "Only a superuser can activate or deactivate a superuser.", field="is_active"
        )
    if active is False:
        administered = (
            RoleGrant.objects.filter(
                user=user, role=Role.ADMINISTRATOR, revoked_at__isnull=True, tenant__isnull=False
            )
            .values_list("tenant_id", flat=True)
            .distinct()
        )
        tenants = list(
            Tenant.objects.select_for_update().filter(pk__in=list(administered)).order_by("pk")
        )
        for tenant in tenants:
            _refuse_last_administrator(user, tenant, field="is_active")
    return _user_flag_set(
        user=user,
        flag="is_active",
        value=active,
        actor=actor,
        reason=reason,
        kind=EventKind.USER_ACTIVE_CHANGED,
    )


def _permission_names(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


@transaction.atomic
def user_set_admin_permissions(
    *,
    user: User,
    groups: Iterable[Group],
    permissions: Iterable[Permission],
    actor: User | None,
    reason: str,
) -> User:
    """Set the Django groups and model permissions ``user`` has in the admin site.

    They decide only which admin pages a staff user who is not a superuser may
    open (every write there still goes through a service that checks roles).
    Superusers only, like the superuser flag. One event with the old and new
    lists; an unchanged set records nothing.
    """
    if actor is not None and not (actor.is_active and actor.is_superuser):
        raise Forbidden(
            "Only a superuser can change admin groups and permissions.", field="user_permissions"
        )
    reason = clean_text(reason, "reason", limit=500)
    current = User.objects.select_for_update().get(pk=user.pk)
    wanted_groups = list(groups)
    wanted_permissions = list(permissions)
    old_groups = sorted(current.groups.values_list("name", flat=True))
    new_groups = sorted(g.name for g in wanted_groups)
    old_permissions = _permission_names(current.user_permissions.select_related("content_type"))
    new_permissions = _permission_names(wanted_permissions)
    if (old_groups, old_permissions) == (new_groups, new_permissions):
        return current
    current.groups.set(wanted_groups)
    current.user_permissions.set(wanted_permissions)
    event_record(
        kind=EventKind.USER_ADMIN_PERMISSIONS_CHANGED,
        actor=actor,
        subject=current,
        payload={
            "username": current.username,
            "old_groups": old_groups,
            "new_groups": new_groups,
            "old_permissions": old_permissions,
            "new_permissions": new_permissions,
            "reason": reason,
        },
    )
    return current


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str = "",
    password: str | None = None,
    actor: User | None,
    validate: bool = True,
) -> User:
    """Create a user. Without a password the user can only use API tokens."""
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can create users.")
    username = (username or "").strip()
    if not username:
        raise DomainError("A user needs a username.", field="username")
    field = User._meta.get_field("username")
    try:
        field.run_validators(username)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field="username") from exc
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise DomainError(f"'{email}' is not an email address.", field="email") from exc
    if User.objects.filter(username=username).exists():
        raise Conflict(f"User '{username}' already exists.", field="username")
    user = User(username=username, email=email)
    if password:
        if validate:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise DomainError(" ".join(exc.messages), field="password") from exc
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    event_record(
        kind=EventKind.USER_CREATED,
        actor=actor,
        subject=user,
        payload={"username": username, "email": email, "password_login": bool(password)},
    )
    return user


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
    _lock_tenant(tenant)
    _require_role_admin(actor, tenant)
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
        _refuse_last_administrator(user, tenant)
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


def _lock_tenant(tenant: Tenant | None) -> None:
    """Serialise access changes in one tenant: take its row lock before any grant row.

    Two administrators revoking each other at once would otherwise each see the
    other still in place and leave the tenant with none.
    """
    if tenant is not None:
        Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").first()


def _refuse_last_administrator(user: User, tenant: Tenant, *, field: str = "role") -> None:
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
    _lock_tenant(tenant)
    _require_role_admin(actor, tenant)
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
    _lock_tenant(tenant)
    _require_role_admin(actor, tenant)
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
        _refuse_last_administrator(grantee, tenant)
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
    return grant


@transaction.atomic
def token_create(
    *, user: User, name: str, actor: User | None, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Issue a personal token for ``user``. The raw token is returned here and never again."""
    if actor is not None and actor.pk != user.pk and not is_platform_admin(actor):
        raise Forbidden("You can only create tokens for yourself.")
    if not user.is_active:
        raise DomainError(f"User '{user}' is deactivated.", field="username")
    days = settings.API_TOKEN_DEFAULT_EXPIRY_DAYS if expires_days is None else expires_days
    if days < 1 or days > settings.API_TOKEN_MAX_EXPIRY_DAYS:
        raise DomainError(
            f"Expiry must be between 1 and {settings.API_TOKEN_MAX_EXPIRY_DAYS} days.",
            field="expires_days",
        )
    name = (name or "").strip() or "token"
    if len(name) > 100:
        raise DomainError("Token name is at most 100 characters.", field="name")
    raw, prefix, digest = _new_token(TOKEN_PREFIX)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        digest=digest,
        created_by=actor,
        expires_at=timezone.now() + timedelta(days=days),
    )
    event_record(
        kind=EventKind.TOKEN_CREATED,
        actor=actor,
        subject=token,
        payload={
            "username": user.username,
            "name": name,
            "prefix": token.prefix,
            "expires_at": token.expires_at.isoformat(),
        },
    )
    return token, raw


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: User | None) -> ApiToken:
    """Revoke a token; requests that present it get 401 from now on."""
    if actor is not None and actor.pk != token.user_id and not is_platform_admin(actor):
        raise Forbidden("You can only revoke your own tokens.")
    token = ApiToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.", field="token")
    token.revoked_at = timezone.now()
    token.revoked_by = actor
    token.save(update_fields=["revoked_at", "revoked_by"])
    event_record(
        kind=EventKind.TOKEN_REVOKED,
        actor=actor,
        subject=token,
        payload={"username": token.user.username, "prefix": token.prefix},
    )
    return token


def token_touch(*, token: ApiToken, now: datetime | None = None) -> None:
    """Record use, at most once a minute, so busy clients do not write on every request."""
    now = now or timezone.now()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def validate_scopes(scopes: Iterable[str] | str | None) -> list[str]:
    """The scopes asked for, known and deduplicated (sorted); refused naming ``scopes``."""
    if scopes is None or isinstance(scopes, str):
        scopes = [scopes] if scopes else []
    wanted = sorted({str(scope).strip() for scope in scopes} - {""})
    known = ", ".join(TokenScope.values)
    if not wanted:
        raise DomainError(f"Give at least one scope: {known}.", field="scopes")
    for scope in wanted:
        if scope not in TokenScope.values:
            raise DomainError(
                f"Unknown scope '{scope[:50]}'; choose from: {known}.", field="scopes"
            )
    return wanted


@transaction.atomic
def service_token_create(
    *,
    tenant: Tenant,
    name: str,
    scopes: Iterable[str],
    actor: User | None,
    expires_at: datetime | None = None,
) -> tuple[ServiceToken, str]:
    """Issue a token for a machine of ``tenant``; the raw token is returned here and never again.

    Administrators of the tenant (or platform administrators, or the system) only. Without
    ``expires_at`` it lives until revoked.
    """
    from accounts.permissions import can_manage_service_tokens

    name = clean_text(name, "name", limit=100)
    checked = validate_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise DomainError("The expiry must be in the future.", field="expires_at")
    can_manage_service_tokens(actor, tenant).require()
    raw, prefix, digest = _new_token(SERVICE_TOKEN_PREFIX)
    token = ServiceToken.objects.create(
        tenant=tenant,
        name=name,
        scopes=checked,
        prefix=prefix,
        digest=digest,
        created_by=actor,
        expires_at=expires_at,
    )
    event_record(
        kind=EventKind.SERVICE_TOKEN_CREATED,
        actor=actor,
        tenant=tenant,
        subject=token,
        payload={
            "tenant": tenant.slug,
            "name": name,
            "prefix": prefix,
            "scopes": checked,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return token, raw


@transaction.atomic
def service_token_revoke(*, token: ServiceToken, actor: User | None, reason: str) -> ServiceToken:
    """Revoke a service token, saying why.

    Its event bumps the runtime generation, so every server process drops its cached
    verification on the next request (see ``accounts.authentication``).
    """
    from accounts.permissions import can_manage_service_tokens

    reason = clean_text(reason, "reason", limit=500)
    current = ServiceToken.objects.select_for_update().select_related("tenant").get(pk=token.pk)
    can_manage_service_tokens(actor, current.tenant).require()
    if current.revoked_at is not None:
        raise Conflict(f"Service token {current.prefix}… is already revoked.", field="token")
    current.revoked_at = timezone.now()
    current.revoked_by = actor
    current.revoke_reason = reason
    current.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    event_record(
        kind=EventKind.SERVICE_TOKEN_REVOKED,
        actor=actor,
        tenant=current.tenant,
        subject=current,
        payload={
            "tenant": current.tenant.slug,
            "name": current.name,
            "prefix": current.prefix,
            "reason": reason,
        },
    )
    return current
