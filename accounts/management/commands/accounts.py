"""``manage.py accounts``: users, tenants, roles and tokens from the command line.

Runs as the system (the operator at the shell). Bad input exits 1 with one
line on stderr; nothing is half-written because every service is atomic.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction

from accounts import selectors, services
from accounts.choices import Role
from accounts.models import Tenant
from governance.management.base import ActionCommand


class Command(ActionCommand):
    help = "Manage users, tenants, role grants and API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        roles = ", ".join(Role.values)

        p = sub.add_parser("add-user", help="Create a user, optionally with roles.")
        p.add_argument("username")
        p.add_argument("--email", default="")
        p.add_argument(
            "--password-stdin",
            action="store_true",
            help="Read the password from the first line of stdin (else: token-only user).",
        )
        p.add_argument(
            "--role",
            action="append",
            default=[],
            help=f"Role to grant ({roles}); pair each with --tenant.",
        )
        p.add_argument(
            "--tenant",
            action="append",
            default=[],
            help="Tenant slug for the --role at the same position.",
        )
        p.add_argument(
            "--member",
            action="append",
            default=[],
            metavar="SLUG",
            help="Add as a plain member (may author).",
        )
        p.add_argument("--staff", action="store_true", help="May sign in to the Django admin.")

        for name, verb in (("grant", "Grant"), ("revoke", "Revoke")):
            p = sub.add_parser(name, help=f"{verb} a role in a tenant (or platform-wide).")
            p.add_argument("username")
            p.add_argument("role", help=roles)
            scope = p.add_mutually_exclusive_group(required=True)
            scope.add_argument("--tenant", help="Tenant slug.")
            scope.add_argument(
                "--platform", action="store_true", help="Platform-wide (administrator only)."
            )
            p.add_argument(
                "--reason",
                default="",
                help="Why (recorded in the log)" + ("; required." if name == "revoke" else "."),
            )

        p = sub.add_parser("staff", help="Let a user sign in to the Django admin, or stop them.")
        p.add_argument("username")
        p.add_argument("state", choices=["on", "off"])
        p.add_argument("--reason", default="", help="Why (recorded in the log); required.")

        p = sub.add_parser(
            "active",
            help="Deactivate a user (no sign-in, no tokens; history stays) or reactivate them.",
        )
        p.add_argument("username")
        p.add_argument("state", choices=["on", "off"])
        p.add_argument("--reason", default="", help="Why (recorded in the log); required.")

        p = sub.add_parser("token", help="Create a personal API token; prints only the token.")
        p.add_argument("username")
        p.add_argument("--expires-days", type=int, default=None)
        p.add_argument("--name", default="cli")

        p = sub.add_parser("token-revoke", help="Revoke a token by the prefix shown in listings.")
        p.add_argument("prefix")

        p = sub.add_parser("tenant-add", help="Create a tenant.")
        p.add_argument("slug")
        p.add_argument("--name", required=True)

        p = sub.add_parser("list", help="List users with their roles per tenant.")

    # -- actions ---------------------------------------------------------------

    def do_add_user(self, o: dict[str, Any]) -> None:
        if len(o["role"]) != len(o["tenant"]):
            raise CommandError("each --role needs its own --tenant (give them in pairs)")
        password = None
        if o["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("password: empty password on stdin")
        # Resolve every name first, so a typo creates nothing.
        pairs = [
            (role, selectors.tenant_by_slug(slug))
            for role, slug in zip(o["role"], o["tenant"], strict=True)
        ]
        for role, _ in pairs:
            services.validate_role(role)
        members = [selectors.tenant_by_slug(slug) for slug in o["member"]]
        with transaction.atomic():
            user = services.user_create(
                username=o["username"], email=o["email"], password=password, actor=None
            )
            if o["staff"]:
                services.user_set_staff(
                    user=user, is_staff=True, actor=None, reason="created with --staff"
                )
            for tenant in members:
                services.membership_add(user=user, tenant=tenant, actor=None)
            for role, tenant in pairs:
                services.role_grant(user=user, role=role, tenant=tenant, actor=None)
        self.stdout.write(f"Created user {user.username}")

    def _scope(self, o: dict[str, Any]) -> Tenant | None:
        return None if o["platform"] else selectors.tenant_by_slug(o["tenant"])

    def do_grant(self, o: dict[str, Any]) -> None:
        tenant = self._scope(o)
        grant, created = services.role_grant(
            user=o["username"], role=o["role"], tenant=tenant, actor=None, reason=o["reason"]
        )
        where = tenant.slug if tenant else "platform"
        self.stdout.write(
            f"{'Granted' if created else 'Already held:'} {grant.role} to {grant.user} in {where}"
        )

    def do_revoke(self, o: dict[str, Any]) -> None:
        tenant = self._scope(o)
        grant = services.role_revoke(
            user=o["username"], role=o["role"], tenant=tenant, actor=None, reason=o["reason"]
        )
        where = tenant.slug if tenant else "platform"
        self.stdout.write(f"Revoked {grant.role} from {grant.user} in {where}")

    def do_staff(self, o: dict[str, Any]) -> None:
        user = selectors.user_by_username(o["username"])
        was = user.is_staff
        services.user_set_staff(
            user=user, is_staff=o["state"] == "on", actor=None, reason=o["reason"]
        )
        now = "may" if user.is_staff else "may not"
        unchanged = " (unchanged)" if was == user.is_staff else ""
        self.stdout.write(f"{user.username} {now} sign in to the admin{unchanged}")

    def do_active(self, o: dict[str, Any]) -> None:
        user = selectors.user_by_username(o["username"])
        was = user.is_active
        services.user_set_active(
            user=user, active=o["state"] == "on", actor=None, reason=o["reason"]
        )
        now = "active" if user.is_active else "deactivated"
        unchanged = " (unchanged)" if was == user.is_active else ""
        self.stdout.write(f"{user.username} is {now}{unchanged}")

    def do_token(self, o: dict[str, Any]) -> None:
        user = selectors.user_by_username(o["username"])
        _, raw = services.token_create(
            user=user, name=o["name"], expires_days=o["expires_days"], actor=None
        )
        self.stdout.write(raw)

    def do_token_revoke(self, o: dict[str, Any]) -> None:
        matches = list(selectors.tokens_by_prefix(o["prefix"]))
        if not matches:
            raise CommandError(f"token: no token starts with '{o['prefix']}'")
        if len(matches) > 1:
            raise CommandError(
                f"token: '{o['prefix']}' matches {len(matches)} tokens; give more characters"
            )
        token = services.token_revoke(token=matches[0], actor=None)
        self.stdout.write(f"Revoked token {token.prefix}… of {token.user}")

    def do_tenant_add(self, o: dict[str, Any]) -> None:
        tenant = services.tenant_create(slug=o["slug"], name=o["name"], actor=None)
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name})")

    def do_list(self, o: dict[str, Any]) -> None:
        for user, access in selectors.users_with_access():
            summary = (
                "; ".join(f"{slug}: {', '.join(roles) or 'member'}" for slug, roles in access)
                or "-"
            )
            self.stdout.write(f"{user.username}\t{summary}")
