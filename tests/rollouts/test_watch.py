"""Active means watched: an active version that breaks its thresholds in production is downgraded
once, through the rollback production uses, with the evidence; too little data downgrades nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from registry.models import Artifact, Version, VersionState
from reviews.models import ChangeGate
from rollouts import services
from rollouts.analysis import WatchPolicy, judge_active
from rollouts.choices import PointerKind, RolloutState
from rollouts.models import PointerMove, Rollout, Slot, TelemetryCounter
from rollouts.tasks import rollouts_controller_tick
from rollouts.telemetry import Totals
from rollouts.watch import watch_cycle, watch_verdict

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(second=0, microsecond=0)


def counters(slot: Slot, version: Version, *, requests: int, errors: int, at: Any = None,
             rollout: Rollout | None = None, arm: str = "", **extra: Any) -> None:  # fmt: skip
    TelemetryCounter.objects.create(
        tenant=slot.application.tenant, application=slot.application, slot=slot,
        version=version, rollout=rollout, arm=arm, bucket_start=at or NOW - timedelta(minutes=10),
        requests=requests, errors=errors, **extra,
    )  # fmt: skip


@pytest.fixture
def succeeded(
    promoted_change: Any, slot: Slot, prompt_v1: Version, people: dict[str, Any]
) -> Rollout:
    """A canary of v2 that succeeded, with 2,000 stable requests at 2% errors along the way."""
    rollout = services.rollout_create(change=promoted_change, actor=people["admin"],
                                      strategy="canary", steps=[10_000, 100_000], reason="try it")  # fmt: skip
    rollout = services.rollout_start(rollout=rollout, actor=people["admin"])
    counters(slot, prompt_v1, requests=2000, errors=40, rollout=rollout, arm="stable",
             at=NOW - timedelta(days=1))  # fmt: skip
    while rollout.state == RolloutState.PROGRESSING:
        rollout = services.rollout_advance(rollout=rollout, actor=people["admin"], reason="fine")
    assert rollout.state == RolloutState.SUCCEEDED
    return rollout


def stage_of(version: Version) -> str:
    return VersionState.objects.get(version=version).stage


def downgrades() -> list[Event]:
    return list(Event.objects.filter(kind=EventKind.VERSION_DOWNGRADED))


def test_a_breach_rolls_the_rollout_back_once_with_the_evidence(
    succeeded: Rollout, slot: Slot, prompt_v1: Version, prompt_v2: Version,
    platform_prompt: Artifact, people: dict[str, Any],
) -> None:  # fmt: skip
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v2
    counters(slot, prompt_v2, requests=1000, errors=100)  # 10% against 2%
    assert rollouts_controller_tick.apply(kwargs={"now": NOW.isoformat()}).get() == {
        "noted": 0, "skipped": 0, "failed": 0, "downgraded": 1,
    }  # fmt: skip
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    assert Rollout.objects.get(pk=succeeded.pk).state == RolloutState.ROLLED_BACK
    assert (stage_of(prompt_v2), stage_of(prompt_v1)) == ("approved", "active")
    last = PointerMove.objects.filter(kind=PointerKind.DEFAULT).latest("id")
    assert (last.from_version, last.to_version, last.rollout_id) == (
        prompt_v2, prompt_v1, succeeded.pk,
    )  # fmt: skip
    (event,) = downgrades()
    assert event.actor is None
    assert event.subject_id == str(prompt_v2.pk)
    payload = event.payload
    assert payload["via"] == succeeded.reference
    assert payload["to"]["path"] == prompt_v1.path
    assert payload["stage"] == "approved"
    assert payload["sample_size"] == 1000
    assert payload["window_seconds"] == 3600
    assert payload["thresholds"] == ["errors: e-value >= 80 (alpha 0.05 over 4 metrics)"]
    assert payload["observed"] == {"errors": 0.1}
    (errors,) = [t for t in payload["evidence"]["tests"] if t["metric"] == "errors"]
    assert (errors["canary"], errors["stable"], errors["failed"]) == (100, 40, True)
    assert payload["evidence"]["arms"]["baseline"]["requests"] == 2000
    note = Notification.objects.get(user=people["admin"], title__contains="downgraded")
    assert note.title == f"{platform_prompt.path}@{prompt_v2.version} was downgraded automatically"
    # Not twice: the version is no longer active, and the next cycles leave it alone.
    assert watch_cycle(now=NOW + timedelta(minutes=1)) == {"downgraded": 0}
    assert len(downgrades()) == 1
    # The restored version is not downgraded further on its own, even if it breaks too (a
    # cause outside the versions): its owner is told, once.
    ChangeGate.objects.create(tenant=platform_prompt.tenant,
                              artifact_class=platform_prompt.artifact_class,
                              gates=[{"metric": "latency_p95_ms", "max": 800}])  # fmt: skip
    counters(slot, prompt_v1, requests=1000, errors=0, latency_le_5000=1000)
    assert watch_cycle(now=NOW + timedelta(minutes=2)) == {"downgraded": 0}
    assert watch_cycle(now=NOW + timedelta(minutes=3)) == {"downgraded": 0}
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    (told,) = Notification.objects.filter(title__contains="breaks its thresholds")
    assert "restored by a rollback" in told.body


def test_below_the_minimum_sample_nothing_is_downgraded(
    succeeded: Rollout, slot: Slot, prompt_v2: Version, platform_prompt: Artifact, settings: Any
) -> None:
    settings.ROLLOUT_WATCH_MIN_REQUESTS = 200
    counters(slot, prompt_v2, requests=150, errors=150)  # every request failed, but only 150
    assert watch_cycle(now=NOW) == {"downgraded": 0}
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v2
    assert not downgrades()
    verdict = watch_verdict(platform_prompt, now=NOW)
    assert verdict.breached is None
    assert verdict.reason == "collecting: 150/200 requests in the last 60 min"


def test_a_healthy_active_version_stays(
    succeeded: Rollout, slot: Slot, prompt_v2: Version, platform_prompt: Artifact
) -> None:
    counters(slot, prompt_v2, requests=1000, errors=20)  # 2%, like the baseline
    assert watch_cycle(now=NOW) == {"downgraded": 0}
    platform_prompt.refresh_from_db()
    verdict = watch_verdict(platform_prompt, now=NOW)
    assert verdict.breached is False
    assert verdict.evidence["sample_size"] == 1000
    assert not downgrades()


def test_old_telemetry_outside_the_window_is_not_judged(
    succeeded: Rollout, slot: Slot, prompt_v2: Version
) -> None:
    counters(slot, prompt_v2, requests=1000, errors=500, at=NOW - timedelta(hours=2))
    assert watch_cycle(now=NOW) == {"downgraded": 0}


def test_without_a_rollout_the_default_goes_back_to_its_rollback_point_on_a_gate(
    platform_prompt: Artifact, prompt_v1: Version, prompt_v2: Version, promote: Any,
    application: Any, people: dict[str, Any], platform: Any,
) -> None:  # fmt: skip
    # v2 became active by promotion before the artifact was bound to a slot.
    promote(prompt_v2, title="Politer")
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v2
    slot = services.slot_create(application=application, name="qualifyLead",
                                artifact=platform_prompt, description="", actor=people["admin"])  # fmt: skip
    ChangeGate.objects.create(tenant=platform, artifact_class=platform_prompt.artifact_class,
                              gates=[{"metric": "latency_p95_ms", "max": 800}])  # fmt: skip
    slow = [0, 0, 0, 0, 0, 100, 200, 0, 0]  # p95 in the 5,000 ms bucket
    counters(slot, prompt_v2, requests=300, errors=0, latency_le_2500=100, latency_le_5000=200)
    assert sum(slow) == 300
    assert watch_cycle(now=NOW) == {"downgraded": 1}
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    assert stage_of(prompt_v2) == "approved"
    (event,) = downgrades()
    assert event.payload["via"] == "rollback"
    assert event.payload["thresholds"] == ["latency_p95_ms ≤ 800"]
    assert event.payload["observed"] == {"latency_p95_ms": 5000.0}
    move = PointerMove.objects.filter(kind=PointerKind.DEFAULT).latest("id")
    assert (move.from_version, move.to_version, move.rollout) == (prompt_v2, prompt_v1, None)


def test_a_first_version_with_nothing_to_go_back_to_tells_the_owner_once(
    slot: Slot, prompt_v1: Version, platform_prompt: Artifact, platform: Any,
    people: dict[str, Any],
) -> None:  # fmt: skip
    ChangeGate.objects.create(tenant=platform, artifact_class=platform_prompt.artifact_class,
                              gates=[{"metric": "latency_p95_ms", "max": 800}])  # fmt: skip
    counters(slot, prompt_v1, requests=300, errors=0, latency_le_5000=300)
    assert watch_cycle(now=NOW) == {"downgraded": 0}
    assert watch_cycle(now=NOW + timedelta(minutes=1)) == {"downgraded": 0}
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    assert not downgrades()
    (note,) = Notification.objects.filter(title__contains="breaks its thresholds")
    assert note.user == people["admin"]
    assert "no earlier version to go back to" in note.body


# --- the judgement itself (pure) ------------------------------------------------------------


def totals(requests: int, errors: int) -> Totals:
    return Totals(requests=requests, errors=errors)


def test_judge_active_reuses_the_count_tests_and_holds_below_the_minimum() -> None:
    policy = WatchPolicy(alpha=0.05, min_requests=200, window_seconds=3600)
    assert judge_active(totals(199, 199), totals(2000, 40), [], policy).breached is None
    breached = judge_active(totals(1000, 100), totals(2000, 40), [], policy)
    assert breached.breached is True
    assert breached.reason.startswith("errors: e-value >= 80 (alpha 0.05 over 4 metrics): ")
    assert "observed 0.1, baseline 0.02 (1000 requests in the last 60 min)" in breached.reason
    assert judge_active(totals(1000, 25), totals(2000, 40), [], policy).breached is False
    # No baseline: the count tests have nothing to compare; absolute gates still hold.
    alone = judge_active(totals(1000, 1000), Totals(), [], policy)
    assert (alone.breached, alone.evidence["tests"]) == (False, [])
