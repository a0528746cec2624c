"""What every phase of a manifest reads, gathered once per build (and the drift it finds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import events_pending
from registry.models import Version
from reviews.choices import ActivationKind, Decision
from reviews.models import Activation, Approval, ChangeItem
from reviews.selectors import check_verdicts, items_of
from rollouts.choices import PointerKind, RolloutState
from rollouts.manifest.signal import Signal, signal_for
from rollouts.models import Override, PointerMove, Rollout, RolloutTarget


def event_path(seq: int | None) -> str:
    """Where an event's evidence is shown (its page), or '' when there is none."""
    if seq is None:
        return ""
    try:
        return reverse("event-detail", kwargs={"seq": seq})
    except NoReverseMatch:  # pragma: no cover - the project always routes it
        return f"event:{seq}"


def iso_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def last_event_seq(kind: str, subject_id: Any) -> int | None:
    return (
        Event.objects.filter(kind=kind, subject_id=str(subject_id))
        .order_by("-seq")
        .values_list("seq", flat=True)
        .first()
    )


@dataclass
class Facts:
    rollout: Rollout
    items: list[ChangeItem]
    targets: list[RolloutTarget]
    moves: list[PointerMove]
    signal: Signal
    approvals_filled: list[str] = field(default_factory=list)
    #: The change's required checks as they stood when it was promoted.
    verdicts: list[Any] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    rollback_seq: int | None = None
    #: The rollback's event is recorded in this transaction but not appended yet (no seq).
    rollback_pending: bool = False

    @property
    def change(self) -> Any:
        return self.rollout.change

    @property
    def triggered(self) -> bool:
        return self.rollout.state == RolloutState.ROLLED_BACK


def _approvals_at_promotion(change: Any) -> list[str]:
    """Required slots filled by an approval that counted when the change was promoted."""
    at = change.promoted_at
    if at is None:
        return []
    filled = (
        Approval.objects.filter(
            change=change,
            decision=Decision.APPROVE,
            revision=change.revision,
            binding_sha256=change.binding_sha256,
            created_at__lte=at,
            requirement__in=list(change.requirements),
        )
        .filter(Q(voided_at__isnull=True) | Q(voided_at__gt=at))
        .values_list("requirement", flat=True)
    )
    return sorted(set(filled))


def _expected_default(facts: Facts, item: ChangeItem) -> Any:
    """The default the change and this rollout leave an artifact at.

    The last default move this rollout made; else the candidate when the artifact's latest
    activation is this change's promotion (an artifact bound to no slot is promoted
    directly); else the version the change was approved against.
    """
    moves = [
        m
        for m in facts.moves
        if m.kind == PointerKind.DEFAULT and m.artifact_id == item.artifact_id
    ]
    if moves:
        return max(moves, key=lambda m: m.pk).to_version_id
    latest = (
        Activation.objects.filter(artifact_id=item.artifact_id)
        .order_by("-created_at")
        .values_list("change_id", "kind", "version_id")
        .first()
    )
    if latest == (facts.change.pk, ActivationKind.PROMOTION, item.proposed_id):
        return item.proposed_id
    return item.current_id


def _drift(facts: Facts) -> list[str]:
    """Every live pointer that no longer says what the change and this rollout left it at."""
    drifted = []
    items = {i.artifact_id: i for i in facts.items}
    for item in facts.items:
        expected = _expected_default(facts, item)
        if item.artifact.active_version_id != expected:
            drifted.append(
                f"{item.artifact.path}: the default is "
                f"{version_label(item.artifact.active_version)}, expected {_label_id(expected)}"
            )
    for target in facts.targets:
        approved = items.get(target.slot.artifact_id)
        if approved is None:
            drifted.append(f"slot {target.slot}: its artifact is not in {facts.change.reference}")
        elif target.baseline_id != approved.current_id:
            drifted.append(
                f"slot {target.slot}: baseline {version_label(target.baseline)} is not the version "
                f"{facts.change.reference} was approved against ({version_label(approved.current)})"
            )
    last_override: dict[tuple[Any, Any], PointerMove] = {}
    for move in sorted(facts.moves, key=lambda m: m.pk):
        if move.kind == PointerKind.OVERRIDE and move.slot_id and move.tenant_id:
            last_override[(move.slot_id, move.tenant_id)] = move
    if last_override:
        live = {
            (o.slot_id, o.tenant_id): o.version_id
            for o in Override.objects.filter(slot_id__in={k[0] for k in last_override})
        }
        for (slot_id, tenant_id), move in last_override.items():
            if live.get((slot_id, tenant_id)) != move.to_version_id:
                drifted.append(
                    f"override of {move.slot} for {move.tenant}: now "
                    f"{_label_id(live.get((slot_id, tenant_id)))}, the rollout set "
                    f"{version_label(move.to_version)}"
                )
    return drifted


def _snapshot_lag(signal: Signal) -> list[str]:
    """Clients still serving an older runtime snapshot than the step's (the canary analysis
    reports the lowest sequence they sent after ``ROLLOUT_SNAPSHOT_LAG_SECONDS``): drift."""
    snapshot = (signal.evidence or {}).get("snapshot") or {}
    expected, reported = snapshot.get("expected") or 0, snapshot.get("reported") or 0
    if expected and reported and reported < expected:
        return [f"clients report runtime snapshot {reported}; the current step needs {expected}"]
    return []


def version_label(version: Version | None) -> str:
    return version.path if version is not None else "none"


def _label_id(version_id: Any) -> str:
    if version_id is None:
        return "none"
    version = (
        Version.objects.select_related("artifact__artifact_class", "artifact__tenant")
        .filter(pk=version_id)
        .first()
    )
    return version_label(version)


def gather_facts(rollout: Rollout) -> Facts:
    rollout = (
        Rollout.objects.select_related("change", "tenant").filter(pk=rollout.pk).first() or rollout
    )
    targets = list(
        RolloutTarget.objects.filter(rollout=rollout).select_related(
            "slot__application",
            "slot__artifact__artifact_class",
            "slot__artifact__tenant",
            "slot__artifact__active_version__artifact__artifact_class",
            "slot__artifact__active_version__artifact__tenant",
            "baseline__artifact__artifact_class",
            "baseline__artifact__tenant",
            "candidate__artifact__artifact_class",
            "candidate__artifact__tenant",
        )
    )
    moves = list(
        PointerMove.objects.filter(rollout=rollout).select_related(
            "slot__application",
            "tenant",
            "to_version__artifact__artifact_class",
            "to_version__artifact__tenant",
        )
    )
    items = items_of(rollout.change)
    for item in items:  # the live default, fresh (items_of joins the artifact, not its pointer)
        item.artifact.refresh_from_db(fields=["active_version"])
    facts = Facts(
        rollout=rollout, items=items, targets=targets, moves=moves, signal=signal_for(rollout)
    )
    facts.approvals_filled = _approvals_at_promotion(rollout.change)
    facts.verdicts = check_verdicts(rollout.change, rollout.change.promoted_at or timezone.now())
    facts.drifted = _drift(facts) + _snapshot_lag(facts.signal)
    if facts.triggered:
        facts.rollback_seq = last_event_seq(EventKind.ROLLOUT_ROLLED_BACK, rollout.pk)
        facts.rollback_pending = facts.rollback_seq is None and any(
            e.kind == EventKind.ROLLOUT_ROLLED_BACK and e.subject_id == str(rollout.pk)
            for e in events_pending()
        )
    return facts
