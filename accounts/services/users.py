"""Users: creation, and the flags and admin permissions that only a platform administrator changes."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from accounts.choices import Role
from accounts.models import (
    RoleGrant,
    Tenant,
    User,
)
from accounts.selectors import is_platform_admin
from accounts.services.access import refuse_last_administrator
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from governance.kernel.inputs import clean_text

#: The event each user flag's change records.
_FLAG_EVENTS = {
    "is_staff": EventKind.USER_STAFF_CHANGED,
    "is_superuser": EventKind.USER_SUPERUSER_CHANGED,
    "is_active": EventKind.USER_ACTIVE_CHANGED,
}


def _user_flag_set(*, user: User, flag: str, value: bool, actor: User | None, reason: str) -> User:
    reason = clean_text(reason, "reason", limit=500)
    if not isinstance(value, bool):
        raise DomainError("Give true or false.", field=flag)
    current = User.objects.select_for_update().get(pk=user.pk)
    old = bool(getattr(current, flag))
    if old != value:
        setattr(current, flag, value)
        current.save(update_fields=[flag])
        event_record(
            kind=_FLAG_EVENTS[flag],
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
            refuse_last_administrator(user, tenant, field="is_active")
    return _user_flag_set(
        user=user,
        flag="is_active",
        value=active,
        actor=actor,
        reason=reason,
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
