"""The rollout controller's periodic work: one cycle per active rollout, and flag expiry alerts.

``controller_cycle`` runs every ``ROLLOUT_CONTROLLER_INTERVAL_SECONDS`` (Celery beat,
``rollouts.tasks.controller_tick``): for each progressing or paused rollout it appends the
phase manifest and an ``IterationNote`` saying what the cycle found. The telemetry signal
comes from ``rollouts.manifest.signal_for`` (sources registered by the next issue's
analysis); with none, a progressing canary is ``blocked_no_signal``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import event_record
from rollouts import canary, contract
from rollouts.analysis import ADVANCE, PAUSE, ROLLBACK, Verdict
from rollouts.choices import ACTIVE_STATES, RolloutState, RolloutStrategy
from rollouts.manifest import Signal, manifest_append, manifest_latest, signal_for
from rollouts.models import IterationNote, ManifestVersion, Rollout
from rollouts.selectors import rollout_url

log = logging.getLogger(__name__)

LANE_COMPLETED, LANE_EXECUTION_FAILED, BLOCKED_NO_SIGNAL = contract.NOTE_OUTCOMES


@dataclass
class Judgement:
    outcome: str
    reason: str


def judge(rollout: Rollout, manifest: ManifestVersion, signal: Signal) -> Judgement:
    """What one cycle concludes about a rollout from its manifest and its telemetry signal.

    The next issue's automatic rollback acts on ``lane_execution_failed`` with an
    unhealthy signal; this one only records it.
    """
    failed = manifest.body["observation_summary"]["phases_failed"]
    where = f"step {rollout.step} of {len(rollout.steps or [])}"
    if failed:
        return Judgement(
            LANE_EXECUTION_FAILED,
            f"{rollout.reference} at {where}: phases failing: {', '.join(failed)}",
        )
    if rollout.state == RolloutState.PAUSED:
        return Judgement(LANE_COMPLETED, f"{rollout.reference} is paused at {where}; holding")
    if signal.healthy is False:
        return Judgement(
            LANE_EXECUTION_FAILED,
            f"{rollout.reference} at {where}: telemetry unhealthy ({signal.source}: {signal.detail})",
        )
    if rollout.strategy == RolloutStrategy.CANARY and (
        signal.healthy is None or not signal.samples
    ):
        return Judgement(
            BLOCKED_NO_SIGNAL,
            f"{rollout.reference} at {where} ({rollout.weight / 1000:g}%): no telemetry signal "
            "yet; the step holds until an administrator advances it",
        )
    return Judgement(
        LANE_COMPLETED,
        f"{rollout.reference} at {where}: manifest passes"
        + (f"; telemetry healthy ({signal.samples} samples)" if signal.healthy else ""),
    )


def _rollback_evidence(manifest: ManifestVersion) -> str:
    return str(manifest.body["rollback_proof"].get("rollback_incident_evidence_path") or "")


@transaction.atomic
def rollout_iterate(
    *,
    rollout: Rollout,
    now: datetime | None = None,
    trace_id: str = "",
    position: int | None = None,
) -> IterationNote | None:
    """One controller cycle for one rollout: analysis acted on, manifest appended, note
    written, event recorded.

    Skips (None) a rollout another worker holds (its row is locked), one no longer active,
    and one already noted less than half an interval ago (a duplicate beat). The manifest is
    appended only when its inputs changed since the last note (``_inputs_digest``; the note
    carries the digest as an ``inputs:`` trace id): ``position`` is ``log_position()`` read
    once per cycle.
    """
    now = now or timezone.now()
    if position is None:
        position = log_position()
    locked = (
        Rollout.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("tenant", "change")
        .filter(pk=rollout.pk, state__in=ACTIVE_STATES)
        .first()
    )
    if locked is None:
        return None
    rollout = locked
    last = IterationNote.objects.filter(rollout=rollout).order_by("-number").first()
    interval = timedelta(seconds=settings.ROLLOUT_CONTROLLER_INTERVAL_SECONDS)
    if last is not None and now - last.created_at < interval / 2:
        return None
    with canary.acting():
        where = f"step {rollout.step} of {len(rollout.steps or [])}"
        analysed = canary.verdict_for(rollout, now=now)
        action = None
        if analysed is not None:
            seen = analysed.revision if analysed.revision is not None else rollout.revision
            action = canary.act(rollout, analysed, revision=seen)
            if action.done:
                rollout.refresh_from_db()
        signal = signal_for(rollout)
        inputs = _inputs_digest(rollout, signal, position)
        latest = manifest_latest(rollout)
        if (
            latest is not None
            and last is not None
            and not (action is not None and action.done)
            and f"inputs:{inputs}" in (last.trace_ids or [])
        ):
            manifest = latest  # nothing the manifest reads changed since the last cycle
        else:
            manifest = manifest_append(rollout=rollout, actor=None)
        verdict = judge(rollout, manifest, signal)
        if analysed is not None and action is not None:
            verdict = _analysis_judgement(rollout, where, verdict, analysed, action)
    trace_ids = [f"manifest:{manifest.sha256}"]
    trace_ids += [t for t in (trace_id, *signal.trace_ids) if t]
    trace_ids.append(f"inputs:{inputs}")  # what the next cycle compares
    note = IterationNote.objects.create(
        rollout=rollout,
        number=(last.number if last is not None else 0) + 1,
        outcome=verdict.outcome,
        reason=verdict.reason[:2000],
        manifest=manifest,
        rollback_evidence=_rollback_evidence(manifest),
        trace_ids=trace_ids,
        created_at=now,
    )
    payload: dict[str, Any] = {
        "rollout": rollout.reference,
        "number": note.number,
        "outcome": note.outcome,
        "reason": note.reason,
        "manifest": {"number": manifest.number, "sha256": manifest.sha256},
        "rollback_evidence": note.rollback_evidence,
        "trace_ids": trace_ids,
    }
    if action is not None and action.done:
        payload["analysis"] = action.evidence  # the evidence of an automatic transition
    event_record(
        kind=EventKind.ROLLOUT_ITERATION_NOTED,
        actor=None,
        tenant=rollout.tenant,
        subject=rollout,
        payload=payload,
    )
    if action is not None and action.done and action.decision == ROLLBACK:
        # The rollback's own manifest was built before the pointers-restored time was known.
        with canary.acting() as store:
            store[rollout.pk] = action.evidence
            manifest_append(rollout=rollout, actor=None)
    return note


_DONE = {ROLLBACK: "rolled back", PAUSE: "paused", ADVANCE: "advanced"}


def _analysis_judgement(
    rollout: Rollout, where: str, judged: Judgement, analysed: Verdict, action: canary.Action
) -> Judgement:
    """The note of a cycle the canary analysis judged: what it decided and did, and why."""
    if action.done:
        head = _DONE.get(action.decision, action.decision)
    elif action.decision:
        head = f"{action.decision} not taken ({action.reason})"
    else:
        head = "holding"
    reason = f"{rollout.reference} at {where}: {head}: {analysed.reason}"
    if judged.outcome == LANE_EXECUTION_FAILED and analysed.decision != ROLLBACK:
        return Judgement(LANE_EXECUTION_FAILED, f"{reason}; {judged.reason}")
    return Judgement(analysed.outcome, reason)


#: Events the controller itself records every cycle: they change no manifest's inputs.
_CONTROLLER_KINDS = (EventKind.ROLLOUT_ITERATION_NOTED, EventKind.ROLLOUT_MANIFEST_APPENDED)


def log_position() -> int:
    """The newest event other than the controller's own notes and manifests (0: none).

    Every state change that a manifest reads (a pointer move, a promotion, an approval
    voided, a version deprecated or retired, a rollout transition) records an event, so an
    unchanged position means nothing but the telemetry changed.
    """
    found = (
        Event.objects.exclude(kind__in=_CONTROLLER_KINDS)
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )
    return int(found or 0)


def _inputs_digest(rollout: Rollout, signal: Signal, position: int) -> str:
    """What decides whether the manifest must be rebuilt: the rollout's revision, the log
    position and the signal's verdict (healthy or not, and its decision). The signal's
    running counts are left out: they change every cycle, are in every note's reason and
    event, and reach the manifest whenever the verdict or the rollout changes."""
    evidence = signal.evidence or {}
    key = {
        "revision": rollout.revision,
        "state": rollout.state,
        "position": position,
        "signal": [signal.source, signal.healthy, bool(signal.samples),
                   evidence.get("decision")],
    }  # fmt: skip
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def controller_cycle(*, now: datetime | None = None, trace_id: str = "") -> dict[str, int]:
    """Every progressing or paused rollout, each in its own transaction (one failure stays its own)."""
    now = now or timezone.now()
    counts = {"noted": 0, "skipped": 0, "failed": 0}
    ids = list(
        Rollout.objects.filter(state__in=ACTIVE_STATES)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    rollouts = {r.pk: r for r in Rollout.objects.filter(pk__in=ids)}
    position = log_position()
    with canary.analysis_cycle(rollouts.values(), now=now):  # every canary's counters at once
        for pk in ids:
            rollout = rollouts.get(pk)
            if rollout is None:
                continue
            try:
                note = rollout_iterate(
                    rollout=rollout, now=now, trace_id=trace_id, position=position
                )
            except Exception as exc:  # one broken rollout must not stop the others' cycles
                log.exception("controller cycle failed for %s", rollout.reference)
                counts["failed"] += int(_note_failure(rollout, now, exc, trace_id) is not None)
                continue
            counts["noted" if note is not None else "skipped"] += 1
    return counts


@transaction.atomic
def _note_failure(
    rollout: Rollout, now: datetime, exc: Exception, trace_id: str
) -> IterationNote | None:
    """A cycle that raised still leaves its note (against the last stored manifest, if any)."""
    locked = (
        Rollout.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(pk=rollout.pk)
        .first()
    )
    manifest = ManifestVersion.objects.filter(rollout_id=rollout.pk).order_by("-number").first()
    if locked is None or manifest is None:
        return None
    rollout = locked
    last = IterationNote.objects.filter(rollout=rollout).order_by("-number").first()
    note = IterationNote.objects.create(
        rollout=rollout,
        number=(last.number if last is not None else 0) + 1,
        outcome=LANE_EXECUTION_FAILED,
        reason=f"{rollout.reference}: the cycle failed: {type(exc).__name__}: {exc}"[:2000],
        manifest=manifest,
        rollback_evidence=_rollback_evidence(manifest),
        trace_ids=[t for t in (f"manifest:{manifest.sha256}", trace_id) if t],
        created_at=now,
    )
    event_record(
        kind=EventKind.ROLLOUT_ITERATION_NOTED,
        actor=None,
        tenant=rollout.tenant,
        subject=rollout,
        payload={
            "rollout": rollout.reference,
            "number": note.number,
            "outcome": note.outcome,
            "reason": note.reason,
            "manifest": {"number": manifest.number, "sha256": manifest.sha256},
            "rollback_evidence": note.rollback_evidence,
            "trace_ids": note.trace_ids,
        },
    )
    return note


# --- feature flags: alert before they expire -------------------------------------------------


def _flag_alerted(rollout: Rollout, expires_at: datetime) -> bool:
    stamp = expires_at.isoformat()
    payloads = Event.objects.filter(
        kind=EventKind.ROLLOUT_FLAG_EXPIRING, subject_id=str(rollout.pk)
    ).values_list("payload", flat=True)
    return any(isinstance(p, dict) and p.get("expires_at") == stamp for p in payloads)


def flag_alerts_send(*, now: datetime | None = None) -> int:
    """Alert a flag rollout's creator and its change's author ``ROLLOUT_FLAG_WARNING_DAYS``
    before the flag expires: a notification each and one ``rollout.flag_expiring`` event per
    flag and expiry (a flag given a new expiry is announced again). Returns alerts sent."""
    from governance.kernel.notifications import notification_send
    from rollouts.services.transitions import flag_subject

    now = now or timezone.now()
    horizon = now + timedelta(days=settings.ROLLOUT_FLAG_WARNING_DAYS)
    due = Rollout.objects.filter(
        strategy=RolloutStrategy.FLAG,
        state__in=ACTIVE_STATES,
        flag_expires_at__gt=now,
        flag_expires_at__lte=horizon,
    ).order_by("number")
    sent = 0
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            rollout = (
                Rollout.objects.select_for_update(of=("self",))
                .select_related("tenant", "change__author", "created_by")
                .get(pk=pk)
            )
            expires_at = rollout.flag_expires_at
            if expires_at is None or _flag_alerted(rollout, expires_at):
                continue
            days = max(0, (expires_at - now).days)
            title = (
                f"Finish or roll back {rollout.reference}: its flag {rollout.flag_key} "
                f"expires in {days} days"
            )
            body = (
                f"On {expires_at:%Y-%m-%d %H:%M} UTC the flag stops being evaluated and "
                f"{rollout.change.reference} serves the default again. Finish the rollout "
                "(advance it) or roll it back before then."
            )
            notification_send(
                users=[rollout.created_by, rollout.change.author],
                tenant=rollout.tenant,
                title=title,
                body=body,
                url=rollout_url(rollout),
                dedupe_key=f"rollout-flag-expiring:{rollout.pk}:{expires_at.isoformat()}",
                subject=flag_subject(rollout),
            )
            event_record(
                kind=EventKind.ROLLOUT_FLAG_EXPIRING,
                actor=None,
                tenant=rollout.tenant,
                subject=rollout,
                payload={
                    "rollout": rollout.reference,
                    "flag": rollout.flag_key,
                    "expires_at": expires_at.isoformat(),
                    "notified": sorted(
                        {u.username for u in (rollout.created_by, rollout.change.author) if u}
                    ),
                },
            )
            sent += 1
    return sent
