"""``seed_demo``'s governance story: waivers in every state, a deprecation, an overdue post-mortem,
applications with slots and rollouts in progress, succeeded and rolled back."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from registry.choices import Stage
from registry.models import Artifact, Deprecation, VersionState
from reviews import selectors
from reviews.choices import ChangeStatus, CheckKind
from reviews.models import ChangeRequest
from reviews.waivers.choices import WaiverState
from reviews.waivers.models import Waiver
from tests.scoped_db import kept_for_the_scope

pytestmark = pytest.mark.django_db

ROUTING = "Route German tickets to the DACH queue"
REFUND = "Launch the refund reply prompt"
OUTAGE = "Emergency: publish the outage notice prompt"
QUOTING = "Summaries quote the customer's last message"


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        m._meta.label: m._default_manager.count()
        for m in apps.get_models()
        if m._meta.app_label in ("accounts", "governance", "registry", "reviews", "rollouts")
    }


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """seed_demo once for the module (it takes seconds): every test reads the same rows, and
    what a test writes still vanishes after it (tests/scoped_db.py)."""
    with kept_for_the_scope(django_db_blocker, seed) as printed:
        yield printed


def recipients(key: str) -> set[str]:
    return set(Notification.objects.filter(dedupe_key=key).values_list("user__username", flat=True))


@pytest.mark.usefixtures("seeded")
def test_a_waiver_expiring_in_five_days_lets_the_failing_routing_change_proceed() -> None:
    now = timezone.now()
    change = ChangeRequest.objects.get(title=ROUTING)
    waiver = Waiver.objects.get(change=change)
    assert waiver.state_at(now) == WaiverState.EXPIRING_SOON
    assert timedelta(days=4, hours=23) < waiver.expires_at - now <= timedelta(days=5)
    assert waiver.check_kind == CheckKind.RULES_SIMULATION
    assert waiver.owner.username == "acme-author"
    verdict = next(v for v in selectors.check_verdicts(change, now) if v.kind == waiver.check_kind)
    assert verdict.run is not None
    assert verdict.run.status == "failed"
    assert verdict.waived
    assert verdict.waivers == [waiver]
    # It proceeds: the reviewer approved under the waiver; only the administrator is missing.
    assert selectors.promotion_blockers(change, now) == ["missing approval from Administrator"]
    # Beat's alert (the seed runs the sweep): the owner and every administrator of acme.
    assert recipients(f"waiver:{waiver.pk}:expiring") == {
        "acme-author",
        "acme-admin",
        "platform-admin",
    }


@pytest.mark.usefixtures("seeded")
def test_an_expired_waiver_blocks_its_change_again_and_the_page_says_why() -> None:
    now = timezone.now()
    change = ChangeRequest.objects.get(title=REFUND)
    waiver = Waiver.objects.get(change=change)
    assert waiver.state_at(now) == WaiverState.EXPIRED
    assert (waiver.check_kind, waiver.metric) == (CheckKind.CHANGE_GATES, "accuracy")
    assert change.status == ChangeStatus.IN_REVIEW
    why = f"waiver {waiver.reference} expired on {waiver.expires_at:%Y-%m-%d %H:%M} UTC"
    assert f"check Change gates failed ({why})" in selectors.promotion_blockers(change, now)
    # Its history happened when its rows say it did: granted 25 days ago, for 14 days.
    granted = Event.objects.get(kind=EventKind.WAIVER_GRANTED, subject_id=str(waiver.pk))
    assert abs(granted.time - waiver.starts_at) < timedelta(seconds=5)
    assert timedelta(days=24) < now - waiver.starts_at < timedelta(days=26)
    assert abs(waiver.expires_at - waiver.starts_at - timedelta(days=14)) < timedelta(seconds=5)
    assert abs(change.created_at - waiver.starts_at) < timedelta(seconds=5)
    # Beat warned before the expiry and again after it.
    alerted = Notification.objects.get(
        dedupe_key=f"waiver:{waiver.pk}:expiring", user__username="acme-author"
    )
    assert alerted.created_at < waiver.expires_at
    assert recipients(f"waiver:{waiver.pk}:expired") == {
        "acme-author",
        "acme-admin",
        "platform-admin",
    }

    client = Client()
    client.force_login(User.objects.get(username="acme-admin"))
    page = client.get(change.get_absolute_url())
    assert page.status_code == 200
    assert why in page.content.decode()


@pytest.mark.usefixtures("seeded")
def test_an_old_support_reply_is_deprecated_in_favour_of_the_active_one() -> None:
    reply = Artifact.objects.get(slug="support-reply")
    assert reply.active_version is not None
    assert reply.active_version.version == "1.1.0"
    deprecation = Deprecation.objects.select_related("version", "replacement").get(
        version__artifact=reply
    )
    assert deprecation.version.version == "1.0.0"
    assert deprecation.replacement == reply.active_version
    assert deprecation.remove_after - deprecation.deprecated_at == timedelta(days=30)
    assert deprecation.removed_at is None  # still resolving during the grace period
    assert VersionState.objects.get(version=deprecation.version).stage == Stage.DEPRECATED
    event = Event.objects.get(kind=EventKind.VERSION_DEPRECATED)
    assert event.payload["replacement"] == reply.active_version.pinned
    # the recommendation moved with the deprecation: never the deprecated 1.0.0
    reply.refresh_from_db()
    assert reply.recommended_version == reply.active_version
    moved = Event.objects.get(kind=EventKind.ARTIFACT_RECOMMENDED, subject_id=str(reply.pk))
    assert (moved.payload["previous"], moved.payload["version"]) == ("1.0.0", "1.1.0")
    stale = Artifact.objects.filter(recommended_version__deprecation__isnull=False)
    assert not stale.exists()
    assert not Artifact.objects.filter(recommended_version__retirement__isnull=False)


@pytest.mark.usefixtures("seeded")
def test_an_emergency_change_was_promoted_and_its_post_mortem_is_overdue() -> None:
    now = timezone.now()
    change = ChangeRequest.objects.get(title=OUTAGE)
    assert change.emergency
    assert change.status == ChangeStatus.PROMOTED
    assert change.promoted_at is not None
    assert change.postmortem_due_at is not None
    assert change.postmortem_done_at is None
    assert change.postmortem_due_at < now  # overdue
    assert change.postmortem_due_at - change.promoted_at == timedelta(days=5)
    assert timedelta(days=11) < now - change.promoted_at < timedelta(days=13)
    promoted = Event.objects.get(kind=EventKind.CHANGE_REQUEST_PROMOTED, subject_id=str(change.pk))
    assert abs(promoted.time - change.promoted_at) < timedelta(seconds=5)
    assert recipients(f"postmortem:{change.pk}:overdue") == {"acme-author", "acme-admin"}


def test_seeding_twice_changes_nothing_and_keeps_the_printed_logins(seeded: str) -> None:
    assert "Demo data ready" in seeded
    assert "acme-admin       acme-admin-demo" in seeded
    before = counts()
    assert before["governance.Waiver"] == 2
    again = seed()
    assert counts() == before
    assert "acme-admin       acme-admin-demo" in again


@pytest.mark.usefixtures("seeded")
def test_the_log_still_verifies_with_back_dated_history() -> None:
    from governance.kernel.events.services import verify_database

    assert verify_database().ok


@pytest.mark.usefixtures("seeded")
def test_every_waiver_state_the_seed_shows() -> None:
    now = timezone.now()
    assert sorted(w.state_at(now) for w in Waiver.objects.all()) == sorted(
        [WaiverState.EXPIRED, WaiverState.EXPIRING_SOON]
    )


@pytest.mark.usefixtures("seeded")
def test_applications_slots_and_rollouts_in_every_state() -> None:
    from django.conf import settings

    from rollouts.choices import PointerKind, RolloutState, RolloutStrategy
    from rollouts.models import Application, Override, PointerMove, Rollout

    platform = settings.PLATFORM_TENANT_SLUG
    apps_ = {a.slug: a for a in Application.objects.select_related("tenant")}
    assert {slug: a.tenant.slug for slug, a in apps_.items()} == {
        "sales-agent": platform,  # shared: every tenant reads it
        "support-bot": "acme",
    }
    slots = {
        f"{a.slug}.{s.name}": s.artifact.path
        for a in apps_.values()
        for s in a.slots.select_related("artifact__artifact_class", "artifact__tenant")
    }
    assert slots == {
        "sales-agent.qualifyLead": f"prompt/{platform}/lead-qualification",
        "support-bot.reply": "prompt/acme/support-reply",
        "support-bot.summary": "prompt/acme/ticket-summary",
    }
    rollouts = {
        r.state: r
        for r in Rollout.objects.exclude(change__title=QUOTING)
        .select_related("tenant", "change")
        .prefetch_related("targets__slot", "targets__candidate", "targets__baseline")
    }
    assert set(rollouts) == {
        RolloutState.PROGRESSING,
        RolloutState.SUCCEEDED,
        RolloutState.ROLLED_BACK,
    }

    canary = rollouts[RolloutState.PROGRESSING]
    assert (canary.strategy, canary.tenant.slug, canary.step) == ("canary", platform, 3)
    assert canary.weight == 25_000  # 25%
    (target,) = canary.targets.all()
    assert (str(target.slot), target.baseline.version, target.candidate.version) == (
        "sales-agent.qualifyLead",
        "1.0.0",
        "1.1.0",
    )
    weights = list(
        PointerMove.objects.filter(rollout=canary, kind=PointerKind.CANARY)
        .order_by("id")
        .values_list("weight", flat=True)
    )
    assert weights == [1_000, 5_000, 25_000]
    assert target.slot.artifact.active_version == target.baseline  # the default did not move
    override = Override.objects.select_related("tenant", "version").get(slot=target.slot)
    assert (override.tenant.slug, override.version.version) == ("globex", "1.0.0")

    done = rollouts[RolloutState.SUCCEEDED]
    assert (done.strategy, done.tenant.slug) == (RolloutStrategy.GLOBAL, "acme")
    assert done.change.title == "Ticket summaries name the order"
    summary = Artifact.objects.get(slug="ticket-summary")
    assert summary.active_version.version == "1.1.0"  # the default it moved

    undone = rollouts[RolloutState.ROLLED_BACK]
    assert (undone.strategy, undone.step) == (RolloutStrategy.CANARY, 2)
    assert "reopened tickets" in undone.finish_reason
    (target,) = undone.targets.all()
    assert (target.baseline.version, target.candidate.version) == ("1.1.0", "1.2.0")
    # Rolled back: the exact previous pointers (no canary rule, the default untouched).
    last = PointerMove.objects.filter(rollout=undone).order_by("-id").first()
    assert (last.kind, last.weight or 0) == (PointerKind.CANARY, 0)
    kinds = set(
        Event.objects.filter(subject_id__in=[str(r.pk) for r in rollouts.values()]).values_list(
            "kind", flat=True
        )
    )
    assert {
        "rollout.created",
        "rollout.started",
        "rollout.advanced",
        "rollout.rolled_back",
    } <= kinds


@pytest.mark.usefixtures("seeded")
def test_a_canary_that_rolled_itself_back_with_its_evidence_in_the_manifest() -> None:
    """ticket-summary 1.3.0: telemetry through the ingest, the controller's decision, no person."""
    from rollouts.choices import PointerKind, RolloutState
    from rollouts.models import (
        IterationNote,
        ManifestVersion,
        PointerMove,
        Rollout,
        TelemetryBatch,
        TelemetryCounter,
    )

    rollout = Rollout.objects.get(change__title=QUOTING)
    assert (rollout.state, rollout.step, rollout.tenant.slug) == (
        RolloutState.ROLLED_BACK,
        1,
        "acme",
    )
    assert rollout.finished_by is None  # the system
    assert rollout.finish_reason.startswith("canary analysis: errors: canary ")
    assert "(alpha 0.05 over 4 metrics)" in rollout.finish_reason
    (target,) = rollout.targets.select_related("baseline", "candidate")
    assert (target.baseline.version, target.candidate.version) == ("1.1.0", "1.3.0")
    last = PointerMove.objects.filter(rollout=rollout).latest("id")
    assert (last.kind, last.weight or 0) == (PointerKind.CANARY, 0)  # the canary rule ended
    assert Artifact.objects.get(slug="ticket-summary").active_version.version == "1.1.0"
    # The telemetry came through the ingest (a batch per minute), both arms, 5x the errors.
    batches = TelemetryBatch.objects.filter(batch_id__startswith=f"seed-demo-{rollout.reference}-")
    counters = TelemetryCounter.objects.filter(rollout=rollout)
    assert counters.count() == 2 * batches.count() >= 4
    canary = counters.filter(arm="canary")
    stable = counters.filter(arm="stable")
    canary_requests = sum(canary.values_list("requests", flat=True))
    assert 0 < canary_requests <= 400
    assert sum(stable.values_list("requests", flat=True)) == 9 * canary_requests
    # The controller's note and the manifest's evidence.
    note = IterationNote.objects.filter(rollout=rollout).latest("number")
    assert note.outcome == "lane_execution_failed"
    assert " rolled back: errors: " in note.reason
    body = ManifestVersion.objects.filter(rollout=rollout).latest("number").body
    phases = {p["name"]: p for p in body["phases"]}
    assert phases["runtime-governance"]["status"] == "fail"
    evidence = phases["runtime-governance"]["observations"]["signal"]["evidence"]
    assert evidence["arms"]["canary"]["requests"] == canary_requests
    (errors,) = [t for t in evidence["tests"] if t["metric"] == "errors"]
    assert errors["failed"]
    assert errors["threshold"] == 80
    assert errors["e_value"] >= 80
    assert errors["canary"] == sum(canary.values_list("errors", flat=True))
    proof = phases["rollback-proof"]
    assert proof["status"] == "pass"
    analysis = proof["observations"]["analysis"]
    assert analysis["alpha"] == 0.05
    assert analysis["decision"] == "rollback"
    assert analysis["detection_to_restored_ms"] > 0
    assert analysis["arms"]["stable"]["requests"] == 9 * canary_requests
    # The owner (acme's administrator, who authorises its promotions) and acme's
    # administrators were told.
    told = set(
        Notification.objects.filter(
            title=f"{rollout.reference} rolled back automatically"
        ).values_list("user__username", flat=True)
    )
    owner = Artifact.objects.get(slug="ticket-summary").owner
    assert owner is not None
    assert {owner.username, "acme-admin"} <= told
    # A second run adds nothing (the test above checks the counts of every table).


@pytest.mark.usefixtures("seeded")
def test_the_canary_in_progress_has_healthy_telemetry_in_every_step() -> None:
    from rollouts import canary as analysis
    from rollouts.choices import RolloutState
    from rollouts.models import Rollout, TelemetryCounter

    rollout = Rollout.objects.get(state=RolloutState.PROGRESSING)
    assert rollout.reference == "RO-3"  # the demo's canary keeps its number (docs/cli.md)
    arms = set(
        TelemetryCounter.objects.filter(rollout=rollout).values_list("arm", "version__version")
    )
    assert arms == {("canary", "1.1.0"), ("stable", "1.0.0")}
    # globex's traffic, on its override, belongs to no rollout
    outside = TelemetryCounter.objects.filter(slot__name="qualifyLead", rollout__isnull=True)
    assert set(outside.values_list("tenant__slug", "arm", "version__version")) == {
        ("globex", "", "1.0.0")
    }
    verdict = analysis.verdict_for(rollout)
    assert verdict is not None
    assert verdict.decision == "hold"
    assert verdict.healthy is True
    assert verdict.reason.startswith("collecting: ")  # the current step is young
    steps = verdict.evidence["arms"]
    assert steps["canary"]["requests"] > 1000
    assert steps["stable"]["requests"] > 10_000
    assert not any(t["failed"] for t in verdict.evidence["tests"])
    assert verdict.evidence["srm"]["failed"] is False
