"""``manage.py accounts``: users, tenants, roles, personal and service tokens, passkeys from the
command line.

Runs as the system (the operator at the shell). Bad input exits 2 with one
``error:`` line on stderr (``ActionCommand``); nothing is half-written because every
service is atomic.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import selectors, services
from accounts.choices import Role, TokenScope
from accounts.models import Tenant
from governance.kernel.commands import ActionCommand


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

        p = sub.add_parser(
            "service-token", help="A tenant's service tokens (machines): create, list, revoke."
        )
        tokens = p.add_subparsers(dest="token_action", required=True, metavar="ACTION")
        t = tokens.add_parser("create", help="Create a service token; prints only the token.")
        t.add_argument("tenant", help="Tenant slug.")
        t.add_argument("name", help="The machine that will use it, e.g. sales-agent.")
        t.add_argument(
            "--scope",
            action="append",
            default=[],
            required=True,
            help=f"Scope to hold ({', '.join(TokenScope.values)}); repeat for several.",
        )
        t.add_argument(
            "--expires-at", default=None, help="ISO date-time; omit to keep it until revoked."
        )
        t = tokens.add_parser("list", help="List a tenant's service tokens (one per line).")
        t.add_argument("tenant", help="Tenant slug.")
        t = tokens.add_parser("revoke", help="Revoke a service token by its id or prefix.")
        t.add_argument("token", metavar="ID", help="Its id, or the prefix shown by list.")
        t.add_argument("--reason", default="", help="Why (recorded in the log); required.")

        self._passkey_arguments(sub)

        p = sub.add_parser("tenant-add", help="Create a tenant.")
        p.add_argument("slug")
        p.add_argument("--name", required=True)

        p = sub.add_parser("list", help="List users with their roles per tenant.")

    def _passkey_arguments(self, sub: Any) -> None:
        p = sub.add_parser("passkeys", help="People's passkeys (WebAuthn sign-off): list, revoke.")
        keys = p.add_subparsers(dest="passkey_action", required=True, metavar="ACTION")
        k = keys.add_parser(
            "list", help="List passkeys (one per line): id, user, name, state, dates, credential."
        )
        k.add_argument("--user", default=None, metavar="USERNAME", help="Only this person's.")
        k = keys.add_parser(
            "revoke",
            help="Revoke a passkey (a lost device): it signs nothing more, and the approvals "
            "it signed stop counting.",
        )
        k.add_argument("passkey", metavar="ID", help="Its id (from list), or its credential id.")
        k.add_argument("--reason", default="", help="Why (recorded in the log); required.")

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

    def do_service_token(self, o: dict[str, Any]) -> None:
        getattr(self, f"do_service_token_{o['token_action']}")(o)

    def do_service_token_create(self, o: dict[str, Any]) -> None:
        tenant = selectors.tenant_by_slug(o["tenant"])
        expires_at = None
        if o["expires_at"]:
            try:
                expires_at = parse_datetime(o["expires_at"])
            except ValueError:
                expires_at = None
            if expires_at is None:
                raise CommandError(f"expires_at: '{o['expires_at']}' is not an ISO date-time")
            if timezone.is_naive(expires_at):
                expires_at = timezone.make_aware(expires_at)
        _, raw = services.service_token_create(
            tenant=tenant, name=o["name"], scopes=o["scope"], expires_at=expires_at, actor=None
        )
        self.stdout.write(raw)

    def do_service_token_list(self, o: dict[str, Any]) -> None:
        tenant = selectors.tenant_by_slug(o["tenant"])
        for token in selectors.service_tokens_of(tenant):
            expires = token.expires_at.isoformat(timespec="seconds") if token.expires_at else "-"
            self.stdout.write(
                "\t".join(
                    [
                        str(token.pk),
                        f"{token.prefix}…",
                        token.name,
                        ",".join(token.scopes),
                        token.state(),
                        token.created_at.isoformat(timespec="seconds"),
                        expires,
                    ]
                )
            )

    def do_service_token_revoke(self, o: dict[str, Any]) -> None:
        token = selectors.service_token_by_reference(o["token"])
        token = services.service_token_revoke(token=token, actor=None, reason=o["reason"])
        self.stdout.write(
            f"Revoked service token {token.prefix}… ({token.tenant.slug}/{token.name})"
        )

    def do_passkeys(self, o: dict[str, Any]) -> None:
        getattr(self, f"do_passkeys_{o['passkey_action']}")(o)

    def do_passkeys_list(self, o: dict[str, Any]) -> None:
        user = selectors.user_by_username(o["user"]) if o["user"] else None
        for passkey in selectors.passkeys_of(user):
            used = (
                passkey.last_used_at.isoformat(timespec="seconds") if passkey.last_used_at else "-"
            )
            state = (
                f"revoked {passkey.revoked_at.isoformat(timespec='seconds')}"
                if passkey.revoked_at
                else "active"
            )
            self.stdout.write(
                "\t".join(
                    [
                        str(passkey.pk),
                        passkey.user.username,
                        passkey.name,
                        state,
                        passkey.created_at.isoformat(timespec="seconds"),
                        used,
                        passkey.credential_id,
                    ]
                )
            )

    def do_passkeys_revoke(self, o: dict[str, Any]) -> None:
        passkey = selectors.passkey_by_reference(o["passkey"])
        reason = o["reason"].strip()
        if not reason:
            raise CommandError("reason: say why the passkey is revoked (--reason)")
        if passkey.revoked_at is not None:
            self.stdout.write(
                f"Already revoked: passkey {passkey.pk} of {passkey.user.username} "
                f"({passkey.name}) on {passkey.revoked_at:%Y-%m-%d %H:%M}"
            )
            return
        passkey = services.passkey_revoke(passkey=passkey, actor=None, reason=reason)
        self.stdout.write(
            f"Revoked passkey {passkey.pk} of {passkey.user.username} ({passkey.name})"
        )

    def do_tenant_add(self, o: dict[str, Any]) -> None:
        tenant = services.tenant_create(slug=o["slug"], name=o["name"], actor=None)
        self.stdout.write(f"Created tenant {tenant.slug} ({tenant.name})")

    def do_list(self, _options: dict[str, Any]) -> None:
        for user, access in selectors.users_with_access():
            summary = (
                "; ".join(f"{slug}: {', '.join(roles) or 'member'}" for slug, roles in access)
                or "-"
            )
            self.stdout.write(f"{user.username}\t{summary}")
