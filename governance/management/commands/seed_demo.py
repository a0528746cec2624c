"""``manage.py seed_demo``: demo tenants, one user per role, a registry, change requests, waivers and rollouts (idempotent).

The data is built in ``governance.demo``; this command runs it and prints the logins.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from typing_extensions import override

from governance.demo import DEMO_USERS, demo_password, seed


class Command(BaseCommand):
    help = "Create demo tenants and one user per role, with printed demo passwords. Safe to re-run."

    @override
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the logins.")

    @override
    def handle(self, *args: Any, **options: Any) -> None:
        seed()
        self.stdout.write(
            self.style.SUCCESS(
                "Demo data ready: tenants acme and globex and the shared platform tenant, "
                "with a registry, reviews, waivers and rollouts."
            )
        )
        if not options["quiet_logins"]:
            self.stdout.write("Demo logins (username / password):")
            for username, where, role in DEMO_USERS:
                what = (
                    f"{role or 'member'} of {where}"
                    if where
                    else "platform administrator (Django admin too)"
                )
                self.stdout.write(f"  {username:<16} {demo_password(username):<22} {what}")
