"""The demo's tenants and people: one user per role, with printed demo passwords."""

from __future__ import annotations

from django.conf import settings

from accounts import services
from accounts.choices import Role
from accounts.models import Tenant, User

TENANTS = [
    ("acme", "Acme Corporation"),
    ("globex", "Globex Industries"),
    # The shared namespace: its artifacts and applications serve every tenant.
    (settings.PLATFORM_TENANT_SLUG, "Platform (shared)"),
]

# (username, tenant slug or None for platform-wide, role or None for a plain member)
DEMO_USERS: list[tuple[str, str | None, str | None]] = [
    ("platform-admin", None, Role.ADMINISTRATOR),
    ("acme-admin", "acme", Role.ADMINISTRATOR),
    ("acme-reviewer", "acme", Role.REVIEWER),
    ("acme-privacy", "acme", Role.PRIVACY_OFFICER),
    ("acme-security", "acme", Role.SECURITY_OFFICER),
    ("acme-author", "acme", None),
    ("globex-admin", "globex", Role.ADMINISTRATOR),
    ("globex-reviewer", "globex", Role.REVIEWER),
    ("platform-author", settings.PLATFORM_TENANT_SLUG, None),
    ("platform-reviewer", settings.PLATFORM_TENANT_SLUG, Role.REVIEWER),
]


def demo_password(username: str) -> str:
    return f"{username}-demo"


def seed_people() -> dict[str, Tenant]:
    """The tenants, and the demo users with their memberships, roles and flags."""
    tenants: dict[str, Tenant] = {}
    for tenant_slug, tenant_name in TENANTS:
        found = Tenant.objects.filter(slug=tenant_slug).first()
        tenants[tenant_slug] = found or services.tenant_create(
            slug=tenant_slug, name=tenant_name, actor=None
        )
    for username, slug, role in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = services.user_create(
                username=username,
                email=f"{username}@example.com",
                password=demo_password(username),
                actor=None,
                validate=False,
            )
        else:
            # Keep the printed logins true even if someone changed a demo password.
            user.set_password(demo_password(username))
            user.save(update_fields=["password"])
        tenant = tenants[slug] if slug else None
        if role is None and tenant is not None:
            services.membership_add(user=user, tenant=tenant, actor=None)
        elif role is not None:
            services.role_grant(user=user, role=role, tenant=tenant, actor=None, reason="demo")
        if slug is None:
            services.user_set_staff(user=user, is_staff=True, actor=None, reason="demo")
            services.user_set_superuser(user=user, is_superuser=True, actor=None, reason="demo")
    return tenants
