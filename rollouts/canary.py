"""Canary analysis wired into the controller: read counters, decide, act (one transition).

``analyse(rollouts, now)`` reads what ``rollouts.analysis.decide`` needs for many canary
rollouts in a fixed number of queries (pointer moves, counters per step and arm, the step
events' sequences, targets and change gates): five, whatever the number of rollouts or
rows. ``controller_cycle`` calls it once per cycle (``analysis_cycle``) and every rollout's
iteration reads its verdict from there; ``canary_signal`` (the ``Signal`` source registered
in ``RolloutsConfig.ready``) turns a verdict into the manifest's telemetry signal, with its
evidence. ``act`` performs the decision through the rollout services as the system
(actor None) with the revision seen at evaluation: a duplicate or late beat gets a 409 and
changes nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, IntegerField, Max, Min, Q, Value, When
from django.utils import timezone

from governance.kernel.errors import Conflict
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import events_pending
from rollouts import analysis
from rollouts.analysis import Observation, Policy, StepCounts, Verdict
from rollouts.choices import BUCKETS, PointerKind, PromotionTarget, RolloutState, RolloutStrategy
from rollouts.manifest import Signal
from rollouts.models import PointerMove, Rollout, RolloutTarget, TelemetryCounter
from rollouts.selectors import rollout_url
from rollouts.telemetry import Totals
from rollouts.telemetry_selectors import totals_annotations

SOURCE = "canary-analysis"


def policy() -> Policy:
    """The step policy and test levels from settings (read at each call: tests override them)."""
    return Policy(
        alpha=float(settings.ROLLOUT_ANALYSIS_ALPHA),
        srm_alpha=float(settings.ROLLOUT_SRM_ALPHA),
        srm_min_requests=int(settings.ROLLOUT_SRM_MIN_REQUESTS),
        step_min_seconds=float(settings.ROLLOUT_STEP_MIN_SECONDS),
        step_min_requests=int(settings.ROLLOUT_STEP_MIN_REQUESTS),
        data_deadline_seconds=float(settings.ROLLOUT_DATA_DEADLINE_SECONDS),
        stale_seconds=float(settings.ROLLOUT_TELEMETRY_STALE_SECONDS),
        snapshot_lag_seconds=float(settings.ROLLOUT_SNAPSHOT_LAG_SECONDS),
        auto_advance=bool(settings.ROLLOUT_AUTO_ADVANCE),
    )


def analysed(rollout: Rollout) -> bool:
    """Rollouts the analysis judges: live canaries that started (a paper cohort has no share)."""
    return (
        rollout.strategy == RolloutStrategy.CANARY
        and rollout.target != PromotionTarget.PAPER
        and rollout.step > 0
        and rollout.state in (RolloutState.PROGRESSING, RolloutState.PAUSED)
    )


@dataclass
class _Window:
    start: datetime
    end: datetime | None
    rho: float


def _windows(ids: list[Any]) -> dict[Any, list[_Window]]:
    """Each rollout's canary steps as time windows with their share (query 1)."""
    moves = (
        PointerMove.objects.filter(rollout_id__in=ids, kind=PointerKind.CANARY)
        .order_by("rollout_id", "id")
        .values_list("rollout_id", "created_at", "weight")
    )
    per: dict[Any, list[tuple[datetime, int]]] = defaultdict(list)
    for rid, at, weight in moves:
        if per[rid] and per[rid][-1][0] == at:  # several slots moved in one transition
            continue
        per[rid].append((at, int(weight or 0)))
    answer: dict[Any, list[_Window]] = {}
    for rid, points in per.items():
        windows = []
        for i, (at, weight) in enumerate(points):
            end = points[i + 1][0] if i + 1 < len(points) else None
            if weight > 0:
                windows.append(_Window(at, end, weight / BUCKETS))
        answer[rid] = windows
    return answer


@dataclass
class _Segment:
    rollout_id: Any
    window: int
    settled: bool


def _counters(
    windows: dict[Any, list[_Window]], lag: timedelta
) -> tuple[dict[tuple[Any, int], dict[str, Totals]], dict[Any, datetime], dict[Any, int]]:
    """Totals per (rollout, step window) and arm, the last receipt and the lowest reported
    snapshot sequence of the current step after ``lag`` (query 2, one for every rollout).

    A bucket counts in a window when it lies wholly inside it; one straddling a step change
    is left out.
    """
    width = timedelta(seconds=settings.TELEMETRY_BUCKET_SECONDS)
    whens: list[When] = []
    segments: list[_Segment] = []
    for rid, ws in windows.items():
        for i, w in enumerate(ws):
            last = i == len(ws) - 1
            bounds = Q(rollout_id=rid, bucket_start__gte=w.start)
            if w.end is not None:
                bounds &= Q(bucket_start__lte=w.end - width)
            if last:
                settled_from = w.start + lag
                whens.append(When(bounds & Q(bucket_start__gte=settled_from),
                                  then=Value(len(segments))))  # fmt: skip
                segments.append(_Segment(rid, i, True))
            whens.append(When(bounds, then=Value(len(segments))))
            segments.append(_Segment(rid, i, False))
    totals: dict[tuple[Any, int], dict[str, Totals]] = defaultdict(dict)
    received: dict[Any, datetime] = {}
    reported: dict[Any, int] = {}
    if not whens:
        return totals, received, reported
    rows = (
        TelemetryCounter.objects.filter(rollout_id__in=list(windows))
        .annotate(segment=Case(*whens, default=Value(-1), output_field=IntegerField()))
        .filter(segment__gte=0)
        .order_by()
        .values("segment", "arm")
        .annotate(  # the sequence's minimum first: the totals' Max takes over its name
            lowest_sequence=Min("snapshot_sequence", filter=Q(snapshot_sequence__gt=0)),
            last_received=Max("received_at"),
            **totals_annotations(),
        )
    )
    for row in rows:
        seg = segments[row["segment"]]
        key = (seg.rollout_id, seg.window)
        totals[key].setdefault(row["arm"], Totals()).add(Totals.from_row(row))
        if row["last_received"] is not None:
            old = received.get(seg.rollout_id)
            received[seg.rollout_id] = (
                max(old, row["last_received"]) if old else row["last_received"]
            )
        if seg.settled and row["lowest_sequence"]:
            low = int(row["lowest_sequence"])
            reported[seg.rollout_id] = min(reported.get(seg.rollout_id, low), low)
    return totals, received, reported


def _expected_sequences(ids: list[Any]) -> dict[Any, int]:
    """The log position of each rollout's last step event (query 3): a runtime snapshot at or
    past it serves the step's weight."""
    rows = (
        Event.objects.filter(
            kind__in=[EventKind.ROLLOUT_STARTED, EventKind.ROLLOUT_ADVANCED],
            subject_id__in=[str(i) for i in ids],
        )
        .order_by()
        .values("subject_id")
        .annotate(seq=Max("seq"))
    )
    return {row["subject_id"]: int(row["seq"]) for row in rows}


def _gates(rollouts: list[Rollout]) -> dict[Any, list[Any]]:
    """The change gates of each rollout's artifact classes in its tenant (queries 4 and 5)."""
    from reviews.models import ChangeGate

    classes: dict[Any, set[Any]] = defaultdict(set)
    for rid, cls in RolloutTarget.objects.filter(rollout__in=rollouts).values_list(
        "rollout_id", "slot__artifact__artifact_class_id"
    ):
        classes[rid].add(cls)
    tenants = {r.tenant_id for r in rollouts}
    gates = {
        (g.tenant_id, g.artifact_class_id): g.gates
        for g in ChangeGate.objects.filter(tenant_id__in=tenants)
    }
    answer: dict[Any, list[Any]] = {}
    for r in rollouts:
        found: list[Any] = []
        for cls in sorted(classes.get(r.pk, ()), key=str):
            found.extend(gates.get((r.tenant_id, cls)) or [])
        answer[r.pk] = found
    return answer


def analyse(rollouts: Iterable[Rollout], *, now: datetime | None = None) -> dict[Any, Verdict]:
    """``{rollout id: Verdict}`` for the live canary rollouts among ``rollouts``, in five queries."""
    now = now or timezone.now()
    mine = [r for r in rollouts if analysed(r)]
    if not mine:
        return {}
    pol = policy()
    ids = [r.pk for r in mine]
    windows = _windows(ids)
    totals, received, reported = _counters(windows, timedelta(seconds=pol.snapshot_lag_seconds))
    expected = _expected_sequences(ids)
    gates = _gates(mine)
    verdicts: dict[Any, Verdict] = {}
    for r in mine:
        ws = windows.get(r.pk) or []
        if not ws:
            continue
        steps = [
            StepCounts(
                w.rho,
                totals.get((r.pk, i), {}).get("canary", Totals()),
                totals.get((r.pk, i), {}).get("stable", Totals()),
            )
            for i, w in enumerate(ws)
        ]
        obs = Observation(
            now=now,
            progressing=r.state == RolloutState.PROGRESSING,
            steps=steps,
            step_number=r.step,
            step_started_at=ws[-1].start,
            current_canary=steps[-1].canary,
            current_stable=steps[-1].stable,
            last_received_at=received.get(r.pk),
            expected_sequence=expected.get(str(r.pk), 0),
            reported_sequence=reported.get(r.pk, 0),
            gates=gates.get(r.pk),
        )
        verdicts[r.pk] = analysis.decide(obs, pol)
        verdicts[r.pk].revision = r.revision
    return verdicts


# --- one cycle's verdicts, shared by every rollout's iteration and its manifest ---------------

_cycle: ContextVar[dict[Any, Verdict | None] | None] = ContextVar("canary_cycle", default=None)
#: Evidence added after the decision (detection -> pointers restored), by rollout id.
_extra: ContextVar[dict[Any, dict[str, Any]] | None] = ContextVar("canary_extra", default=None)


@contextlib.contextmanager
def analysis_cycle(rollouts: Iterable[Rollout], *, now: datetime | None = None) -> Iterator[None]:
    """Analyse every rollout once for this cycle (five queries); iterations read the result."""
    rollouts = list(rollouts)
    verdicts: dict[Any, Verdict | None] = {r.pk: None for r in rollouts}
    verdicts.update(analyse(rollouts, now=now))
    token = _cycle.set(verdicts)
    try:
        yield
    finally:
        _cycle.reset(token)


def verdict_for(rollout: Rollout, *, now: datetime | None = None) -> Verdict | None:
    """This cycle's verdict on the rollout (analysed now when no cycle is running)."""
    cached = _cycle.get()
    if cached is not None and rollout.pk in cached:
        return cached[rollout.pk]
    if not analysed(rollout):
        return None
    return analyse([rollout], now=now).get(rollout.pk)


def _frozen_evidence(rollout: Rollout) -> dict[str, Any] | None:
    """The evidence an automatic decision recorded (its iteration event), newest first."""

    def usable(payload: Any) -> bool:
        return isinstance(payload, dict) and isinstance(payload.get("analysis"), dict)

    for event in reversed(events_pending()):
        if (event.kind == EventKind.ROLLOUT_ITERATION_NOTED
                and event.subject_id == str(rollout.pk) and usable(event.payload)):  # fmt: skip
            return dict(event.payload["analysis"])
    payloads = (
        Event.objects.filter(kind=EventKind.ROLLOUT_ITERATION_NOTED, subject_id=str(rollout.pk))
        .order_by("-seq")
        .values_list("payload", flat=True)[:20]
    )
    for payload in payloads:
        if usable(payload):
            return dict(payload["analysis"])
    return None


def _signal(verdict: Verdict, extra: dict[str, Any] | None = None) -> Signal:
    evidence = {**verdict.evidence, **(extra or {})}
    samples = int(evidence.get("arms", {}).get("canary", {}).get("requests", 0))
    return Signal(
        source=SOURCE,
        samples=samples,
        healthy=verdict.healthy,
        detail=verdict.reason,
        evidence=evidence,
    )


def canary_signal(rollout: Rollout) -> Signal | None:
    """The ``Signal`` source: a canary rollout's verdict and its evidence (None: not analysed)."""
    if rollout.strategy != RolloutStrategy.CANARY:
        return None
    extra = (_extra.get() or {}).get(rollout.pk)
    if rollout.state == RolloutState.ROLLED_BACK:
        frozen = extra or _frozen_evidence(rollout)
        if frozen is None:
            return None
        return Signal(
            source=SOURCE,
            samples=int(frozen.get("arms", {}).get("canary", {}).get("requests", 0)),
            healthy=False if frozen.get("decision") == analysis.ROLLBACK else None,
            detail=str(frozen.get("reason", "")),
            evidence=frozen,
        )
    verdict = verdict_for(rollout)
    if verdict is None:
        return None
    return _signal(verdict, extra)


# --- acting on a verdict ----------------------------------------------------------------------


@dataclass
class Action:
    """What ``act`` did: the decision taken ('' = none), and whether the transition happened."""

    decision: str
    done: bool
    reason: str
    evidence: dict[str, Any]


def act(rollout: Rollout, verdict: Verdict, *, revision: int) -> Action:
    """Perform ``verdict`` as one compare-and-swap transition (actor None, the system).

    A stale revision (another worker or an administrator moved first) raises ``Conflict``
    inside the service, which changes nothing; it is reported, not retried.
    """
    from rollouts import services

    decision = verdict.decision
    evidence = dict(verdict.evidence)
    if decision == analysis.HOLD:
        return Action("", False, verdict.reason, evidence)
    reason = f"canary analysis: {verdict.reason}"[:2000]
    detected = time.monotonic()
    try:
        if decision == analysis.ROLLBACK:
            evidence["detected_at"] = timezone.now().isoformat()
            services.rollout_rollback(rollout=rollout, actor=None, revision=revision,
                                      reason=reason)  # fmt: skip
            evidence["detection_to_restored_ms"] = round((time.monotonic() - detected) * 1000, 1)
            _rollback_notify(rollout, verdict)
        elif decision == analysis.PAUSE:
            services.rollout_pause(rollout=rollout, actor=None, revision=revision, reason=reason)
        elif decision == analysis.ADVANCE:
            services.rollout_advance(rollout=rollout, actor=None, revision=revision,
                                     reason=reason)  # fmt: skip
    except Conflict as exc:
        return Action(decision, False, f"{decision} not taken: {exc}", evidence)
    evidence["action"] = decision
    store = _extra.get()
    if store is not None:
        store[rollout.pk] = evidence
    return Action(decision, True, verdict.reason, evidence)


@contextlib.contextmanager
def acting() -> Iterator[dict[Any, dict[str, Any]]]:
    """Evidence added by ``act`` shows in manifests built inside this block."""
    store: dict[Any, dict[str, Any]] = {}
    token = _extra.set(store)
    try:
        yield store
    finally:
        _extra.reset(token)


def _rollback_notify(rollout: Rollout, verdict: Verdict) -> None:
    """The artifacts' owners, the rollout's creator and the tenant's administrators, once each
    (in-app now, by email from a worker with the outbox as backstop)."""
    from accounts.choices import Role
    from accounts.models import RoleGrant
    from governance.kernel.notifications import notification_send

    owners = [
        t.slot.artifact.owner
        for t in RolloutTarget.objects.filter(rollout=rollout).select_related(
            "slot__artifact__owner"
        )
    ]
    admins = [
        g.user
        for g in RoleGrant.objects.filter(
            tenant=rollout.tenant, role=Role.ADMINISTRATOR, revoked_at__isnull=True
        ).select_related("user")
    ]
    notification_send(
        users=[*owners, rollout.created_by, *admins],
        tenant=rollout.tenant,
        title=f"{rollout.reference} rolled back automatically",
        body=(
            f"The canary analysis rolled {rollout.reference} ({rollout.change.reference}) back "
            f"at step {rollout.step}: {verdict.reason}. Every pointer it moved is restored; "
            "the evidence is in its phase manifest."
        ),
        url=rollout_url(rollout),
        dedupe_key=f"rollout-auto-rollback:{rollout.pk}",
    )
