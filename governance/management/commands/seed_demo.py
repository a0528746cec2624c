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
        self._seed_registry(tenants)
        self.stdout.write(
            self.style.SUCCESS("Demo data ready: tenants acme and globex, with a registry.")
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

    def _seed_registry(self, tenants: dict[str, Tenant]) -> None:
        """A living registry: several classes and tenants, minor and major changes, dependencies."""
        from registry import selectors as registry_selectors
        from registry import services as registry

        registry.install_builtin_classes()
        author = User.objects.get(username="acme-author")
        acme, globex = tenants["acme"], tenants["globex"]

        def artifact(cls: str, tenant: Tenant, slug: str, title: str, summary: str):  # type: ignore[no-untyped-def]
            found = registry_selectors.Artifact.objects.filter(
                artifact_class__slug=cls, tenant=tenant, slug=slug
            ).first()
            return found or registry.artifact_create(
                artifact_class=registry_selectors.artifact_class_by_slug(cls),
                tenant=tenant,
                slug=slug,
                title=title,
                summary=summary,
                owner=author if tenant == acme else None,
                actor=None,
            )

        def publish(target, version: str, impact: str, reason: str, **content):  # type: ignore[no-untyped-def]
            deps = content.pop("deps", [])
            variables = content.pop("variables", None)
            published, _ = registry.version_publish(
                artifact=target,
                content=registry.Content(**content),
                impact=impact,
                reason=reason,
                version=version,
                input_variables=variables,
                dependencies=[d.pinned for d in deps],
                actor=None,
            )
            return published

        tone = artifact(
            "prompt-template", acme, "brand-tone", "Brand tone", "How every Acme assistant sounds."
        )
        tone1 = publish(
            tone,
            "1.0.0",
            "major",
            "First brand tone.",
            text="Be concise, warm and precise. Never promise delivery dates.",
        )
        qualify = artifact(
            "prompt",
            acme,
            "qualify-lead",
            "Qualify lead",
            "Decides whether an inbound lead is worth a sales call.",
        )
        publish(
            qualify,
            "1.0.0",
            "major",
            "First version.",
            text="You qualify leads for {{ product }}.\nCustomer: {{ customer }}\nAsk about budget and timeline.",
            deps=[tone1],
        )
        publish(
            qualify,
            "1.1.0",
            "minor",
            "Ask about the region too (optional).",
            text="You qualify leads for {{ product }}.\nCustomer: {{ customer }}\nRegion: {{ region }}\nAsk about budget, timeline and region.",
            variables=[
                {"name": "product"},
                {"name": "customer"},
                {"name": "region", "required": False},
            ],
            deps=[tone1],
        )
        publish(
            qualify,
            "1.1.1",
            "patch",
            "Fix wording.",
            text="You qualify leads for {{ product }}.\nCustomer: {{ customer }}\nRegion: {{ region }}\nAsk about their budget, timeline and region.",
            variables=[
                {"name": "product"},
                {"name": "customer"},
                {"name": "region", "required": False},
            ],
            deps=[tone1],
        )
        publish(
            qualify,
            "2.0.0",
            "major",
            "The CRM now sends an account id instead of the customer name.",
            text="You qualify leads for {{ product }}.\nAccount: {{ account_id }}\nRegion: {{ region }}\nAsk about their budget, timeline and region.",
            variables=[
                {"name": "product"},
                {"name": "account_id"},
                {"name": "region", "required": False},
            ],
            deps=[tone1],
        )
        rules = artifact(
            "routing-ruleset",
            acme,
            "support-routing",
            "Support routing",
            "Routes support tickets to queues.",
        )
        interface: dict[str, Any] = {
            "type": "object",
            "properties": {"intent": {"type": "string"}, "priority": {"type": "integer"}},
            "required": ["intent"],
        }
        publish(
            rules,
            "1.0.0",
            "major",
            "First rules.",
            data={
                "interface": interface,
                "rules": [{"if": "intent == 'billing'", "route": "billing"}],
            },
        )
        interface2 = {
            **interface,
            "properties": {**interface["properties"], "language": {"type": "string"}},
        }
        publish(
            rules,
            "1.1.0",
            "minor",
            "Route by language when given.",
            data={
                "interface": interface2,
                "rules": [
                    {"if": "intent == 'billing'", "route": "billing"},
                    {"if": "language == 'de'", "route": "dach"},
                ],
            },
        )
        corpus = artifact(
            "golden-corpus",
            globex,
            "triage-cases",
            "Triage cases",
            "Inputs with the expected route.",
        )
        publish(
            corpus,
            "1.0.0",
            "major",
            "Forty cases from last quarter.",
            data={"cases": [{"input": {"intent": "billing"}, "expected": "billing"}]},
        )
        model = artifact(
            "model",
            globex,
            "intent-classifier",
            "Intent classifier",
            "Small classifier used before routing.",
        )
        publish(
            model,
            "1.0.0",
            "major",
            "Initial weights.",
            file_bytes=b"demo-weights-v1",
            file_name="weights.bin",
        )
