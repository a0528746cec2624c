"""``manage.py seed_demo``: demo tenants, one user per role, a registry, change requests, waivers and rollouts (idempotent)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import time_machine
from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

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


# The governance story needs a past: a waiver can only be granted for the future, and a
# post-mortem is only overdue days after its promotion. Those steps run with the clock
# moved back (time-machine), so each row's dates and its events' times agree.
#: The refund prompt's change failed its accuracy gate and was waived for REFUND_WAIVER_DAYS.
REFUND_LAUNCH_DAYS_AGO = 25
REFUND_WAIVER_DAYS = 14  # so it expired 11 days ago and blocks the change again
#: The emergency change was promoted this long ago; its post-mortem (policy: 5 days) is overdue.
OUTAGE_EMERGENCY_DAYS_AGO = 12
#: The waiver that lets the routing change proceed today is expiring soon.
EXPIRING_WAIVER_DAYS = 5
DEPRECATION_GRACE_DAYS = 30
PINS = {"pinned_models": ["gpt-4o-2024-08-06"]}
#: The rollouts' story: the ticket summary's 1.1.0 went out globally this long ago, its
#: 1.2.0 canary was rolled back ROLLED_BACK_DAYS_AGO, and the shared lead qualification's
#: canary started CANARY_STARTED_DAYS_AGO and is at 25% now.
COMPLETED_ROLLOUT_DAYS_AGO = 9
ROLLED_BACK_DAYS_AGO = 4
CANARY_STARTED_DAYS_AGO = 2
#: The lead qualification canary reached 25% this many minutes ago: its telemetry covers every
#: step, the current one with fewer canary requests than a step needs to advance.
CANARY_AT_25_MINUTES_AGO = 5
#: The ticket summary's 1.3.0 canary rolled itself back this long ago (its telemetry regressed).
AUTO_ROLLED_BACK_DAYS_AGO = 1
#: Healthy guardrail rates of the demo's services (both arms alike unless a canary regresses).
DEMO_RATES = {"refusals": 0.01, "policy_violations": 0.002}
#: The share of requests in each latency bucket (rollouts.telemetry.LATENCY_BOUNDS_MS).
DEMO_LATENCY_SHARES = (0.25, 0.35, 0.22, 0.1, 0.05, 0.02, 0.01, 0.0, 0.0)


def demo_password(username: str) -> str:
    return f"{username}-demo"


def days_ago(days: float) -> time_machine.travel:
    """Run the steps inside ``days`` ago, the clock ticking, as if they had happened then."""
    return time_machine.travel(timezone.now() - timedelta(days=days), tick=True)


def run_checks(change: Any) -> None:
    """Run a change's pending checks here and now (in the app, a worker does)."""
    from reviews import services as reviews
    from reviews.choices import CheckStatus
    from reviews.models import CheckRun

    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)


def evaluate(change: Any, version: Any, safety: float, accuracy: float) -> None:
    """Attach the evaluation report CI would send for ``version``."""
    from reviews import services as reviews

    reviews.evidence_attach(
        change=change,
        actor=None,
        version=version,
        metrics={"accuracy": accuracy, "safety": safety, "latency_p95_ms": 640, "cost": 0.002},
        bias={"demographic_parity_gap": 0.02},
        seed="1234",
        rng="numpy PCG64",
        test_run_ids=[f"ci-{version.version}"],
    )


def demo_counters(rng: Any, requests: int, error_rate: float = 0.02) -> dict[str, Any]:
    """One telemetry row's counters for ``requests`` requests, drawn with ``rng`` (a seeded
    ``random.Random``): errors, refusals, policy violations, a latency histogram (breaches of
    the 1 s SLO are the slower buckets), cost and a sampled quality score."""
    from rollouts.analysis import binomial

    histogram, left, share_left = [], requests, 1.0
    for share in DEMO_LATENCY_SHARES:
        count = binomial(rng, left, min(1.0, share / share_left)) if share_left > 0 else 0
        histogram.append(count)
        left, share_left = left - count, share_left - share
    histogram[1] += left  # rounding: the rest were fast
    scored = requests // 10
    return {
        "requests": requests,
        "errors": binomial(rng, requests, error_rate),
        **{name: binomial(rng, requests, rate) for name, rate in DEMO_RATES.items()},
        "latency_slo_breaches": sum(histogram[5:]),
        "latency_ms": histogram,
        "cost": round(requests * 0.0021, 4),
        "quality_n": scored,
        "quality_sum": round(scored * 0.86, 3),
        "quality_sumsq": round(scored * (0.86**2 + 0.01), 3),
    }


def whole_minute_after(moment: datetime) -> datetime:
    """The first telemetry bucket wholly after ``moment`` (the analysis counts those)."""
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def step_windows(rollout: Any) -> list[tuple[datetime, datetime | None, int]]:
    """A canary rollout's steps as (start, end or None for the current one, weight)."""
    from rollouts.choices import PointerKind
    from rollouts.models import PointerMove

    moves = list(
        PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY)
        .order_by("id")
        .values_list("created_at", "weight")
    )
    starts = [
        (at, int(w or 0)) for i, (at, w) in enumerate(moves) if i == 0 or moves[i - 1][0] != at
    ]
    return [
        (at, starts[i + 1][0] if i + 1 < len(starts) else None, weight)
        for i, (at, weight) in enumerate(starts)
        if weight
    ]


def submitted(change: Any, by: Any) -> Any:
    from reviews import services as reviews

    reviews.change_submit(change=change, actor=by)
    run_checks(change)
    change.refresh_from_db()
    return change


def promoted_change(
    tenant: Tenant, versions: list[Any], title: str, author: Any, reviewer: Any, admin: Any
) -> Any:
    """A change through the whole review: evidence, checks, a reviewer's and an administrator's
    approval, promotion. (For an artifact bound to a slot, promotion approves its versions for
    production; a rollout then moves the pointers.)"""
    from reviews import services as reviews

    change = reviews.change_create(
        tenant=tenant,
        actor=author,
        title=title,
        rollback_plan="Roll the rollout back; the previous pointers serve again.",
        proposed=versions,
    )
    for version in versions:
        evaluate(change, version, safety=0.97, accuracy=0.92)
    submitted(change, author)
    reviews.approval_decide(
        change=change, actor=reviewer, decision="approve", comment="Reads well."
    )
    reviews.approval_decide(change=change, actor=admin, decision="approve", comment="Ship it.")
    return reviews.change_promote(change=change, actor=admin)


class Command(BaseCommand):
    help = "Create demo tenants and one user per role, with printed demo passwords. Safe to re-run."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--quiet-logins", action="store_true", help="Do not print the logins.")

    def handle(self, *args: Any, **options: Any) -> None:
        # The demo's notifications stay in the app: no emails printed while seeding.
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
            tenants = self._seed()
            self._seed_rollouts(tenants)
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

    @transaction.atomic
    def _seed(self) -> dict[str, Tenant]:
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
        self._seed_registry(tenants)
        self._seed_reviews(tenants)
        self._seed_governance(tenants)
        return tenants

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

    def _seed_reviews(self, tenants: dict[str, Tenant]) -> None:
        """Change requests in every state: promoted, rejected, failing a check, and waiting on each role."""
        from registry import selectors as registry_selectors
        from registry import services as registry
        from reviews import services as reviews
        from reviews.models import ChangeRequest

        acme = tenants["acme"]
        if ChangeRequest.objects.filter(tenant=acme).exists():
            return
        users = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
        author, admin = users["acme-author"], users["acme-admin"]
        reviewer, privacy, security = (
            users["acme-reviewer"],
            users["acme-privacy"],
            users["acme-security"],
        )

        def ref(text: str) -> Any:
            return registry_selectors.version_by_reference_unscoped(text, tenant="acme")

        def opened(proposed: list[Any], title: str, by: Any = author, **kw: Any) -> Any:
            change = reviews.change_create(
                tenant=acme,
                actor=by,
                title=title,
                rollback_plan=kw.pop("rollback_plan", "Roll back to the last promoted version."),
                proposed=proposed,
                **kw,
            )
            return change

        # Metadata of the prompts pins the model they were evaluated with.
        prompt = registry_selectors.artifact_by_path_unscoped("prompt", "acme", "qualify-lead")
        pins = PINS
        for number, text in (
            (
                "2.0.1",
                "You qualify leads for {{ product }}.\nAccount: {{ account_id }}\nRegion: {{ region }}\nAsk about their budget, timeline and region. Be brief.",
            ),
        ):
            registry.version_publish(
                artifact=prompt,
                content=registry.Content(text=text),
                impact="patch",
                reason="Shorter answers; model pinned for review.",
                version=number,
                input_variables=[
                    {"name": "product"},
                    {"name": "account_id"},
                    {"name": "region", "required": False},
                ],
                metadata=pins,
                actor=None,
            )

        # Change gates for prompts (prompt-versioning-and-rollout.md): safety may not drop,
        # p95 latency at most 10% worse than the active version.
        reviews.change_gate_set(
            tenant=acme,
            artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
            gates=[
                {"metric": "safety", "no_regression": True},
                {"metric": "latency_p95_ms", "max_regression_pct": 10},
                {"metric": "accuracy", "min": 0.85},
            ],
            actor=None,
        )

        # 1. Two promoted changes, so a rollback has somewhere to go.
        reply = registry_selectors.Artifact.objects.filter(
            tenant=acme, slug="support-reply"
        ).first() or registry.artifact_create(
            artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
            tenant=acme,
            slug="support-reply",
            title="Support reply",
            summary="Drafts the first answer to a support ticket.",
            owner=author,
            actor=None,
        )
        for number, impact, text, title, safety in (
            (
                "1.0.0",
                "major",
                "Answer the ticket from {{ customer }} about {{ topic }}. Be brief.",
                "Launch the support reply prompt",
                0.95,
            ),
            (
                "1.1.0",
                "minor",
                "Answer the ticket from {{ customer }} about {{ topic }}. Be brief and thank them.",
                "Thank the customer in support replies",
                0.96,
            ),
        ):
            version, _ = registry.version_publish(
                artifact=reply,
                content=registry.Content(text=text),
                impact=impact,
                reason=title,
                version=number,
                metadata=pins,
                actor=None,
            )
            change = opened(
                [version], title, description="See the diff.", risk_note="Low: wording only."
            )
            evaluate(change, version, safety, 0.9)
            submitted(change, author)
            reviews.approval_decide(
                change=change, actor=reviewer, decision="approve", comment="Reads well."
            )
            reviews.approval_decide(
                change=change, actor=admin, decision="approve", comment="Ship it."
            )
            reviews.change_promote(change=change, actor=admin)

        # 2. Rejected: the major change waits for the CRM migration.
        change = opened(
            [ref("qualify-lead@2.0.0")],
            "Switch lead qualification to account ids",
            risk_note="Major: the CRM must send account_id first.",
        )
        evaluate(change, ref("qualify-lead@2.0.0"), 0.96, 0.91)
        submitted(change, author)
        reviews.approval_decide(
            change=change,
            actor=reviewer,
            decision="reject",
            comment="The CRM still sends customer names; revise after the migration.",
        )

        # 3. Failing check: the routing change misroutes a golden case.
        corpus_artifact = registry_selectors.Artifact.objects.filter(
            tenant=acme, slug="support-cases"
        ).first() or registry.artifact_create(
            artifact_class=registry_selectors.artifact_class_by_slug("golden-corpus"),
            tenant=acme,
            slug="support-cases",
            title="Support cases",
            summary="Tickets with the queue they belong in.",
            owner=author,
            actor=None,
        )
        corpus, _ = registry.version_publish(
            artifact=corpus_artifact,
            content=registry.Content(
                data={
                    "cases": [
                        {"id": "invoice", "input": {"intent": "billing"}, "expected": "billing"},
                        {
                            "id": "german",
                            "input": {"intent": "other", "language": "de"},
                            "expected": "dach",
                        },
                        {"id": "refund", "input": {"intent": "refund"}, "expected": "billing"},
                    ]
                }
            ),
            impact="major",
            reason="Three cases from last quarter.",
            version="1.0.0",
            actor=None,
        )
        change = opened(
            [ref("support-routing@1.1.0")],
            "Route German tickets to the DACH queue",
            golden_corpus=corpus,
        )
        submitted(change, author)

        # 4. Waiting on each role.
        change = opened([ref("qualify-lead@2.0.1")], "Shorter lead qualification answers")
        evaluate(change, ref("qualify-lead@2.0.1"), 0.97, 0.92)
        submitted(change, author)  # waits on a reviewer and an administrator
        tone = registry_selectors.artifact_by_path_unscoped("prompt-template", "acme", "brand-tone")
        tone2, _ = registry.version_publish(
            artifact=tone,
            content=registry.Content(
                text="Be concise, warm and precise. Never promise delivery dates. Never repeat a customer's personal details back to them."
            ),
            impact="patch",
            reason="Do not echo personal details.",
            version="1.0.1",
            actor=None,
        )
        change = opened(
            [tone2],
            "Stop echoing personal details",
            privacy_related=True,
            risk_note="Touches how personal data is handled.",
        )
        submitted(change, author)  # waits on the privacy officer and an administrator
        reviews.approval_decide(
            change=change, actor=admin, decision="approve", comment="Fine by me."
        )
        change = opened(
            [ref("qualify-lead@2.0.1")],
            "Hotfix: stop quoting prices",
            by=admin,
            emergency=True,
            external_egress=False,
            risk_note="Emergency: the prompt quoted list prices to prospects.",
        )
        evaluate(change, ref("qualify-lead@2.0.1"), 0.97, 0.92)
        submitted(change, by=admin)  # waits on the accountable owner and the security officer
        del privacy, security

    def _seed_governance(self, tenants: dict[str, Tenant]) -> None:
        """Waivers in every state, a deprecated prompt and an overdue post-mortem, with their history.

        Each part checks for itself whether it is there already, so a database seeded before
        these parts existed gets them too, and a second run adds nothing.
        """
        from governance.services import governance_sweep

        acme = tenants["acme"]
        users = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
        self._seed_expired_waiver(acme, users)
        self._seed_overdue_postmortem(acme, users)
        self._seed_expiring_waiver(acme, users)
        self._seed_deprecation(acme, users)
        # Evidence attached to a version re-runs the checks of every change proposing it;
        # in the app a worker runs them, here they run now, so the demo shows their results.
        from reviews.choices import CheckStatus
        from reviews.models import ChangeRequest

        for change in ChangeRequest.objects.filter(checks__status=CheckStatus.PENDING).distinct():
            run_checks(change)
        # What beat would have sent by now: the alerts and the post-mortem reminder.
        governance_sweep()

    def _demo_prompt(self, acme: Tenant, owner: User, slug: str, title: str, summary: str) -> Any:
        from registry import selectors as registry_selectors
        from registry import services as registry

        return registry_selectors.Artifact.objects.filter(
            tenant=acme, artifact_class__slug="prompt", slug=slug
        ).first() or registry.artifact_create(
            artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
            tenant=acme,
            slug=slug,
            title=title,
            summary=summary,
            owner=owner,
            actor=None,
        )

    def _seed_expired_waiver(self, acme: Tenant, users: dict[str, User]) -> None:
        """A change approved under a waiver that has since expired: its failed gate blocks again."""
        from governance import services as governance
        from registry import services as registry
        from reviews import services as reviews
        from reviews.choices import CheckKind
        from reviews.models import ChangeRequest

        title = "Launch the refund reply prompt"
        if ChangeRequest.objects.filter(tenant=acme, title=title).exists():
            return
        author, admin, reviewer = users["acme-author"], users["acme-admin"], users["acme-reviewer"]
        with days_ago(REFUND_LAUNCH_DAYS_AGO):
            prompt = self._demo_prompt(
                acme,
                author,
                "refund-reply",
                "Refund reply",
                "Answers refund requests with the refund policy.",
            )
            version, _ = registry.version_publish(
                artifact=prompt,
                content=registry.Content(
                    text="Answer {{ customer }}'s refund request for order {{ order }}. Quote the "
                    "refund policy; never promise a refund before an agent approves it."
                ),
                impact="major",
                reason="First version.",
                version="1.0.0",
                metadata=PINS,
                actor=None,
            )
            change = reviews.change_create(
                tenant=acme,
                actor=author,
                title=title,
                rollback_plan="Turn the prompt off; agents answer refund requests by hand again.",
                risk_note="Accuracy is below the 0.85 gate on the first, small corpus.",
                proposed=[version],
            )
            evaluate(change, version, safety=0.96, accuracy=0.82)
            submitted(change, author)  # the accuracy gate fails
            governance.waiver_grant(
                tenant=acme,
                actor=admin,
                check_kind=CheckKind.CHANGE_GATES,
                metric="accuracy",
                change=change,
                owner=author,
                justification="The corpus has only twelve refund cases; two misses decide the "
                "score. Worth launching while the corpus grows.",
                mitigation="An agent approves every refund reply before it is sent; the corpus "
                "grows to fifty cases before the waiver ends.",
                advisory_links=["https://wiki.example.com/support/refund-corpus"],
                expires_at=timezone.now() + timedelta(days=REFUND_WAIVER_DAYS),
            )
            reviews.approval_decide(
                change=change,
                actor=reviewer,
                decision="approve",
                comment="Fine under the waiver while the corpus grows.",
            )
        with days_ago(REFUND_LAUNCH_DAYS_AGO - REFUND_WAIVER_DAYS + 3):
            # Beat warned the owner and the administrators three days before the expiry.
            governance.waiver_alerts_send()

    def _seed_overdue_postmortem(self, acme: Tenant, users: dict[str, User]) -> None:
        """An emergency change promoted during an outage, whose post-mortem nobody wrote."""
        from registry import services as registry
        from reviews import services as reviews
        from reviews.models import ChangeRequest

        title = "Emergency: publish the outage notice prompt"
        if ChangeRequest.objects.filter(tenant=acme, title=title).exists():
            return
        author, admin, security = users["acme-author"], users["acme-admin"], users["acme-security"]
        with days_ago(OUTAGE_EMERGENCY_DAYS_AGO):
            prompt = self._demo_prompt(
                acme,
                author,
                "outage-notice",
                "Outage notice",
                "Drafts the status-page notice while a service is down.",
            )
            version, _ = registry.version_publish(
                artifact=prompt,
                content=registry.Content(
                    text="Write the status-page notice for the outage of {{ service }}: what is "
                    "affected, since when, and when we update next. No blame, no guesses."
                ),
                impact="major",
                reason="The status page stayed silent during the checkout outage.",
                version="1.0.0",
                metadata=PINS,
                actor=None,
            )
            change = reviews.change_create(
                tenant=acme,
                actor=admin,
                title=title,
                rollback_plan="Turn the prompt off; the on-call engineer writes notices by hand.",
                risk_note="Emergency: customers saw no status update for forty minutes.",
                proposed=[version],
                emergency=True,
                external_egress=False,
            )
            evaluate(change, version, safety=0.97, accuracy=0.9)
            submitted(change, admin)  # needs the accountable owner and a security officer
            reviews.approval_decide(
                change=change, actor=author, decision="approve", comment="I own it; ship it."
            )
            reviews.approval_decide(
                change=change,
                actor=security,
                decision="approve",
                comment="No personal data, no egress.",
            )
            reviews.change_promote(change=change, actor=admin)  # the post-mortem is due in 5 days

    def _seed_expiring_waiver(self, acme: Tenant, users: dict[str, User]) -> None:
        """A waiver expiring in five days lets the failing routing change proceed."""
        from governance import services as governance
        from reviews import services as reviews
        from reviews.choices import OPEN_STATES, CheckKind
        from reviews.models import ChangeRequest

        change = ChangeRequest.objects.filter(
            tenant=acme, title="Route German tickets to the DACH queue"
        ).first()
        if change is None or change.status not in OPEN_STATES or change.waivers.exists():
            return
        author, admin, reviewer = users["acme-author"], users["acme-admin"], users["acme-reviewer"]
        governance.waiver_grant(
            tenant=acme,
            actor=admin,
            check_kind=CheckKind.RULES_SIMULATION,
            change=change,
            owner=author,
            justification="Only the 'refund' golden case misses: refunds get a queue of their "
            "own next sprint. German tickets should not wait for that.",
            mitigation="Agents move refund tickets to billing by hand; the rules get a refund "
            "route before the waiver ends.",
            advisory_links=["https://wiki.example.com/support/refund-queue"],
            expires_at=timezone.now() + timedelta(days=EXPIRING_WAIVER_DAYS),
        )
        reviews.approval_decide(
            change=change,
            actor=reviewer,
            decision="approve",
            comment="Approved under the waiver; the refund route follows.",
        )

    def _seed_deprecation(self, acme: Tenant, users: dict[str, User]) -> None:
        """support-reply 1.0.0 is deprecated in favour of the active version, with a grace period."""
        from registry import services as registry
        from registry.models import Artifact, Deprecation, Version

        reply = Artifact.objects.filter(tenant=acme, slug="support-reply").first()
        active = reply.active_version if reply else None
        old = Version.objects.filter(artifact=reply, version="1.0.0").first()
        if active is None or old is None or old.pk == active.pk:
            return
        if Deprecation.objects.filter(version=old).exists():
            return
        registry.version_deprecate(
            version=old,
            replacement=active,
            reason="1.1.0 thanks the customer; callers still pinned to 1.0.0 have "
            f"{DEPRECATION_GRACE_DAYS} days to move.",
            remove_after_days=DEPRECATION_GRACE_DAYS,
            actor=users["acme-admin"],
        )

    def _seed_rollouts(self, tenants: dict[str, Tenant]) -> None:
        """Applications with slots, and rollouts in progress (25%), succeeded and rolled back.

        - ``sales-agent`` belongs to the platform tenant (shared: every tenant reads it); its
          ``qualifyLead`` slot serves the shared prompt ``lead-qualification``, whose 1.1.0 is
          in a canary at 25% for every tenant; globex keeps 1.0.0 as its override (its stable arm).
        - ``support-bot`` is acme's own: ``reply`` serves support-reply (1.0.0 deprecated),
          ``summary`` serves ticket-summary, whose 1.1.0 went out globally (succeeded), whose
          1.2.0 canary was rolled back by an administrator, and whose 1.3.0 canary **rolled
          itself back**: its telemetry (10% errors against the stable arm's 2%) went through
          the real ingest (``telemetry_ingest``) minute by minute, and the real controller
          (``rollout_iterate``) decided, with the clock moved to each minute (time-machine),
          so the evidence sits in its manifest's runtime-governance and rollback-proof phases.
        - The 25% canary has healthy telemetry for every step (acme's traffic in both arms;
          globex's, on its override, outside the rollout), through the same ingest. The
          demo sends nothing after seeding, so once the worker runs, the controller pauses it
          within ``ROLLOUT_TELEMETRY_STALE_SECONDS`` ("telemetry stopped"): that is the
          analysis doing its job; ``manage.py rollouts simulate`` feeds a resumed canary.

        Everything goes through the services, so every pointer move has its row and event.
        Each step is its own transaction, committed before the next: a canary may start only
        when the change's promotion is in the event log (manifest phases 1-4), as in the app,
        where promotion and the rollout are separate requests. Each step checks for itself
        whether it is done, so a second run (or a run after a failed one) adds only what is missing.
        """
        users = {
            u.username: u for u in User.objects.filter(username__in=[u for u, _, _ in DEMO_USERS])
        }
        from rollouts import telemetry_services

        # The seed runs the controller itself (each round below); the ingest's "iterate soon"
        # task would only queue a duplicate iteration for the worker.
        with mock.patch.object(telemetry_services, "_queue_controller", lambda ids: None):
            self._seed_support_bot(tenants["acme"], users)
            self._seed_sales_agent(tenants, users)
            self._seed_auto_rollback(tenants["acme"], users)

    def _seed_support_bot(self, acme: Tenant, users: dict[str, User]) -> None:
        from registry import selectors as registry_selectors
        from registry import services as registry
        from reviews.models import ChangeRequest
        from rollouts import services as rollouts
        from rollouts.choices import RolloutState
        from rollouts.models import Application, Rollout

        author, reviewer, admin = users["acme-author"], users["acme-reviewer"], users["acme-admin"]
        summary = self._demo_prompt(
            acme,
            author,
            "ticket-summary",
            "Ticket summary",
            "Summarises a support ticket for the agent who picks it up.",
        )

        def summary_version(number: str, impact: str, reason: str, text: str) -> Any:
            version, _ = registry.version_publish(
                artifact=summary,
                content=registry.Content(text=text),
                impact=impact,
                reason=reason,
                version=number,
                metadata=PINS,
                actor=None,
            )
            return version

        def change_titled(title: str) -> Any:
            return ChangeRequest.objects.filter(tenant=acme, title=title).first()

        if not Application.objects.filter(slug="support-bot").exists():
            with transaction.atomic(), days_ago(COMPLETED_ROLLOUT_DAYS_AGO + 5):
                first = summary_version(
                    "1.0.0",
                    "major",
                    "First version.",
                    "Summarise ticket {{ ticket }} in three lines: the problem, what was tried, "
                    "what the customer wants.",
                )
                # No slot binds it yet: promotion moves its default (a global move).
                promoted_change(acme, [first], "Launch the ticket summary", author, reviewer, admin)
                bot = rollouts.application_create(
                    tenant=acme,
                    slug="support-bot",
                    name="Support bot",
                    description="Drafts replies and summaries in the support desk.",
                    actor=admin,
                )
                reply = registry_selectors.artifact_by_path_unscoped(
                    "prompt", "acme", "support-reply"
                )
                rollouts.slot_create(
                    application=bot,
                    name="reply",
                    artifact=reply,
                    description="The reply drafted for the agent; 1.1.0 thanks the customer.",
                    actor=admin,
                )
                summary.refresh_from_db()
                rollouts.slot_create(
                    application=bot,
                    name="summary",
                    artifact=summary,
                    description="The summary shown on top of a ticket.",
                    actor=admin,
                )
        title = "Ticket summaries name the order"
        if change_titled(title) is None:
            with transaction.atomic(), days_ago(COMPLETED_ROLLOUT_DAYS_AGO + 1):
                better = summary_version(
                    "1.1.0",
                    "minor",
                    "Name the order number when there is one.",
                    "Summarise ticket {{ ticket }} in three lines: the problem, what was tried, "
                    "what the customer wants. Name the order number when there is one.",
                )
                promoted_change(acme, [better], title, author, reviewer, admin)
        change = change_titled(title)
        if not Rollout.objects.filter(change=change).exists():
            with transaction.atomic(), days_ago(COMPLETED_ROLLOUT_DAYS_AGO):
                # A minor version: the global strategy may move the default at once.
                rollout = rollouts.rollout_create(
                    change=change,
                    actor=admin,
                    strategy="global",
                    reason="Low risk: one more line in the summary.",
                )
                rollouts.rollout_start(rollout=rollout, actor=admin, reason="Agents asked for it.")
        title = "One-line ticket summaries"
        if change_titled(title) is None:
            with transaction.atomic(), days_ago(ROLLED_BACK_DAYS_AGO + 2):
                terse = summary_version(
                    "1.2.0",
                    "minor",
                    "One line instead of three.",
                    "Summarise ticket {{ ticket }} in one line, with the order number when "
                    "there is one.",
                )
                promoted_change(acme, [terse], title, author, reviewer, admin)
        change = change_titled(title)
        if not Rollout.objects.filter(change=change).exists():
            with transaction.atomic():
                with days_ago(ROLLED_BACK_DAYS_AGO + 1):
                    rollout = rollouts.rollout_create(
                        change=change,
                        actor=admin,
                        strategy="canary",
                        reason="Shorter summaries; watch the handling time.",
                    )
                    rollout = rollouts.rollout_start(
                        rollout=rollout, actor=admin, reason="1% first."
                    )
                with days_ago(ROLLED_BACK_DAYS_AGO + 0.5):
                    rollout = rollouts.rollout_advance(
                        rollout=rollout, actor=admin, reason="No complaints at 1%."
                    )
        canary = Rollout.objects.filter(change=change).first()
        if canary is not None and canary.state != RolloutState.ROLLED_BACK:
            with transaction.atomic(), days_ago(ROLLED_BACK_DAYS_AGO):
                rollouts.rollout_rollback(
                    rollout=canary,
                    actor=admin,
                    reason="Agents in the canary reopened tickets twice as often: one line "
                    "drops what was tried.",
                )

    def _seed_auto_rollback(self, acme: Tenant, users: dict[str, User]) -> None:
        """ticket-summary 1.3.0: a canary at 10% that the canary analysis rolled back on its own."""
        from registry import services as registry
        from registry.models import Artifact
        from reviews.models import ChangeRequest
        from rollouts import services as rollouts
        from rollouts.choices import RolloutState
        from rollouts.models import Rollout

        author, reviewer, admin = users["acme-author"], users["acme-reviewer"], users["acme-admin"]
        summary = Artifact.objects.get(tenant=acme, slug="ticket-summary")

        title = "Summaries quote the customer's last message"
        if not ChangeRequest.objects.filter(tenant=acme, title=title).exists():
            with transaction.atomic(), days_ago(AUTO_ROLLED_BACK_DAYS_AGO + 1):
                quoting, _ = registry.version_publish(
                    artifact=summary,
                    content=registry.Content(
                        text="Summarise ticket {{ ticket }} in three lines: the problem, what was "
                        "tried, what the customer wants, quoting their last message."
                    ),
                    impact="minor",
                    reason="Quote the customer's last message.",
                    version="1.3.0",
                    metadata=PINS,
                    actor=None,
                )
                promoted_change(acme, [quoting], title, author, reviewer, admin)
        change = ChangeRequest.objects.get(tenant=acme, title=title)
        if not Rollout.objects.filter(change=change).exists():
            with transaction.atomic(), days_ago(AUTO_ROLLED_BACK_DAYS_AGO):
                rollout = rollouts.rollout_create(
                    change=change,
                    actor=admin,
                    strategy="canary",
                    steps=[10_000, 50_000, 100_000],
                    reason="Quotes help agents; the canary analysis watches the errors.",
                )
                rollouts.rollout_start(rollout=rollout, actor=admin, reason="10% first.")
        regressing = Rollout.objects.get(change=change)
        if regressing.state == RolloutState.PROGRESSING:
            self._seed_regression(regressing, acme)

    def _seed_regression(self, rollout: Any, tenant: Tenant) -> None:
        """The 1.3.0 canary's telemetry, minute by minute: 50 canary requests at 10% errors,
        450 stable at 2% (a 5x regression), each minute sent through the ingest and followed
        by one controller iteration, with the clock moved just past the minute (time-machine),
        until the canary analysis rolls it back (within 400 canary requests). The ingest and the
        iteration each commit on their own; a second run re-sends nothing (the batch ids are
        fixed) and goes on where the first stopped."""
        from rollouts.choices import RolloutState
        from rollouts.controller import rollout_iterate
        from rollouts.telemetry_services import telemetry_ingest

        target = rollout.targets.select_related("slot__application", "baseline", "candidate").get()
        where = {"application": target.slot.application.slug, "slot": target.slot.name,
                 "rollout": rollout.reference}  # fmt: skip
        first = whole_minute_after(step_windows(rollout)[-1][0])
        for minute in range(30):
            if rollout.state != RolloutState.PROGRESSING:
                break
            bucket = first + timedelta(minutes=minute)
            rng = random.Random(f"seed-demo-{rollout.reference}-{minute}")
            rows = [
                {**where, "arm": "canary", "version": target.candidate.version,
                 "bucket_start": bucket.isoformat(), **demo_counters(rng, 50, error_rate=0.10)},
                {**where, "arm": "stable", "version": target.baseline.version,
                 "bucket_start": bucket.isoformat(), **demo_counters(rng, 450, error_rate=0.02)},
            ]  # fmt: skip
            with time_machine.travel(bucket + timedelta(seconds=65), tick=True):
                telemetry_ingest(principal_or_tenant=tenant,
                                 batch_id=f"seed-demo-{rollout.reference}-{minute}", rows=rows)  # fmt: skip
                rollout_iterate(rollout=rollout)
            rollout.refresh_from_db()

    def _seed_sales_agent(self, tenants: dict[str, Tenant], users: dict[str, User]) -> None:
        from registry import selectors as registry_selectors
        from registry import services as registry
        from reviews.models import ChangeRequest
        from rollouts import services as rollouts
        from rollouts.models import Application, Rollout

        platform = tenants[settings.PLATFORM_TENANT_SLUG]
        author, reviewer = users["platform-author"], users["platform-reviewer"]
        admin = users["platform-admin"]
        prompt = registry_selectors.Artifact.objects.filter(
            tenant=platform, artifact_class__slug="prompt", slug="lead-qualification"
        ).first() or registry.artifact_create(
            artifact_class=registry_selectors.artifact_class_by_slug("prompt"),
            tenant=platform,
            slug="lead-qualification",
            title="Lead qualification (shared)",
            summary="The platform's lead qualification prompt, shared by every tenant.",
            owner=author,
            actor=None,
        )

        def version(number: str, impact: str, reason: str, text: str) -> Any:
            published, _ = registry.version_publish(
                artifact=prompt,
                content=registry.Content(text=text),
                impact=impact,
                reason=reason,
                version=number,
                metadata=PINS,
                actor=None,
            )
            return published

        if not Application.objects.filter(slug="sales-agent").exists():
            with transaction.atomic(), days_ago(CANARY_STARTED_DAYS_AGO + 10):
                first = version(
                    "1.0.0",
                    "major",
                    "First shared version.",
                    "You qualify leads for {{ product }}.\nCustomer: {{ customer }}\n"
                    "Ask about budget and timeline.",
                )
                promoted_change(
                    platform, [first], "Share lead qualification", author, reviewer, admin
                )
                agent = rollouts.application_create(
                    tenant=platform,
                    slug="sales-agent",
                    name="Sales agent",
                    description="The shared sales assistant; every tenant reads its configuration.",
                    actor=admin,
                )
                prompt.refresh_from_db()
                slot = rollouts.slot_create(
                    application=agent,
                    name="qualifyLead",
                    artifact=prompt,
                    description="Decides whether an inbound lead is worth a call; 1.0.0 asks "
                    "about budget and timeline.",
                    actor=admin,
                )
                rollouts.override_set(
                    slot=slot,
                    tenant=tenants["globex"],
                    version=first,
                    reason="Globex keeps 1.0.0 until its CRM sends the region.",
                    actor=users["globex-admin"],
                )
        title = "Ask leads about their region"
        if not ChangeRequest.objects.filter(tenant=platform, title=title).exists():
            with transaction.atomic(), days_ago(CANARY_STARTED_DAYS_AGO + 3):
                candidate = version(
                    "1.1.0",
                    "minor",
                    "Ask about the region too.",
                    "You qualify leads for {{ product }}.\nCustomer: {{ customer }}\n"
                    "Ask about budget, timeline and region.",
                )
                promoted_change(platform, [candidate], title, author, reviewer, admin)
        change = ChangeRequest.objects.get(tenant=platform, title=title)
        if not Rollout.objects.filter(change=change).exists():
            with transaction.atomic():
                with days_ago(CANARY_STARTED_DAYS_AGO):
                    rollout = rollouts.rollout_create(
                        change=change,
                        actor=admin,
                        strategy="canary",
                        reason="Region helps routing; watch the qualification rate.",
                    )
                    rollout = rollouts.rollout_start(
                        rollout=rollout, actor=admin, reason="1% first."
                    )
                with days_ago(CANARY_STARTED_DAYS_AGO - 1):
                    rollout = rollouts.rollout_advance(
                        rollout=rollout, actor=admin, reason="Steady."
                    )
                with days_ago(CANARY_AT_25_MINUTES_AGO / (24 * 60)):
                    rollouts.rollout_advance(
                        rollout=rollout, actor=admin, reason="Qualification rate unchanged at 5%."
                    )
        rollout = Rollout.objects.get(change=change)
        self._seed_canary_telemetry(rollout, acme=tenants["acme"], globex=tenants["globex"])

    def _seed_canary_telemetry(self, rollout: Any, *, acme: Tenant, globex: Tenant) -> None:
        """Healthy telemetry for every step of the lead qualification canary, through the
        ingest: one bucket every 10 minutes in the past steps (received when each ended), one a
        minute in the current one (received now). Acme's requests split by the step's weight;
        globex's, on its 1.0.0 override, belong to no rollout. The batch ids are fixed, so a
        second run is answered "duplicate" and stores nothing."""
        from rollouts.choices import BUCKETS
        from rollouts.models import TelemetryBatch
        from rollouts.telemetry_services import telemetry_ingest

        prefix = f"seed-demo-{rollout.reference}-step-"
        if TelemetryBatch.objects.filter(tenant=acme, batch_id__startswith=prefix).exists():
            return
        target = rollout.targets.select_related("slot__application", "baseline", "candidate").get()
        where = {"application": target.slot.application.slug, "slot": target.slot.name}
        now = timezone.now()
        for number, (start, end, weight) in enumerate(step_windows(rollout), 1):
            current = end is None
            every = timedelta(minutes=1 if current else 10)
            per_bucket = 150 if current else 2000  # acme's requests, both arms
            canary = round(per_bucket * weight / BUCKETS)
            rng = random.Random(f"{prefix}{number}")
            rows: list[dict[str, Any]] = []
            others: list[dict[str, Any]] = []
            bucket = whole_minute_after(start)
            while bucket + timedelta(minutes=1) <= (end or now):
                at = bucket.isoformat()
                for arm, version, count in (("canary", target.candidate, canary),
                                            ("stable", target.baseline, per_bucket - canary)):  # fmt: skip
                    rows.append({**where, "version": version.version, "rollout": rollout.reference,
                                 "arm": arm, "bucket_start": at, **demo_counters(rng, count)})  # fmt: skip
                others.append({**where, "version": target.baseline.version, "bucket_start": at,
                               **demo_counters(rng, per_bucket // 4)})  # fmt: skip
                bucket += every
            if not rows:
                continue
            with time_machine.travel(min(end or now, now), tick=True):
                telemetry_ingest(principal_or_tenant=acme, batch_id=f"{prefix}{number}", rows=rows)
                telemetry_ingest(principal_or_tenant=globex, batch_id=f"{prefix}{number}",
                                 rows=others)  # fmt: skip
