"""Applications with slots, and rollouts in progress, succeeded and rolled back."""

from __future__ import annotations

from typing import Any
from unittest import mock

from django.conf import settings
from django.db import transaction

from accounts.models import Tenant, User
from governance.demo.common import (
    AUTO_ROLLED_BACK_DAYS_AGO,
    CANARY_AT_25_MINUTES_AGO,
    CANARY_STARTED_DAYS_AGO,
    COMPLETED_ROLLOUT_DAYS_AGO,
    ROLLED_BACK_DAYS_AGO,
    Crew,
    days_ago,
    demo_prompt,
    promoted_change,
    publish_pinned,
)
from governance.demo.people import DEMO_USERS
from governance.demo.telemetry import seed_canary_telemetry, seed_regression
from registry import selectors as registry_selectors
from registry.choices import ArtifactClass
from registry.models import Artifact
from reviews.models import ChangeRequest
from rollouts import services as rollouts
from rollouts import telemetry_services
from rollouts.choices import RolloutState
from rollouts.models import Application, Rollout


def seed_rollouts(tenants: dict[str, Tenant]) -> None:
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
    users = {u.username: u for u in User.objects.filter(username__in=[u for u, _, _ in DEMO_USERS])}

    # The seed runs the controller itself (each round below); the ingest's "iterate soon"
    # task would only queue a duplicate iteration for the worker.
    with mock.patch.object(telemetry_services, "_queue_controller", return_value=None):
        seed_support_bot(tenants["acme"], users)
        seed_sales_agent(tenants, users)
        seed_auto_rollback(tenants["acme"], users)


def seed_support_bot(acme: Tenant, users: dict[str, User]) -> None:
    author, reviewer, admin = users["acme-author"], users["acme-reviewer"], users["acme-admin"]
    # The administrator is its accountable owner: their approval authorises each promotion.
    summary = demo_prompt(
        acme,
        admin,
        "ticket-summary",
        "Ticket summary",
        "Summarises a support ticket for the agent who picks it up.",
    )

    def change_titled(title: str) -> Any:
        return ChangeRequest.objects.filter(tenant=acme, title=title).first()

    if not Application.objects.filter(slug="support-bot").exists():
        with transaction.atomic(), days_ago(COMPLETED_ROLLOUT_DAYS_AGO + 5):
            first = publish_pinned(
                summary,
                "1.0.0",
                "major",
                "First version.",
                "Summarise ticket {{ ticket }} in three lines: the problem, what was tried, "
                "what the customer wants.",
            )
            # No slot binds it yet: promotion moves its default (a global move).
            promoted_change(
                acme, [first], "Launch the ticket summary", Crew(author, reviewer, admin)
            )
            bot = rollouts.application_create(
                tenant=acme,
                slug="support-bot",
                name="Support bot",
                description="Drafts replies and summaries in the support desk.",
                actor=admin,
            )
            reply = registry_selectors.artifact_by_path_unscoped(
                ArtifactClass.PROMPT, "acme", "support-reply"
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
            better = publish_pinned(
                summary,
                "1.1.0",
                "minor",
                "Name the order number when there is one.",
                "Summarise ticket {{ ticket }} in three lines: the problem, what was tried, "
                "what the customer wants. Name the order number when there is one.",
            )
            promoted_change(acme, [better], title, Crew(author, reviewer, admin))
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
            terse = publish_pinned(
                summary,
                "1.2.0",
                "minor",
                "One line instead of three.",
                "Summarise ticket {{ ticket }} in one line, with the order number when "
                "there is one.",
            )
            promoted_change(acme, [terse], title, Crew(author, reviewer, admin))
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
                rollout = rollouts.rollout_start(rollout=rollout, actor=admin, reason="1% first.")
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


def seed_auto_rollback(acme: Tenant, users: dict[str, User]) -> None:
    """ticket-summary 1.3.0: a canary at 10% that the canary analysis rolled back on its own."""

    author, reviewer, admin = users["acme-author"], users["acme-reviewer"], users["acme-admin"]
    summary = Artifact.objects.get(tenant=acme, slug="ticket-summary")

    title = "Summaries quote the customer's last message"
    if not ChangeRequest.objects.filter(tenant=acme, title=title).exists():
        with transaction.atomic(), days_ago(AUTO_ROLLED_BACK_DAYS_AGO + 1):
            quoting = publish_pinned(
                summary,
                "1.3.0",
                "minor",
                "Quote the customer's last message.",
                "Summarise ticket {{ ticket }} in three lines: the problem, what was "
                "tried, what the customer wants, quoting their last message.",
            )
            promoted_change(acme, [quoting], title, Crew(author, reviewer, admin))
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
        seed_regression(regressing, acme)


def seed_sales_agent(tenants: dict[str, Tenant], users: dict[str, User]) -> None:
    platform = tenants[settings.PLATFORM_TENANT_SLUG]
    author, reviewer = users["platform-author"], users["platform-reviewer"]
    admin = users["platform-admin"]
    prompt = demo_prompt(
        platform,
        admin,  # the accountable owner, whose approval authorises each promotion
        "lead-qualification",
        "Lead qualification (shared)",
        "The platform's lead qualification prompt, shared by every tenant.",
    )

    if not Application.objects.filter(slug="sales-agent").exists():
        with transaction.atomic(), days_ago(CANARY_STARTED_DAYS_AGO + 10):
            first = publish_pinned(
                prompt,
                "1.0.0",
                "major",
                "First shared version.",
                "You qualify leads for {{ product }}.\nCustomer: {{ customer }}\n"
                "Ask about budget and timeline.",
            )
            promoted_change(
                platform, [first], "Share lead qualification", Crew(author, reviewer, admin)
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
            candidate = publish_pinned(
                prompt,
                "1.1.0",
                "minor",
                "Ask about the region too.",
                "You qualify leads for {{ product }}.\nCustomer: {{ customer }}\n"
                "Ask about budget, timeline and region.",
            )
            promoted_change(platform, [candidate], title, Crew(author, reviewer, admin))
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
                rollout = rollouts.rollout_start(rollout=rollout, actor=admin, reason="1% first.")
            with days_ago(CANARY_STARTED_DAYS_AGO - 1):
                rollout = rollouts.rollout_advance(rollout=rollout, actor=admin, reason="Steady.")
            with days_ago(CANARY_AT_25_MINUTES_AGO / (24 * 60)):
                rollouts.rollout_advance(
                    rollout=rollout, actor=admin, reason="Qualification rate unchanged at 5%."
                )
    rollout = Rollout.objects.get(change=change)
    seed_canary_telemetry(rollout, acme=tenants["acme"], globex=tenants["globex"])
