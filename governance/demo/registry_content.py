"""A living registry: several classes and tenants, minor and major changes, dependencies."""

from __future__ import annotations

from typing import Any

from accounts.models import Tenant, User
from governance.demo.common import demo_artifact
from registry import services as registry
from registry.choices import ArtifactClass
from registry.models import Artifact, Version


def seed_registry(tenants: dict[str, Tenant]) -> None:
    """A living registry: several classes and tenants, minor and major changes, dependencies."""

    registry.install_builtin_classes()
    author = User.objects.get(username="acme-author")
    acme, globex = tenants["acme"], tenants["globex"]

    def artifact(cls: str, tenant: Tenant, slug: str, title: str, summary: str) -> Artifact:
        owner = author if tenant == acme else None
        return demo_artifact(cls, tenant, owner, slug, (title, summary))

    def publish(
        target: Artifact, version: str, impact: str, reason: str, **content: Any
    ) -> Version:
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
        ArtifactClass.PROMPT_TEMPLATE,
        acme,
        "brand-tone",
        "Brand tone",
        "How every Acme assistant sounds.",
    )
    tone1 = publish(
        tone,
        "1.0.0",
        "major",
        "First brand tone.",
        text="Be concise, warm and precise. Never promise delivery dates.",
    )
    qualify = artifact(
        ArtifactClass.PROMPT,
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
        ArtifactClass.ROUTING_RULESET,
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
        ArtifactClass.GOLDEN_CORPUS,
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
        ArtifactClass.MODEL,
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
