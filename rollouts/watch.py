"""Active means watched: the controller judges every active version that serves slots, and
downgrades one that breaks its thresholds in production (docs/rollouts.md).

Each controller tick (``rollouts.tasks.rollouts_controller_tick``) runs ``watch_cycle``: for
each artifact bound to a slot, with an active version and no rollout running on its slots,
the active version's telemetry over ``ROLLOUT_WATCH_WINDOW_SECONDS`` is judged by
``rollouts.analysis.judge_active`` (the canary analysis' count tests and change gates, against
the previous good version's telemetry). A breach with at least ``ROLLOUT_WATCH_MIN_REQUESTS``
requests is a downgrade (``version_downgrade``) through the rollback production uses for
that default: the succeeded rollout that made it the default is rolled back
(``rollout_rollback``: every pointer it moved goes back), else the default goes back to its
rollback point the way a rollout's rollback moves it (``reviews.services.versions_activate``,
kind rollback, with its pointer move). Either way the version's stage becomes approved, a
``version.downgraded`` event carries the evidence and the artifact's owner and deputy are
notified.

Once per breach: a downgraded version is no longer active, so it is not judged again until
it is made active again. Two controllers at once: a downgrade takes an advisory lock
(PostgreSQL) and re-reads the active version under it; the second finds it moved and does
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import event_record
from registry.models import Artifact, Version
from reviews.choices import ActivationKind
from reviews.models import Activation, ChangeGate
from reviews.services import versions_activate
from reviews.services.rollback import rollback_point
from rollouts.analysis import WatchPolicy, WatchVerdict, judge_active
from rollouts.choices import ACTIVE_STATES, Arm, RolloutState
from rollouts.models import Rollout, RolloutTarget, TelemetryCounter
from rollouts.selectors import servable_versions
from rollouts.telemetry import Totals
from rollouts.telemetry_selectors import totals_annotations

log = logging.getLogger(__name__)

#: PostgreSQL advisory lock that serialises downgrade decisions ("gov-watc").
WATCH_LOCK_ID = 0x676F762D77617463


def policy() -> WatchPolicy:
    """The watch's settings (read at each call: tests override them)."""
    return WatchPolicy(
        alpha=float(settings.ROLLOUT_ANALYSIS_ALPHA),
        min_requests=int(settings.ROLLOUT_WATCH_MIN_REQUESTS),
        window_seconds=float(settings.ROLLOUT_WATCH_WINDOW_SECONDS),
    )


@dataclass
class Plan:
    """Where a downgrade of an artifact's active version goes, and through which rollback."""

    activation: Activation | None
    #: The succeeded rollout that made the active version the default (rolled back whole).
    rollout: Rollout | None
    #: The version the downgrade restores (None: nothing earlier to go back to).
    target: Version | None


def downgrade_plan(artifact: Artifact) -> Plan:
    """How the active version of ``artifact`` would be downgraded (three queries)."""
    activation = (
        Activation.objects.filter(artifact=artifact)
        .select_related("change")
        .order_by("-created_at")
        .first()
    )
    if activation is not None and (
        activation.kind == ActivationKind.PROMOTION
        and activation.version_id == artifact.active_version_id
        and activation.change_id is not None
    ):
        made_by = (
            RolloutTarget.objects.filter(
                rollout__change_id=activation.change_id,
                rollout__state=RolloutState.SUCCEEDED,
                slot__artifact_id=artifact.pk,
                candidate_id=artifact.active_version_id,
            )
            .select_related(
                "rollout", "baseline__artifact__tenant", "baseline__artifact__artifact_class"
            )
            .order_by("-rollout__number")
            .first()
        )
        if made_by is not None:
            return Plan(activation, made_by.rollout, made_by.baseline)
    return Plan(activation, None, rollback_point(artifact))


def _totals(rows: Any) -> Totals:
    total = Totals()
    for row in rows.order_by().values("version_id").annotate(**totals_annotations()):
        total.add(Totals.from_row(row))
    return total


def baseline_totals(plan: Plan, window: timedelta) -> Totals:
    """The previous good version's production telemetry: the stable arm of the rollout that
    made the active version the default, else the rollback point's traffic in the window
    before the activation (empty when there is none)."""
    if plan.rollout is not None:
        return _totals(TelemetryCounter.objects.filter(rollout=plan.rollout, arm=Arm.STABLE))
    if plan.target is None or plan.activation is None:
        return Totals()
    until = plan.activation.created_at
    return _totals(
        TelemetryCounter.objects.filter(
            version_id=plan.target.pk, bucket_start__gte=until - window, bucket_start__lt=until
        )
    )


def observed_totals(
    version_ids: list[Any], *, now: datetime, window: timedelta
) -> dict[Any, Totals]:
    """Each version's telemetry over ``[now - window, now]``, in one query."""
    rows = (
        TelemetryCounter.objects.filter(
            version_id__in=version_ids, bucket_start__gte=now - window, bucket_start__lte=now
        )
        .order_by()
        .values("version_id")
        .annotate(**totals_annotations())
    )
    return {row["version_id"]: Totals.from_row(row) for row in rows}


def gates_of(artifact: Artifact) -> list[Any]:
    """The change gates of the artifact's class in its tenant (what the canary analysis reads)."""
    found = (
        ChangeGate.objects.filter(
            tenant_id=artifact.tenant_id, artifact_class_id=artifact.artifact_class_id
        )
        .values_list("gates", flat=True)
        .first()
    )
    return list(found or [])


def watched_artifacts() -> list[Artifact]:
    """Artifacts bound to a slot, with an active version and no rollout running on their slots
    (a running rollout's own analysis watches them)."""
    running = RolloutTarget.objects.filter(rollout__state__in=ACTIVE_STATES).values(
        "slot__artifact_id"
    )
    return list(
        Artifact.objects.filter(active_version__isnull=False, slots__isnull=False)
        .exclude(pk__in=running)
        .distinct()
        .select_related("active_version", "tenant", "artifact_class", "owner")
        .order_by("pk")
    )


def watch_verdict(
    artifact: Artifact, *, now: datetime | None = None, observed: Totals | None = None
) -> WatchVerdict:
    """The watch's judgement of ``artifact``'s active version now (its evidence included)."""
    now = now or timezone.now()
    pol = policy()
    window = timedelta(seconds=pol.window_seconds)
    if observed is None:
        observed = observed_totals([artifact.active_version_id], now=now, window=window).get(
            artifact.active_version_id, Totals()
        )
    if observed.requests < pol.min_requests:
        return judge_active(observed, Totals(), [], pol)  # nothing to judge: no more reads
    plan = downgrade_plan(artifact)
    return judge_active(observed, baseline_totals(plan, window), gates_of(artifact), pol)


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [WATCH_LOCK_ID])


def _ref(version: Version | None) -> dict[str, str] | None:
    from rollouts.services.moves import version_ref

    return version_ref(version) if version is not None else None


@transaction.atomic
def version_downgrade(
    *, artifact: Artifact, version: Version, verdict: WatchVerdict
) -> Event | None:
    """Downgrade ``version``, the active version of ``artifact``, for the breach in ``verdict``.

    Under the watch's lock the active version is read again: if it is no longer ``version``
    (another controller downgraded it, a person moved it) nothing happens (None). Else the
    rollback of ``downgrade_plan`` runs as the system (actor None), the version's stage
    becomes approved (the rollback services do that), one ``version.downgraded`` event
    carries the evidence (the thresholds broken, observed values, window, sample size), and
    the owner and deputy are notified. Refused (``Conflict``, nothing changed) when there is
    nothing earlier to go back to or it may no longer serve.
    """
    from governance.kernel.notifications import notification_send
    from rollouts.services import default_moves_record, rollout_rollback

    _lock()
    held = (
        Artifact.objects.select_related(
            "tenant", "artifact_class", "owner", "deputy", "active_version"
        )
        .filter(pk=artifact.pk)
        .first()
    )
    if held is None or held.active_version_id != version.pk:
        return None
    active = held.active_version
    assert active is not None
    version = active
    plan = downgrade_plan(held)
    target = plan.target
    reason = f"automatic downgrade of {version.version}: {verdict.reason}"[:2000]
    if plan.activation is not None and plan.activation.kind != ActivationKind.PROMOTION:
        # A version a rollback restored is the previous good one: the watch never walks
        # further back on its own (a cause outside the versions would take them all down).
        raise Conflict(
            f"{version.version} was restored by a rollback; the watch does not go further back "
            "on its own: decide in person (roll back to another version, or the safety switch).",
            field="version",
        )
    if target is None:
        raise Conflict(
            f"{held.path} has no earlier version to go back to; the safety switch (deactivate) "
            "takes it out of service if it must stop serving.",
            field="version",
        )
    gone = servable_versions([target.pk], pointed_before=True).get(target.pk)
    if isinstance(gone, str):
        raise Conflict(f"Cannot go back to {target.version}: {gone}.", field="version")
    if plan.rollout is not None:
        rollout_rollback(rollout=plan.rollout, actor=None, reason=reason)
        via = plan.rollout.reference
    else:
        change = plan.activation.change if plan.activation is not None else None
        versions_activate(versions=[target], change=change, actor=None, reason=reason,
                          kind=ActivationKind.ROLLBACK)  # fmt: skip
        default_moves_record([(held, version, target)], None, reason)
        via = "rollback"
    breaches = verdict.evidence.get("breaches") or []
    event = event_record(
        kind=EventKind.VERSION_DOWNGRADED,
        actor=None,
        tenant=held.tenant,
        subject=version,
        payload={
            "artifact": held.path,
            "from": _ref(version),
            "to": _ref(target),
            "via": via,
            "stage": "approved",
            "reason": verdict.reason,
            "thresholds": [b.get("threshold") for b in breaches],
            "observed": {b.get("metric"): b.get("observed") for b in breaches},
            "window_seconds": verdict.evidence.get("window_seconds"),
            "sample_size": verdict.evidence.get("sample_size"),
            "evidence": verdict.evidence,
        },
    )
    notification_send(
        users=[held.owner, getattr(held, "deputy", None)],
        tenant=held.tenant,
        title=f"{held.path}@{version.version} was downgraded automatically",
        body=(
            f"In production it broke its thresholds: {verdict.reason}. {target.version} serves "
            f"again ({via}); {version.version} is back to approved. The evidence is in the "
            "event log (version.downgraded)."
        ),
        url=version.get_absolute_url(),
        dedupe_key=(
            f"version-downgraded:{version.pk}:"
            f"{plan.activation.pk if plan.activation is not None else ''}"
        ),
    )
    return event


def _refused_notify(artifact: Artifact, version: Version, verdict: WatchVerdict, why: str) -> None:
    """A breach the watch could not downgrade: the owner is told once per activation."""
    from governance.kernel.notifications import notification_send

    activation = (
        Activation.objects.filter(artifact=artifact, version=version)
        .order_by("-created_at")
        .values_list("pk", flat=True)
        .first()
    )
    with transaction.atomic():
        notification_send(
            users=[artifact.owner, getattr(artifact, "deputy", None)],
            tenant=artifact.tenant,
            title=f"{artifact.path}@{version.version} breaks its thresholds in production",
            body=f"{verdict.reason}. It was not downgraded automatically: {why}",
            url=version.get_absolute_url(),
            dedupe_key=f"version-breach:{version.pk}:{activation or ''}",
        )


def watch_cycle(*, now: datetime | None = None) -> dict[str, int]:
    """Judge every watched active version; downgrade the ones that broke their thresholds.

    Reads every watched version's window in one query; the plan, baseline and gates only for
    versions with enough requests. Each downgrade is its own transaction (one failure stays
    its own). Returns ``{"downgraded": n}``.
    """
    now = now or timezone.now()
    pol = policy()
    window = timedelta(seconds=pol.window_seconds)
    artifacts = watched_artifacts()
    observed = observed_totals([a.active_version_id for a in artifacts], now=now, window=window)
    downgraded = 0
    for artifact in artifacts:
        totals = observed.get(artifact.active_version_id)
        if totals is None or totals.requests < pol.min_requests:
            continue
        version = artifact.active_version
        assert version is not None
        try:
            verdict = watch_verdict(artifact, now=now, observed=totals)
            if not verdict.breached or not settings.ROLLOUT_AUTO_DOWNGRADE:
                continue
            try:
                done = version_downgrade(artifact=artifact, version=version, verdict=verdict)
            except (Conflict, DomainError) as exc:
                _refused_notify(artifact, version, verdict, str(exc))
                continue
            downgraded += int(done is not None)
        except Exception:  # one broken artifact must not stop the others' watch
            log.exception("watch failed for %s", artifact.path)
    return {"downgraded": downgraded}
