"""``manage.py seed_demo``: demo tenants and one user per role (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.choices import Role
from accounts.models import Tenant, User

TENANTS = [("acme", "Acme Corporation"), ("globex", "Globex Industries")]

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
]


def demo_password(username: str) -> str:
    return f"{username}-demo"


class Command(BaseCommand):
    help = "Create demo tenants and one user per role, with printed demo passwords. Safe to re-run."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the logins.")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
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
                User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        self.stdout.write(self.style.SUCCESS("Demo data ready: tenants acme and globex."))
        if not options["quiet_logins"]:
            self.stdout.write("Demo logins (username / password):")
            for username, where, role in DEMO_USERS:
                what = (
                    f"{role or 'member'} of {where}"
                    if where
                    else "platform administrator (Django admin too)"
                )
                self.stdout.write(f"  {username:<16} {demo_password(username):<22} {what}")
