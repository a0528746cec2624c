"""The rollout controller: one cycle per active rollout and interval, notes, and flag alerts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.sweep import governance_sweep
from rollouts import manifest, services
from rollouts.choices import RolloutState
from rollouts.controller import controller_cycle, flag_alerts_send, rollout_iterate
from rollouts.manifest import Signal
from rollouts.models import IterationNote, ManifestVersion
from rollouts.tasks import rollouts_controller_tick
from tests.rollouts.manifest_setup import World, roll_back, rollout_of, world


@pytest.fixture
def w(make_user: Any, acme: Any) -> World:
    return world(make_user, acme)


def notes(rollout: Any) -> list[IterationNote]:
    return list(IterationNote.objects.filter(rollout=rollout).order_by("number"))


def test_beat_runs_the_controller_every_interval() -> None:
    entry = settings.CELERY_BEAT_SCHEDULE["rollouts-controller"]
    assert entry["task"] == "rollouts.tasks.rollouts_controller_tick"
    assert entry["schedule"] == float(settings.ROLLOUT_CONTROLLER_INTERVAL_SECONDS)
    assert rollouts_controller_tick.name == entry["task"]


def test_a_progressing_canary_without_telemetry_is_blocked_no_signal(w: World) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=2)
    draft = rollout_of(w)
    finished = rollout_of(w, state=RolloutState.SUCCEEDED, step=5)
    counts = rollouts_controller_tick.apply().get()
    assert counts == {"noted": 1, "skipped": 0, "failed": 0, "downgraded": 0}
    (note,) = notes(rollout)
    assert note.number == 1
    assert note.outcome == "blocked_no_signal"
    assert note.reason.startswith(f"{rollout.reference} at step 2 of 5 (5%): no telemetry signal")
    (version,) = ManifestVersion.objects.filter(rollout=rollout)
    assert note.manifest == version
    assert version.status == "pass"
    assert note.trace_ids[0] == f"manifest:{version.sha256}"
    assert note.rollback_evidence == ""
    event = Event.objects.get(kind=EventKind.ROLLOUT_ITERATION_NOTED)
    assert event.subject_id == str(rollout.pk)
    assert event.actor is None
    assert event.payload["outcome"] == "blocked_no_signal"
    assert event.payload["manifest"] == {"number": 1, "sha256": version.sha256}
    assert not notes(draft)
    assert not notes(finished)  # only progressing or paused rollouts


def test_duplicate_beats_note_once_per_interval(w: World) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    start = timezone.now()
    interval = timedelta(seconds=settings.ROLLOUT_CONTROLLER_INTERVAL_SECONDS)
    assert controller_cycle(now=start)["noted"] == 1
    assert controller_cycle(now=start + timedelta(seconds=1)) == {
        "noted": 0,
        "skipped": 1,
        "failed": 0,
    }
    assert controller_cycle(now=start + interval)["noted"] == 1
    assert [n.number for n in notes(rollout)] == [1, 2]
    # nothing changed between cycles: both notes point at the one manifest version
    assert {n.manifest_id for n in notes(rollout)} == {
        ManifestVersion.objects.get(rollout=rollout).pk
    }
    assert Event.objects.filter(kind=EventKind.ROLLOUT_ITERATION_NOTED).count() == 2
    assert Event.objects.filter(kind=EventKind.ROLLOUT_MANIFEST_APPENDED).count() == 1


def test_outcomes_follow_the_manifest_and_the_signal(w: World) -> None:
    now = timezone.now()
    paused = rollout_of(w, state=RolloutState.PAUSED, step=1)
    held = rollout_iterate(rollout=paused, now=now)
    assert held is not None
    assert held.outcome == "lane_completed"
    assert held.reason == f"{paused.reference} is paused at step 1 of 5; holding"
    tenant_wave = rollout_of(w, strategy="tenant", state=RolloutState.PROGRESSING, step=1)
    done = rollout_iterate(rollout=tenant_wave, now=now)
    assert done is not None
    assert done.outcome == "lane_completed"

    canary = rollout_of(w, state=RolloutState.PROGRESSING, step=1)

    def healthy(r: Any) -> Signal | None:
        return Signal(source="t", samples=900, healthy=True, trace_ids=("rec-1", "tp-2"))

    manifest.signal_source_register(healthy)
    try:
        ok = rollout_iterate(rollout=canary, now=now)
    finally:
        manifest.signal_source_unregister(healthy)
    assert ok is not None
    assert ok.outcome == "lane_completed"
    assert "telemetry healthy (900 samples)" in ok.reason
    assert ok.trace_ids[1:-1] == ["rec-1", "tp-2"]
    assert ok.trace_ids[-1].startswith("inputs:")  # the digest the next cycle compares

    paper = rollout_of(w, target="paper", state=RolloutState.PROGRESSING, step=1)
    failed = rollout_iterate(rollout=paper, now=now)
    assert failed is not None
    assert failed.outcome == "lane_execution_failed"
    assert "phases failing: paper-canary" in failed.reason
    assert failed.manifest.status == "fail"


def test_a_rolled_back_rollout_is_not_cycled_its_manifest_carries_the_evidence(w: World) -> None:
    rollout = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    now = timezone.now()
    rollout_iterate(rollout=rollout, now=now)
    roll_back(w, rollout)
    assert rollout_iterate(rollout=rollout, now=now + timedelta(hours=1)) is None
    version = manifest.manifest_append(rollout=rollout)
    assert version.number == 2
    assert version.body["rollback_proof"]["evidence_present"]
    seq = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK).seq
    assert version.body["rollback_proof"]["rollback_incident_evidence_path"].endswith(f"/{seq}/")


def test_a_cycle_that_raises_notes_the_failure_and_the_others_go_on(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    second = rollout_of(w, state=RolloutState.PROGRESSING, step=1)
    now = timezone.now()
    rollout_iterate(rollout=first, now=now)  # it has a manifest to point at
    real = manifest.signal_for

    def broken(rollout: Any) -> Signal:
        if rollout.pk == first.pk:
            raise RuntimeError("telemetry store down")
        return real(rollout)

    monkeypatch.setattr("rollouts.controller.signal_for", broken)
    later = now + timedelta(hours=1)
    assert controller_cycle(now=later) == {"noted": 1, "skipped": 0, "failed": 1}
    last = notes(first)[-1]
    assert last.number == 2
    assert last.outcome == "lane_execution_failed"
    assert "RuntimeError: telemetry store down" in last.reason
    assert notes(second)[0].outcome == "blocked_no_signal"


# --- flags ----------------------------------------------------------------------------------


def flag_rollout(w: World, expires_in: timedelta, **kw: Any) -> Any:
    return rollout_of(
        w,
        strategy="flag",
        state=kw.pop("state", RolloutState.PROGRESSING),
        step=1,
        flag_key="polite-qualify",
        flag_on=True,
        flag_expires_at=timezone.now() + expires_in,
        **kw,
    )


def test_the_sweep_alerts_a_flags_owners_once_before_it_expires(w: World) -> None:
    soon = flag_rollout(w, timedelta(days=settings.ROLLOUT_FLAG_WARNING_DAYS - 2))
    flag_rollout(w, timedelta(days=settings.ROLLOUT_FLAG_WARNING_DAYS + 3))  # too early
    flag_rollout(w, -timedelta(hours=1))  # expired: resolution ignores it, no alert
    flag_rollout(w, timedelta(days=1), state=RolloutState.ABORTED)  # not active
    assert governance_sweep()["rollout_flag_alerts"] == 1
    assert governance_sweep()["rollout_flag_alerts"] == 0
    event = Event.objects.get(kind=EventKind.ROLLOUT_FLAG_EXPIRING)
    assert event.subject_id == str(soon.pk)
    assert event.payload["flag"] == "polite-qualify"
    assert event.payload["notified"] == sorted(
        [w.people["admin"].username, w.people["author"].username]
    )
    alerts = Notification.objects.filter(title__contains="polite-qualify")
    assert {n.user for n in alerts} == {w.people["admin"], w.people["author"]}
    assert all(soon.reference in n.title and "expires in" in n.title for n in alerts)

    # a new expiry is announced again
    soon.flag_expires_at = timezone.now() + timedelta(days=2)
    soon.save(update_fields=["flag_expires_at"])
    assert flag_alerts_send() == 1
    assert Event.objects.filter(kind=EventKind.ROLLOUT_FLAG_EXPIRING).count() == 2
    # one open alert per person (the new expiry replaced the first), phrased as the action
    open_alerts = Notification.objects.filter(
        subject=f"rollout:{soon.pk}:flag", resolved_at__isnull=True
    )
    assert open_alerts.count() == 2
    assert all(n.title.startswith(f"Finish or roll back {soon.reference}:") for n in open_alerts)
    # ending the rollout resolves them
    services.rollout_abort(rollout=soon, actor=w.people["admin"], reason="Not needed")
    assert not open_alerts.all().exists()
    assert set(
        Notification.objects.filter(subject=f"rollout:{soon.pk}:flag").values_list(
            "resolution", flat=True
        )
    ) >= {f"{soon.reference} is aborted."}
