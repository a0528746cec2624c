"""Reads about who may do what, shared by pages, the API, the CLI and services.

Nothing here is cached across requests, so a grant or revocation takes effect
on the very next request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth.models import AnonymousUser
from django.db.models import Exists, Model, OuterRef, Prefetch, Q, QuerySet

from accounts.choices import Role
from accounts.models import (
    ApiToken,
    Membership,
    Passkey,
    RoleGrant,
    ServiceToken,
    Tenant,
    User,
)
from governance.kernel.errors import NotFound

AnyUser = User | AnonymousUser
M = TypeVar("M", bound=Model)


@dataclass
class TenantAccess:
    """One tenant and the roles a user holds in it."""

    tenant: Tenant
    roles: list[str] = field(default_factory=list)
    member: bool = False


def is_platform_admin(user: AnyUser) -> bool:
    """A platform administrator administers every tenant: a platform-wide grant, or a superuser."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return RoleGrant.objects.filter(
        user=user, tenant__isnull=True, role=Role.ADMINISTRATOR, revoked_at__isnull=True
    ).exists()


def platform_administrators() -> QuerySet[User]:
    """Active platform administrators (as ``is_platform_admin`` judges): superusers and holders
    of a platform-wide administrator grant, by username (one query)."""
    platform_grant = RoleGrant.objects.filter(
        user=OuterRef("pk"), tenant__isnull=True, role=Role.ADMINISTRATOR, revoked_at__isnull=True
    )
    return (
        User.objects.filter(is_active=True)
        .filter(Q(is_superuser=True) | Q(Exists(platform_grant)))
        .order_by("username")
    )


def roles_in_tenant(user: AnyUser, tenant: Tenant) -> set[str]:
    """The roles ``user`` holds in ``tenant`` now; a platform administrator is administrator everywhere."""
    if not user.is_authenticated or not user.is_active:
        return set()
    grants = RoleGrant.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(tenant=tenant) | Q(tenant__isnull=True)
    )
    roles = set(grants.values_list("role", flat=True))
    if user.is_superuser:
        roles.add(Role.ADMINISTRATOR)
    return roles


def has_role(user: AnyUser, tenant: Tenant, role: str) -> bool:
    return role in roles_in_tenant(user, tenant)


def is_member(user: AnyUser, tenant: Tenant) -> bool:
    if not user.is_authenticated or not user.is_active:
        return False
    return Membership.objects.filter(user=user, tenant=tenant, removed_at__isnull=True).exists()


def tenant_scoped(
    queryset: QuerySet[M], *, user: AnyUser | None, via: str = "tenant", also: Q | None = None
) -> QuerySet[M]:
    """The one rule for which tenants' rows ``user`` may see; every ``*_visible_to`` uses it.

    A platform administrator sees every tenant; anyone else the tenants they are an active
    member of; nobody (anonymous, inactive, or ``None`` passed by mistake) sees anything: the
    rule fails closed. ``via`` is the path from the queryset's model to its tenant
    (``"tenant"``, ``"artifact__tenant"``, ``"pk"`` for tenants themselves); ``also`` admits
    rows outside any tenant that are the user's own (their platform-level events). Code that
    truly needs every tenant (the CLI, system tasks) calls a selector named ``*_unscoped``.
    """
    if user is None or not user.is_authenticated or not user.is_active:
        return queryset.none()
    if user.is_superuser:
        return queryset
    # One query in all: membership and the platform-wide grant are conditions of the
    # queryset's own query, not lookups of their own.
    member_of = Membership.objects.filter(user=user, removed_at__isnull=True).values("tenant_id")
    platform_admin = RoleGrant.objects.filter(
        user=user, tenant__isnull=True, role=Role.ADMINISTRATOR, revoked_at__isnull=True
    )
    rule = Q(**{f"{via}__in": member_of}) | Q(Exists(platform_admin))
    return queryset.filter(rule | also if also is not None else rule)


def tenants_visible_to(user: AnyUser) -> QuerySet[Tenant]:
    """Tenants a user may see: those they belong to, or all of them for a platform administrator."""
    return tenant_scoped(Tenant.objects.all(), user=user, via="pk")


def tenants_administered_by(user: AnyUser) -> QuerySet[Tenant]:
    """Tenants ``user`` may see and administers (all of them for a platform administrator)."""
    if not isinstance(user, User):
        return Tenant.objects.none()
    if is_platform_admin(user):
        return Tenant.objects.all()
    granted = RoleGrant.objects.filter(
        user=user, role=Role.ADMINISTRATOR, revoked_at__isnull=True
    ).values("tenant_id")
    return tenant_scoped(Tenant.objects.filter(pk__in=granted), user=user, via="pk")


def tenant_for_user(user: AnyUser, slug: str) -> Tenant:
    """The tenant ``slug`` if ``user`` may see it; otherwise NotFound, so other tenants stay invisible."""
    tenant = tenants_visible_to(user).filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant '{slug}' that you belong to.", field="tenant")
    return tenant


def access_by_tenant(user: AnyUser) -> list[TenantAccess]:
    """Every tenant the user can see with the roles they hold there (two queries in all)."""
    if not user.is_authenticated or not user.is_active:
        return []
    grants = list(
        RoleGrant.objects.filter(user=user, revoked_at__isnull=True).values_list(
            "tenant_id", "role"
        )
    )
    platform_roles = sorted(role for tenant_id, role in grants if tenant_id is None)
    if user.is_superuser and Role.ADMINISTRATOR not in platform_roles:
        platform_roles.append(Role.ADMINISTRATOR)
    by_tenant: dict[object, list[str]] = defaultdict(list)
    for tenant_id, role in grants:
        if tenant_id is not None:
            by_tenant[tenant_id].append(role)
    member_of = set(
        Membership.objects.filter(user=user, removed_at__isnull=True).values_list(
            "tenant_id", flat=True
        )
    )
    tenants = tenants_visible_to(user)  # the one rule; platform_roles only adds roles
    result = []
    for tenant in tenants:
        roles = sorted(set(by_tenant.get(tenant.id, [])) | set(platform_roles))
        result.append(TenantAccess(tenant=tenant, roles=roles, member=tenant.id in member_of))
    return result


def active_members(tenant: Tenant) -> QuerySet[Membership]:
    """Active memberships of a tenant with each member's active roles prefetched."""
    return (
        Membership.objects.filter(tenant=tenant, removed_at__isnull=True)
        .select_related("user", "added_by")
        .prefetch_related(
            Prefetch(
                "user__role_grants",
                queryset=RoleGrant.objects.filter(tenant=tenant, revoked_at__isnull=True),
                to_attr="active_grants_here",
            )
        )
        .order_by("user__username")
    )


def grant_history(tenant: Tenant) -> QuerySet[RoleGrant]:
    """Every grant ever made in a tenant, newest first, with who granted and revoked it."""
    return RoleGrant.objects.filter(tenant=tenant).select_related(
        "user", "granted_by", "revoked_by"
    )


def active_grants(tenant: Tenant) -> QuerySet[RoleGrant]:
    return grant_history(tenant).filter(revoked_at__isnull=True)


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def has_active_passkey(user: AnyUser) -> bool:
    if not user.is_authenticated:
        return False
    return Passkey.objects.filter(user=user, revoked_at__isnull=True).exists()


def user_by_username(username: str) -> User:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"No user '{username}'.", field="username")
    return user


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise NotFound(f"No tenant '{slug}'.", field="tenant")
    return tenant


def token_digest(raw_token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(raw_token.encode()).hexdigest()


def token_by_raw(raw_token: str) -> ApiToken | None:
    """Find the token a request presented, by digest; the raw token is never stored."""
    return ApiToken.objects.select_related("user").filter(digest=token_digest(raw_token)).first()


def tokens_by_prefix(prefix: str) -> QuerySet[ApiToken]:
    return ApiToken.objects.select_related("user").filter(prefix__startswith=prefix[:16])


def service_tokens_of(tenant: Tenant) -> QuerySet[ServiceToken]:
    """A tenant's service tokens, newest first, with who created and revoked them."""
    return (
        ServiceToken.objects.filter(tenant=tenant)
        .select_related("tenant", "created_by", "revoked_by")
        .order_by("-created_at")
    )


def service_tokens_visible_to(user: AnyUser) -> QuerySet[ServiceToken]:
    """Service tokens of every tenant ``user`` may see (managing them is a further check)."""
    return tenant_scoped(
        ServiceToken.objects.select_related("tenant", "created_by", "revoked_by"),
        user=user,
    ).order_by("tenant__slug", "-created_at")


def service_tokens_administered_by(user: AnyUser) -> QuerySet[ServiceToken]:
    """Service tokens of the tenants ``user`` administers (all of them for a platform administrator)."""
    return service_tokens_visible_to(user).filter(tenant__in=tenants_administered_by(user))


def service_token_by_digest(digest: str) -> ServiceToken | None:
    """The service token a request presented (by the digest of what it sent), with its tenant."""
    return ServiceToken.objects.select_related("tenant").filter(digest=digest).first()


def service_token_by_reference(reference: str) -> ServiceToken:
    """A service token by its id or by a prefix shown in listings (the CLI's way to name one)."""
    reference = (reference or "").strip()
    try:
        token = (
            ServiceToken.objects.select_related("tenant").filter(pk=uuid.UUID(reference)).first()
        )
    except ValueError:
        matches = (
            list(
                ServiceToken.objects.select_related("tenant").filter(
                    prefix__startswith=reference[:16]
                )[:2]
            )
            if reference
            else []
        )
        if len(matches) > 1:
            raise NotFound(
                f"'{reference}' matches more than one service token; give more characters.",
                field="token",
            ) from None
        token = matches[0] if matches else None
    if token is None:
        raise NotFound(f"No service token '{reference}'.", field="token")
    return token


def users_with_access() -> list[tuple[User, list[tuple[str, list[str]]]]]:
    """Every user with their active roles per tenant (``*`` for platform-wide), in three queries."""
    users = list(User.objects.order_by("username"))
    memberships = Membership.objects.filter(removed_at__isnull=True).values_list(
        "user_id", "tenant__slug"
    )
    grants = RoleGrant.objects.filter(revoked_at__isnull=True).values_list(
        "user_id", "tenant__slug", "role"
    )
    table: dict[object, dict[str, list[str]]] = defaultdict(dict)
    for user_id, slug in memberships:
        table[user_id].setdefault(slug, [])
    for user_id, slug, role in grants:
        table[user_id].setdefault(slug or "*", []).append(role)
    return [
        (u, sorted((slug, sorted(roles)) for slug, roles in table[u.pk].items())) for u in users
    ]


def holders_of(tenant: Any, roles: Iterable[str]) -> QuerySet[User]:
    """Active people holding any of ``roles`` in ``tenant`` (platform-wide grants included)."""
    return (
        User.objects.filter(
            is_active=True,
            role_grants__revoked_at__isnull=True,
            role_grants__role__in=list(roles),
        )
        .filter(Q(role_grants__tenant=tenant) | Q(role_grants__tenant__isnull=True))
        .distinct()
    )


def passkeys_visible_to(user: AnyUser) -> QuerySet[Passkey]:
    """The passkeys ``user`` may see: their own; every one for a platform administrator."""
    rows = passkeys_of()
    if is_platform_admin(user):
        return rows
    if not user.is_authenticated:
        return rows.none()
    return rows.filter(user_id=user.pk)


def passkeys_of(user: User | None = None) -> QuerySet[Passkey]:
    """A person's passkeys, active and revoked (newest first), with who revoked them; everyone's
    (by username) without ``user``."""
    rows = Passkey.objects.select_related("user", "revoked_by").order_by(
        "user__username", "-created_at"
    )
    return rows if user is None else rows.filter(user=user)


def passkey_visible_to(user: AnyUser, passkey_id: Any, *, field: str = "id") -> Passkey:
    """One passkey ``user`` may see, by id; another's (or a malformed id) is a 404 naming
    ``field``, as if it did not exist."""
    try:
        key = uuid.UUID(str(passkey_id))
    except ValueError:
        key = None
    found = passkeys_visible_to(user).filter(pk=key).first() if key else None
    if found is None:
        raise NotFound("No such passkey of yours.", field=field)
    return found


def passkey_by_reference(reference: str) -> Passkey:
    """A passkey by its id or its credential id (the CLI's ways to name one)."""
    reference = (reference or "").strip()
    rows = Passkey.objects.select_related("user", "revoked_by")
    try:
        found = rows.filter(pk=uuid.UUID(reference)).first()
    except ValueError:
        found = rows.filter(credential_id=reference).first() if reference else None
    if found is None:
        raise NotFound(f"No passkey '{reference}'.", field="passkey")
    return found
