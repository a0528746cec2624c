"""What the rollout pages show, shaped from selectors: steps, actions and what each will change,
the phase timeline, and the runtime matrix (from ``rollouts.runtime``, the one resolver).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse

from accounts.models import Tenant
from governance.kernel.errors import DomainError
from registry.models import Version
from rollouts import runtime, selectors
from rollouts.choices import ACTIVE_STATES, Reason, RolloutState, RolloutStrategy
from rollouts.contract import AUTONOMY_PHASE_ORDER, PASSING
from rollouts.forms import RolloutActionForm, percent
from rollouts.models import Rollout, RolloutTarget, Slot
from rollouts.permissions import RolloutActions
from rollouts.runtime import Snapshot

#: Every action of the rollout page, in the order its buttons appear.
ACTION_ORDER = ("start", "flag", "advance", "pause", "resume", "abort", "rollback")
ACTION_LABELS = {
    "start": "Start",
    "advance": "Advance",
    "pause": "Pause",
    "resume": "Resume",
    "abort": "Abort",
    "rollback": "Roll back",
}
#: Actions that take a rollout backwards: they need a reason, and their button says so in red.
DANGEROUS = frozenset({"abort", "rollback"})
#: Actions whose service requires a reason.
REASON_REQUIRED = DANGEROUS | {"flag", "pause", "resume"}


def action_names(actions: RolloutActions) -> list[str]:
    """The actions offered, in page order, from the one predicate (who may, and the state)."""
    allowed = actions.as_dict()
    return [name for name in ACTION_ORDER if allowed.get(name)]


@dataclass
class StepView:
    number: int
    label: str
    current: bool
    done: bool


def step_label(rollout: Rollout, value: Any) -> str:
    if rollout.strategy == RolloutStrategy.CANARY:
        return percent(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def steps_of(rollout: Rollout) -> list[StepView]:
    return [
        StepView(
            number=n,
            label=step_label(rollout, value),
            current=n == rollout.step and rollout.state in ACTIVE_STATES,
            done=n < rollout.step
            or (n == rollout.step and rollout.state == RolloutState.SUCCEEDED),
        )
        for n, value in enumerate(rollout.steps or [], start=1)
    ]


def _moves(targets: list[RolloutTarget]) -> str:
    """``sales-agent.qualifyLead (1.0.0 → 1.1.0)`` for each slot the rollout moves."""
    return ", ".join(
        f"{t.slot} ({t.baseline.version if t.baseline else 'none'} → {t.candidate.version})"
        for t in targets
    )


def _slots(targets: list[RolloutTarget]) -> str:
    return ", ".join(str(t.slot) for t in targets)


def _candidates(targets: list[RolloutTarget]) -> str:
    return ", ".join(sorted({t.candidate.version for t in targets}))


def _baselines(targets: list[RolloutTarget]) -> str:
    return ", ".join(sorted({t.baseline.version if t.baseline else "none" for t in targets}))


def _finish(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    return (
        f"Finish {rollout.reference}: make {_candidates(targets)} the default of "
        f"{_slots(targets)} for every tenant (was {_baselines(targets)})."
    )


def _at(rollout: Rollout) -> str:
    if rollout.strategy == RolloutStrategy.CANARY and rollout.step:
        return f"step {rollout.step} ({percent(rollout.weight)})"
    return f"step {rollout.step}" if rollout.step else "its first step"


def _start(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    ref, slots, cands = rollout.reference, _slots(targets), _candidates(targets)
    first = rollout.steps[0] if rollout.steps else None
    if rollout.strategy == RolloutStrategy.CANARY:
        if rollout.target == "paper":
            return (
                f"Start {ref}: serve {cands} on {slots} to the {len(rollout.cohort or [])} "
                f"subject(s) of its cohort only; everyone else keeps {_baselines(targets)}."
            )
        share = percent(int(first)) if first is not None else "the first step's share"
        return (
            f"Start {ref}: serve {cands} on {slots} to {share} of subjects; the rest keep "
            f"{_baselines(targets)}."
        )
    if rollout.strategy == RolloutStrategy.TENANT:
        wave = step_label(rollout, first) if first is not None else "the first wave"
        return f"Start {ref}: point {slots} at {cands} for the tenants of wave 1 ({wave})."
    if rollout.strategy == RolloutStrategy.FLAG:
        expires = (
            f"; it expires {rollout.flag_expires_at:%Y-%m-%d %H:%M}"
            if rollout.flag_expires_at
            else ""
        )
        return (
            f"Start {ref}: flag '{rollout.flag_key}' chooses between {_baselines(targets)} and "
            f"{cands} on {slots}{expires}."
        )
    return (
        f"Start {ref}: move the default of {slots} from {_baselines(targets)} to {cands} "
        "for every tenant."
    )


def _advance(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    steps = rollout.steps or []
    if rollout.step >= len(steps):
        return _finish(rollout, targets)
    following = steps[rollout.step]
    if rollout.strategy == RolloutStrategy.CANARY:
        return (
            f"Raise the canary for {_slots(targets)} from {percent(rollout.weight)} "
            f"to {percent(int(following))}."
        )
    if rollout.strategy == RolloutStrategy.TENANT:
        return (
            f"Point {_slots(targets)} at {_candidates(targets)} for wave {rollout.step + 1} "
            f"({step_label(rollout, following)})."
        )
    return _finish(rollout, targets)


def action_label(action: str, rollout: Rollout) -> str:
    if action == "flag":
        return "Switch the flag off" if rollout.flag_on else "Switch the flag on"
    return ACTION_LABELS[action]


def _flag(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    key, slots = rollout.flag_key, _slots(targets)
    if rollout.flag_on:
        return (
            f"Switch flag '{key}' off: {slots} serve {_baselines(targets)} again "
            "(the tenant's override, else the default)."
        )
    return f"Switch flag '{key}' on: {slots} serve {_candidates(targets)} to every subject."


def _pause(rollout: Rollout, _targets: list[RolloutTarget]) -> str:
    return (
        f"Pause {rollout.reference} at {_at(rollout)}: the same subjects keep what they are "
        "served; nothing advances until it is resumed."
    )


def _resume(rollout: Rollout, _targets: list[RolloutTarget]) -> str:
    return f"Resume {rollout.reference} at {_at(rollout)}: the same subjects as before the pause."


def _abort(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    if rollout.state == RolloutState.DRAFT:
        return f"Abort {rollout.reference} before it starts: no pointer moves."
    return (
        f"Abort {rollout.reference}: its rules end and every pointer it moved goes back "
        f"({_slots(targets)} serve {_baselines(targets)} again)."
    )


def _rollback(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    return (
        f"Roll back {rollout.reference}: restore the exact previous pointers of "
        f"{_slots(targets)} ({_baselines(targets)} for everyone); no approvals needed."
    )


#: Each action's confirmation; any other action reads as a rollback's.
SUMMARIES: dict[str, Callable[[Rollout, list[RolloutTarget]], str]] = {
    "start": _start,
    "advance": _advance,
    "flag": _flag,
    "pause": _pause,
    "resume": _resume,
    "abort": _abort,
}


def summary(action: str, rollout: Rollout, targets: list[RolloutTarget]) -> str:
    """What ``action`` will change, in one sentence: the confirmation its form shows."""
    return SUMMARIES.get(action, _rollback)(rollout, targets)


def state_text(rollout: Rollout, targets: list[RolloutTarget]) -> str:
    """Where the rollout stands now, in words: the message after an action."""
    flag = ""
    if rollout.strategy == RolloutStrategy.FLAG:
        flag = f"; flag '{rollout.flag_key}' is {'on' if rollout.flag_on else 'off'}"
    if rollout.state == RolloutState.PROGRESSING:
        return f"progressing at {_at(rollout)}{flag}"
    if rollout.state == RolloutState.PAUSED:
        return f"paused at {_at(rollout)}{flag}"
    if rollout.state == RolloutState.SUCCEEDED:
        return f"succeeded: {_candidates(targets)} is the default of {_slots(targets)}"
    if rollout.state in (RolloutState.ROLLED_BACK, RolloutState.ABORTED):
        return f"{rollout.get_state_display().lower()}: {_slots(targets)} serve what they served before"
    return f"a draft{flag}"


@dataclass
class ActionView:
    name: str
    label: str
    summary: str
    form: RolloutActionForm
    danger: bool


def action_views(
    rollout: Rollout,
    targets: list[RolloutTarget],
    *,
    actions: RolloutActions,
    needs_password: bool,
    bound: tuple[str, RolloutActionForm] | None = None,
) -> list[ActionView]:
    """The forms the page offers: only those ``permissions.rollout_actions`` allows this person."""
    views = []
    for name in action_names(actions):
        if bound is not None and bound[0] == name:
            form = bound[1]
        else:
            form = RolloutActionForm(
                initial={"revision": rollout.revision},
                needs_password=needs_password,
                reason_required=name in REASON_REQUIRED,
                prefix=name,
            )
        views.append(
            ActionView(
                name=name,
                label=action_label(name, rollout),
                summary=summary(name, rollout, targets),
                form=form,
                danger=name in DANGEROUS,
            )
        )
    return views


# --- the phase timeline (from the manifest) -----------------------------------------------


@dataclass
class GateView:
    name: str
    status: str
    detail: str = ""


@dataclass
class PhaseView:
    number: int
    name: str
    status: str
    timestamp: str
    gates: list[GateView] = field(default_factory=list)
    observations: list[tuple[str, str]] = field(default_factory=list)
    artifact_refs: list[str] = field(default_factory=list)

    @property
    def passing(self) -> bool:
        return self.status in PASSING


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def _gate_status(value: Any) -> tuple[str, str]:
    if isinstance(value, bool):
        return ("pass" if value else "fail"), ""
    if isinstance(value, Mapping):
        status = value.get("status")
        if status is None and "passed" in value:
            status = "pass" if value["passed"] else "fail"
        rest = {k: v for k, v in value.items() if k not in {"status", "passed", "name", "gate"}}
        return str(status or "—"), _text(rest)
    return str(value), ""


def _gates(raw: Any) -> list[GateView]:
    if isinstance(raw, Mapping):
        return [GateView(str(name), *_gate_status(value)) for name, value in raw.items()]
    gates = []
    for item in raw or []:
        if isinstance(item, Mapping):
            name = str(item.get("name") or item.get("gate") or "")
            gates.append(GateView(name, *_gate_status(item)))
        else:
            gates.append(GateView(str(item), "—"))
    return gates


def _pairs(raw: Any) -> list[tuple[str, str]]:
    if isinstance(raw, Mapping):
        return [(str(k), _text(v)) for k, v in raw.items()]
    return [("", _text(v)) for v in raw or []]


def phase_views(manifest: Mapping[str, Any] | None) -> list[PhaseView]:
    """The seven phases in the fixed order; a phase the manifest lacks reads ``skip``."""
    by_name = {
        p.get("name"): p for p in (manifest or {}).get("phases", []) if isinstance(p, Mapping)
    }
    views = []
    for number, name in enumerate(AUTONOMY_PHASE_ORDER, start=1):
        phase = by_name.get(name, {})
        views.append(
            PhaseView(
                number=number,
                name=name,
                status=str(phase.get("status", "skip")),
                timestamp=str(phase.get("timestamp") or ""),
                gates=_gates(phase.get("slo_gates")),
                observations=_pairs(phase.get("observations")),
                artifact_refs=[_text(r) for r in phase.get("artifact_refs", []) or []],
            )
        )
    return views


def targets_text(targets: Iterable[RolloutTarget]) -> str:
    return _moves(list(targets))


# --- the runtime matrix ------------------------------------------------------------------


REASON_LABELS: dict[str, str] = {
    Reason.DEFAULT: "default",
    Reason.TARGETING_MATCH: "override",
    Reason.SPLIT: "canary split",
    Reason.STATIC: "pinned",
    Reason.DISABLED: "disabled",
}


@dataclass
class MatrixColumn:
    slot: Slot
    default: Version | None


@dataclass
class MatrixCell:
    slot_label: str
    available: bool = False
    version: str = ""
    version_url: str = ""
    reason: str = ""
    reason_label: str = ""
    differs: bool = False
    deprecated: bool = False
    rollout: Rollout | None = None
    rollout_text: str = ""
    warnings: list[str] = field(default_factory=list)


@dataclass
class MatrixRow:
    tenant: Tenant
    cells: list[MatrixCell]


@dataclass
class Matrix:
    columns: list[MatrixColumn]
    rows: list[MatrixRow]
    rollouts: list[Rollout]


def _version_url(path: str) -> str:
    parts = (path or "").split("/")
    if len(parts) != 4:
        return ""
    return reverse(
        "registry:version",
        kwargs=dict(zip(("cls", "tenant", "slug", "version"), parts, strict=True)),
    )


def rollout_rule_text(rollout: Rollout, candidate: str, tenant: Tenant | None = None) -> str:
    """How a rollout in progress touches a cell: ``canary 25% → 1.1.0``; empty if it does not
    reach the tenant (a tenant rollout whose waves leave it out)."""
    paused = " (paused)" if rollout.state == RolloutState.PAUSED else ""
    if rollout.strategy == RolloutStrategy.CANARY:
        if rollout.target == "paper":
            return f"cohort of {len(rollout.cohort or [])} → {candidate}{paused}"
        return f"canary {percent(rollout.weight)} → {candidate}{paused}"
    if rollout.strategy == RolloutStrategy.FLAG:
        state = "on" if rollout.flag_on else "off"
        return f"flag {rollout.flag_key} {state} → {candidate}{paused}"
    if rollout.strategy == RolloutStrategy.TENANT:
        waves = rollout.steps or []
        wave = next(
            (n for n, w in enumerate(waves, start=1) if tenant is None or tenant.slug in w), None
        )
        if wave is None:
            return ""
        waits = "waits for " if wave > rollout.step else ""
        return f"{waits}wave {wave} of {len(waves)} → {candidate}{paused}"
    return f"global → {candidate}{paused}"


def _applies(rollout: Rollout, tenant: Tenant) -> bool:
    return rollout.tenant_id == tenant.pk or rollout.tenant.slug == settings.PLATFORM_TENANT_SLUG


def _cell(
    slot: Slot, tenant: Tenant, snap: Snapshot | None, active: list[RolloutTarget]
) -> MatrixCell:
    cell = MatrixCell(slot_label=str(slot))
    if snap is None or not selectors.slot_serves_tenant(slot, tenant):
        return cell
    try:
        answer = runtime.resolve(snap, slot.name)
    except DomainError:
        return cell
    default = slot.artifact.active_version
    cell.available = True
    cell.version = answer.version or ""
    cell.version_url = _version_url(answer.path or "")
    cell.reason = str(answer.reason)
    cell.reason_label = REASON_LABELS.get(answer.reason, str(answer.reason))
    cell.warnings = list(answer.warnings)
    cell.deprecated = any("deprecated" in w for w in answer.warnings)
    cell.differs = answer.version is not None and (
        default is None or answer.version != default.version
    )
    for target in active:
        text = rollout_rule_text(target.rollout, target.candidate.version, tenant)
        if _applies(target.rollout, tenant) and text:
            cell.rollout = target.rollout
            cell.rollout_text = text
            break
    return cell


def runtime_matrix(tenants: list[Tenant], slots: list[Slot]) -> Matrix:
    """Tenants by slots: what each serves by default (no subject, no pin) and why, via the runtime."""
    active = selectors.active_rollouts_for(slots)
    snaps: dict[tuple[str, str], Snapshot | None] = {}
    rows = []
    for tenant in tenants:
        cells = []
        for slot in slots:
            key = (tenant.slug, slot.application.slug)
            if key not in snaps:
                try:
                    snaps[key] = runtime.snapshot(*key)
                except DomainError:
                    snaps[key] = None
            cells.append(_cell(slot, tenant, snaps[key], active.get(slot.pk, [])))
        rows.append(MatrixRow(tenant=tenant, cells=cells))
    in_progress = {t.rollout.pk: t.rollout for targets in active.values() for t in targets}
    return Matrix(
        columns=[MatrixColumn(slot=s, default=s.artifact.active_version) for s in slots],
        rows=rows,
        rollouts=sorted(in_progress.values(), key=lambda r: r.number),
    )
