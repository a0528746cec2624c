"""``manage.py seed_demo``: demo tenants, one user per role, a registry, change requests, waivers and rollouts (idempotent).

The data is built in ``governance.demo``; this command runs it and prints the logins.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse
from typing_extensions import override

from governance.demo import DEMO_USERS, demo_password, seed, stage_versions
from reviews.lifecycle import subject_for


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
        self.print_stages()
        if not options["quiet_logins"]:
            self.stdout.write("Demo logins (username / password):")
            for username, where, role in DEMO_USERS:
                what = (
                    f"{role or 'member'} of {where}"
                    if where
                    else "platform administrator (Django admin too)"
                )
                self.stdout.write(f"  {username:<16} {demo_password(username):<22} {what}")

    def print_stages(self) -> None:
        """Where to see a version at each lifecycle stage, with its checklist."""
        shown = stage_versions()
        if not shown:
            return
        artifact = next(v.artifact for stage, v in shown if stage != "watched")
        deputy = artifact.deputy.username if artifact.deputy else "none"
        self.stdout.write(
            f"A version at each lifecycle stage, its checklist on its page ({artifact.path}: "
            f"action-eligible, owner {artifact.owner.username if artifact.owner else 'none'}, "
            f"deputy {deputy}; sign in as acme-admin):"
        )
        for stage, version in shown:
            change = subject_for(version).change
            why = [change.reference] if change else []
            if stage == "watched":
                why.append("active, its telemetry arriving: Active's watched criteria")
            via = f" ({'; '.join(why)})" if why else ""
            self.stdout.write(f"  {stage:<10} {version.get_absolute_url()}{via}")
        criteria = reverse("reviews:stage-criteria", kwargs={"tenant": artifact.tenant.slug})
        self.stdout.write(f"  {'criteria':<10} {criteria} (what each stage asks)")
