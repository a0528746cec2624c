"""The governance story: waivers in every state, a deprecated prompt and an overdue post-mortem."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Tenant, User
from governance.demo.common import (
    DEPRECATION_GRACE_DAYS,
    EXPIRING_WAIVER_DAYS,
    OUTAGE_EMERGENCY_DAYS_AGO,
    PINS,
    REFUND_LAUNCH_DAYS_AGO,
    REFUND_WAIVER_DAYS,
    days_ago,
    demo_prompt,
    deployment_ready,
    evaluate,
    evidence,
    publish_pinned,
    pull_request,
    run_checks,
    submitted,
)
from governance.sweep import governance_sweep
from registry import services as registry
from registry.models import Artifact, Deprecation, Version
from reviews import services as reviews
from reviews.choices import OPEN_STATES, CheckKind, CheckStatus
from reviews.models import ChangeRequest
from reviews.waivers import services as waivers


def seed_governance(tenants: dict[str, Tenant]) -> None:
    """Waivers in every state, a deprecated prompt and an overdue post-mortem, with their history.

    Each part checks for itself whether it is there already, so a database seeded before
    these parts existed gets them too, and a second run adds nothing.
    """

    acme = tenants["acme"]
    users = {u.username: u for u in User.objects.filter(username__startswith="acme-")}
    seed_expired_waiver(acme, users)
    seed_overdue_postmortem(acme, users)
    seed_expiring_waiver(acme, users)
    seed_deprecation(acme, users)
    # Evidence attached to a version re-runs the checks of every change proposing it;
    # in the app a worker runs them, here they run now, so the demo shows their results.

    for change in ChangeRequest.objects.filter(checks__status=CheckStatus.PENDING).distinct():
        run_checks(change)
    # What beat would have sent by now: the alerts and the post-mortem reminder.
    governance_sweep()


def seed_expired_waiver(acme: Tenant, users: dict[str, User]) -> None:
    """A change approved under a waiver that has since expired: its failed gate blocks again."""

    title = "Launch the refund reply prompt"
    if ChangeRequest.objects.filter(tenant=acme, title=title).exists():
        return
    author, admin, reviewer = users["acme-author"], users["acme-admin"], users["acme-reviewer"]
    with days_ago(REFUND_LAUNCH_DAYS_AGO):
        prompt = demo_prompt(
            acme,
            author,
            "refund-reply",
            "Refund reply",
            "Answers refund requests with the refund policy.",
        )
        version = publish_pinned(
            prompt,
            "1.0.0",
            "major",
            "First version.",
            "Answer {{ customer }}'s refund request for order {{ order }}. Quote the "
            "refund policy; never promise a refund before an agent approves it.",
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
        waivers.waiver_grant(
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
        waivers.waiver_alerts_send()


def seed_overdue_postmortem(acme: Tenant, users: dict[str, User]) -> None:
    """An emergency change promoted during an outage, whose post-mortem nobody wrote."""

    title = "Emergency: publish the outage notice prompt"
    if ChangeRequest.objects.filter(tenant=acme, title=title).exists():
        return
    author, admin, security = users["acme-author"], users["acme-admin"], users["acme-security"]
    with days_ago(OUTAGE_EMERGENCY_DAYS_AGO):
        prompt = demo_prompt(
            acme,
            author,
            "outage-notice",
            "Outage notice",
            "Drafts the status-page notice while a service is down.",
        )
        risk = (
            "Emergency: a wrong notice misleads customers; the on-call engineer reads each "
            "one before it is posted."
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
            metadata={**PINS, **evidence(risk, pull_request(f"{prompt.path}@1.0.0"))},
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
        deployment_ready(change, admin)
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


def seed_expiring_waiver(acme: Tenant, users: dict[str, User]) -> None:
    """A waiver expiring in five days lets the failing routing change proceed."""

    change = ChangeRequest.objects.filter(
        tenant=acme, title="Route German tickets to the DACH queue"
    ).first()
    if change is None or change.status not in OPEN_STATES or change.waivers.exists():
        return
    author, admin, reviewer = users["acme-author"], users["acme-admin"], users["acme-reviewer"]
    waivers.waiver_grant(
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


def seed_deprecation(acme: Tenant, users: dict[str, User]) -> None:
    """support-reply 1.0.0 is deprecated in favour of the active version, with a grace period."""

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
