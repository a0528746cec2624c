"""The canary analysis in the controller: rollback, pauses, auto-advance, evidence, one transition."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Any

import pgtrigger
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from registry.models import Artifact, Version
from rollouts import analysis, canary, services
from rollouts.analysis import binomial
from rollouts.choices import PointerKind, RolloutState
from rollouts.controller import controller_cycle
from rollouts.models import (
    IterationNote,
    ManifestVersion,
    PointerMove,
    Rollout,
    Slot,
    TelemetryCounter,
)

pytestmark = pytest.mark.django_db

STEPS = [10_000, 50_000, 100_000]  # 10%, 50%, 100%


@pytest.fixture
def started(promoted_change: Any, people: dict[str, Any]) -> Rollout:
    rollout = services.rollout_create(
        change=promoted_change, actor=people["admin"], strategy="canary", steps=STEPS,
        reason="try it",
    )  # fmt: skip
    return services.rollout_start(rollout=rollout, actor=people["admin"])


def step_start(rollout: Rollout) -> datetime:
    move = PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY).latest("id")
    return move.created_at


def first_bucket(rollout: Rollout) -> datetime:
    """The first whole minute bucket after the step's move."""
    return step_start(rollout).replace(second=0, microsecond=0) + timedelta(minutes=1)


def feed(
    rollout: Rollout, slot: Slot, at: datetime, *, canary: tuple[int, int],
    stable: tuple[int, int], received: datetime | None = None, sequence: int = 0,
) -> None:  # fmt: skip
    target = rollout.targets.get()
    for arm, (requests, errors), version in (
        ("canary", canary, target.candidate),
        ("stable", stable, target.baseline or target.candidate),
    ):
        TelemetryCounter.objects.create(
            tenant=rollout.tenant, application=slot.application, slot=slot, version=version,
            rollout=rollout, arm=arm, bucket_start=at, requests=requests, errors=errors,
            received_at=received or at + timedelta(seconds=60), snapshot_sequence=sequence,
        )  # fmt: skip


def fresh(rollout: Rollout) -> Rollout:
    return Rollout.objects.get(pk=rollout.pk)


def last_note(rollout: Rollout) -> IterationNote:
    return IterationNote.objects.filter(rollout=rollout).latest("number")


def test_a_five_fold_error_regression_rolls_back_within_400_canary_requests_with_evidence(
    started: Rollout, slot: Slot, platform_prompt: Artifact, prompt_v1: Version,
    people: dict[str, Any], django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    rng = random.Random(7)
    at = first_bucket(started)
    canary_requests = 0
    while fresh(started).state == RolloutState.PROGRESSING and canary_requests < 1000:
        feed(started, slot, at, canary=(50, binomial(rng, 50, 0.10)),
             stable=(450, binomial(rng, 450, 0.02)))  # fmt: skip
        canary_requests += 50
        with django_capture_on_commit_callbacks(execute=True):  # the manifest re-appended
            controller_cycle(now=at + timedelta(seconds=61))
        at += timedelta(minutes=1)
    rollout = fresh(started)
    assert rollout.state == RolloutState.ROLLED_BACK
    assert canary_requests <= 400
    assert rollout.finished_by is None  # the system
    assert rollout.finish_reason.startswith("canary analysis: errors: canary ")
    assert "(alpha 0.05 over 4 metrics)" in rollout.finish_reason
    last = PointerMove.objects.filter(rollout=rollout).latest("id")
    assert (last.weight, last.to_version) == (0, prompt_v1)  # the canary rule ended
    note = last_note(rollout)
    assert note.outcome == "lane_execution_failed"
    assert " rolled back: errors: canary " in note.reason
    body = ManifestVersion.objects.filter(rollout=rollout).latest("number").body
    phases = {p["name"]: p for p in body["phases"]}
    assert phases["runtime-governance"]["status"] == "fail"
    evidence = phases["runtime-governance"]["observations"]["signal"]["evidence"]
    assert evidence["arms"]["canary"]["requests"] == canary_requests
    (errors,) = [t for t in evidence["tests"] if t["metric"] == "errors"]
    assert errors["failed"]
    assert errors["threshold"] == 80
    assert errors["e_value"] >= 80
    proof = phases["rollback-proof"]
    assert proof["status"] == "pass"
    assert proof["observations"]["analysis"]["alpha"] == 0.05
    assert proof["observations"]["analysis"]["detection_to_restored_ms"] > 0
    assert proof["observations"]["analysis"]["arms"]["stable"]["requests"] == 9 * canary_requests
    assert body["rollback_proof"]["rollback_incident_evidence_path"]
    notified = set(Notification.objects.values_list("user__username", flat=True))
    assert people["admin"].username in notified  # owner and tenant administrator
    assert Notification.objects.filter(title=f"{rollout.reference} rolled back automatically")
    # a later cycle leaves the rolled-back rollout alone
    assert controller_cycle(now=at + timedelta(minutes=5))["noted"] == 0


def test_no_traffic_pauses_with_insufficient_data_and_never_rolls_back(
    started: Rollout, settings: Any
) -> None:
    begin = step_start(started)
    controller_cycle(now=begin + timedelta(minutes=10))
    assert fresh(started).state == RolloutState.PROGRESSING
    assert last_note(started).outcome == "blocked_no_signal"
    controller_cycle(now=begin + timedelta(seconds=settings.ROLLOUT_DATA_DEADLINE_SECONDS + 1))
    rollout = fresh(started)
    assert rollout.state == RolloutState.PAUSED
    assert rollout.finished_at is None
    paused = Event.objects.filter(kind=EventKind.ROLLOUT_PAUSED).get()
    assert paused.actor is None
    assert paused.payload["reason"].startswith("canary analysis: insufficient data: 0 canary")
    controller_cycle(now=begin + timedelta(hours=5))  # paused: noted, never moved
    assert fresh(started).state == RolloutState.PAUSED


def test_telemetry_that_stops_pauses(started: Rollout, slot: Slot) -> None:
    at = first_bucket(started)
    for i in range(3):
        feed(started, slot, at + timedelta(minutes=i), canary=(100, 2), stable=(900, 18))
    controller_cycle(now=at + timedelta(minutes=4))
    assert fresh(started).state == RolloutState.PROGRESSING
    controller_cycle(now=at + timedelta(minutes=9))
    rollout = fresh(started)
    assert rollout.state == RolloutState.PAUSED
    assert "telemetry stopped" in last_note(rollout).reason


def test_a_sample_ratio_mismatch_pauses(started: Rollout, slot: Slot) -> None:
    at = first_bucket(started)
    feed(started, slot, at, canary=(3000, 60), stable=(7000, 140))  # 30% at a 10% weight
    controller_cycle(now=at + timedelta(seconds=61))
    rollout = fresh(started)
    assert rollout.state == RolloutState.PAUSED
    assert "sample ratio mismatch" in last_note(rollout).reason


def test_a_few_requests_do_not_pause_a_step_for_a_mismatch(started: Rollout, slot: Slot) -> None:
    """Below ROLLOUT_SRM_MIN_REQUESTS in the step the split is not judged (20 of 50 on a 10%
    canary would be a mismatch with enough traffic)."""
    at = first_bucket(started)
    feed(started, slot, at, canary=(20, 0), stable=(30, 0))
    controller_cycle(now=at + timedelta(seconds=61))
    rollout = fresh(started)
    assert rollout.state == RolloutState.PROGRESSING
    note = last_note(rollout)
    assert note.reason.endswith("holding: collecting: 20/200 canary requests in step 1")


def test_clients_on_an_old_runtime_snapshot_pause(
    started: Rollout, slot: Slot, settings: Any
) -> None:
    settings.ROLLOUT_SNAPSHOT_LAG_SECONDS = 60
    at = first_bucket(started)
    expected = Event.objects.filter(kind=EventKind.ROLLOUT_STARTED).get().seq
    feed(started, slot, at, canary=(100, 2), stable=(900, 18), sequence=expected)
    controller_cycle(now=at + timedelta(seconds=61))
    assert fresh(started).state == RolloutState.PROGRESSING
    feed(started, slot, at + timedelta(minutes=2), canary=(100, 2), stable=(900, 18),
         sequence=expected - 1)  # fmt: skip
    controller_cycle(now=at + timedelta(minutes=3, seconds=1))
    rollout = fresh(started)
    assert rollout.state == RolloutState.PAUSED
    assert f"runtime snapshot {expected - 1}" in last_note(rollout).reason
    body = ManifestVersion.objects.filter(rollout=rollout).latest("number").body
    drift = {p["name"]: p for p in body["phases"]}["drift-gate"]
    assert drift["status"] == "fail"
    assert drift["observations"]["drifted"] == [
        f"clients report runtime snapshot {expected - 1}; the current step needs {expected}"
    ]
    assert body["runtime_governance"]["drift_status"] == "unhealthy"


def test_a_healthy_step_advances_after_its_minimums_with_fresh_step_counters(
    started: Rollout, slot: Slot, settings: Any
) -> None:
    # The services stamp moves with the real clock: start the step 12 minutes ago (a test-only
    # backdating of an immutable row: PostgreSQL's trigger is lifted for this one statement).
    now = timezone.now()
    with pgtrigger.ignore("rollouts.PointerMove:pointer_move_immutable"):
        PointerMove.objects.filter(rollout=started).update(created_at=now - timedelta(minutes=12))
    at = first_bucket(started)
    for i in range(11):
        feed(started, slot, at + timedelta(minutes=i), canary=(30, 0), stable=(270, 5),
             received=now)  # fmt: skip
    controller_cycle(now=now - timedelta(minutes=5))  # 7 minutes in: too early
    assert fresh(started).step == 1
    controller_cycle(now=now)
    rollout = fresh(started)
    assert rollout.step == 2
    assert rollout.state == RolloutState.PROGRESSING
    advanced = Event.objects.get(kind=EventKind.ROLLOUT_ADVANCED)
    assert advanced.actor is None
    assert "step 1 passed (" in advanced.payload["reason"]
    assert last_note(rollout).reason.startswith(f"{rollout.reference} at step 1 of 3: advanced")
    verdict = canary.verdict_for(rollout, now=timezone.now() + timedelta(minutes=1))
    assert verdict is not None
    assert verdict.evidence["step"]["canary_requests"] == 0
    assert verdict.evidence["arms"]["canary"]["requests"] == 330  # the whole rollout
    assert verdict.decision == analysis.HOLD


def test_auto_advance_off_holds_a_passed_step(started: Rollout, slot: Slot, settings: Any) -> None:
    settings.ROLLOUT_AUTO_ADVANCE = False
    at = first_bucket(started)
    feed(started, slot, at, canary=(300, 6), stable=(2700, 54),
         received=at + timedelta(minutes=10))  # fmt: skip
    controller_cycle(now=at + timedelta(minutes=11))
    rollout = fresh(started)
    assert rollout.step == 1
    assert "auto-advance is off" in last_note(rollout).reason


def test_a_late_beat_with_an_old_revision_does_nothing(
    started: Rollout, slot: Slot, people: dict[str, Any]
) -> None:
    at = first_bucket(started)
    feed(started, slot, at, canary=(300, 60), stable=(2700, 54))
    verdict = canary.verdict_for(started, now=at + timedelta(minutes=2))
    assert verdict is not None
    assert verdict.decision == analysis.ROLLBACK
    seen = verdict.revision
    services.rollout_pause(rollout=started, actor=people["admin"], reason="looking")
    action = canary.act(fresh(started), verdict, revision=seen)  # type: ignore[arg-type]
    assert not action.done
    assert "not taken" in action.reason
    assert fresh(started).state == RolloutState.PAUSED


def test_a_retry_after_a_rollback_starts_with_fresh_counters(
    started: Rollout, slot: Slot, promoted_change: Any, people: dict[str, Any]
) -> None:
    at = first_bucket(started)
    feed(started, slot, at, canary=(300, 60), stable=(2700, 54))
    controller_cycle(now=at + timedelta(seconds=61))
    assert fresh(started).state == RolloutState.ROLLED_BACK
    retry = services.rollout_create(change=promoted_change, actor=people["admin"],
                                    strategy="canary", steps=STEPS, reason="fixed")  # fmt: skip
    retry = services.rollout_start(rollout=retry, actor=people["admin"])
    controller_cycle(now=timezone.now() + timedelta(minutes=1))
    retry = fresh(retry)
    assert retry.state == RolloutState.PROGRESSING
    assert last_note(retry).outcome == "blocked_no_signal"


def test_the_analysis_reads_every_rollout_in_five_queries(started: Rollout, slot: Slot) -> None:
    at = first_bucket(started)
    feed(started, slot, at, canary=(100, 2), stable=(900, 18))
    with CaptureQueriesContext(connection) as ctx:
        verdicts = canary.analyse([started], now=at + timedelta(minutes=2))
    assert len(ctx.captured_queries) == 5
    assert verdicts[started.pk].evidence["arms"]["canary"]["requests"] == 100


def test_simulate_sends_telemetry_through_the_api_and_rolls_a_regression_back(
    started: Rollout, django_capture_on_commit_callbacks: Any
) -> None:
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import ServiceToken
    from rollouts.models import TelemetryBatch

    out = StringIO()
    # run it three minutes after the step began: the rollback's own move is stamped then
    with (
        django_capture_on_commit_callbacks(execute=True),
        time_machine.travel(timezone.now() + timedelta(minutes=3), tick=True),
    ):
        call_command("rollouts", "simulate", started.reference, "--baseline-error-rate", "0.02",
                     "--canary-error-rate", "0.10", "--requests", "400", "--seed", "3",
                     stdout=out)  # fmt: skip
    text = out.getvalue()
    rollout = fresh(started)
    assert rollout.state == RolloutState.ROLLED_BACK, text
    assert TelemetryBatch.objects.filter(batch_id__startswith="simulate-").exists()
    sent = sum(TelemetryCounter.objects.filter(rollout=rollout, arm="canary")
               .values_list("requests", flat=True))  # fmt: skip
    assert sent <= 400
    (token,) = ServiceToken.objects.filter(name__startswith=f"simulate {rollout.reference}")
    assert token.revoked_at is not None
    assert token.scopes == ["telemetry:write"]
    assert f"{rollout.reference} is rolled_back at step 1 (canary analysis: errors:" in text
    assert "detection -> pointers restored:" in text
    assert "FAILED" in text
    # the rounds' times count on from the step's first bucket, the rollback's round too
    times = [int(t) for t in re.findall(r"^round +\d+ t\+ *(-?\d+)s", text, re.M)]
    assert times == [20 * (i + 1) for i in range(len(times))], text


def test_simulate_a_healthy_canary_advances_with_a_short_minimum_step(started: Rollout) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("rollouts", "simulate", started.reference, "--baseline-error-rate", "0.02",
                 "--canary-error-rate", "0.02", "--requests", "600", "--seed", "4",
                 "--step-min-seconds", "60", stdout=out)  # fmt: skip
    rollout = fresh(started)
    assert rollout.step >= 2, out.getvalue()
    assert rollout.state == RolloutState.PROGRESSING, out.getvalue()
    assert "advanced: step 1 passed" in out.getvalue()
    assert f"{rollout.reference} advanced to step 2; simulate that step in" in out.getvalue()


def test_a_steady_cycle_reuses_manifests_and_costs_the_same_per_rollout(
    make_user: Any, acme: Any, settings: Any
) -> None:
    from tests.rollouts.manifest_setup import rollout_of, world

    settings.ROLLOUT_TELEMETRY_STALE_SECONDS = 3600  # the fake clock runs ahead of receipts

    w = world(make_user, acme)
    began = timezone.now() - timedelta(minutes=3)
    bucket = began.replace(second=0, microsecond=0) + timedelta(minutes=1)

    def canaries(n: int) -> None:
        for _ in range(n):
            r = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
            PointerMove.objects.create(kind=PointerKind.CANARY, artifact=w.prompt, slot=w.slot,
                                       tenant=w.tenant, from_version=w.v1, to_version=w.v2,
                                       weight=10_000, rollout=r, reason="s", created_at=began)  # fmt: skip
            for arm, version, requests in (("canary", w.v2, 10), ("stable", w.v1, 90)):
                TelemetryCounter.objects.create(
                    tenant=w.tenant, application=w.slot.application, slot=w.slot,
                    version=version, rollout=r, arm=arm, bucket_start=bucket, requests=requests,
                )  # fmt: skip

    def steady(n: int, at: datetime) -> int:
        controller_cycle(now=at)  # builds what changed
        with CaptureQueriesContext(connection) as ctx:
            counts = controller_cycle(now=at + timedelta(minutes=1))
        assert counts["noted"] == n
        return len(ctx.captured_queries)

    now = timezone.now()
    canaries(2)
    two = steady(2, now)
    versions = ManifestVersion.objects.count()
    canaries(2)
    four = steady(4, now + timedelta(minutes=5))
    per_rollout = (four - two) / 2
    assert per_rollout <= 10, (two, four)
    assert two - 2 * per_rollout <= 8  # the cycle's own reads: ids, rows, log position, analysis
    steady_notes = IterationNote.objects.filter(created_at__gte=now + timedelta(minutes=6))
    assert all(n.trace_ids[-1].startswith("inputs:") for n in steady_notes)
    assert ManifestVersion.objects.count() == versions + 2  # only the two new rollouts' manifests
