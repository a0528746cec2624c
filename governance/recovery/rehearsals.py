"""Rollback rehearsals: roll a slot's default back and forward again in a scratch copy, timed.

``rehearsal_run`` (the real registry) takes a fresh backup (or uses the one named), restores it
into a scratch database, and there runs ``manage.py drill scratch-rehearse SLOT``:
``scratch_rehearse`` rolls the slot's artifact back with the registry's own rollback service
(``reviews.services.rollback``, as ``registry rollback`` does) and asks the runtime what the slot
serves (``rollouts.runtime.answer``) until it shows the old version; that wall time is the time
to revert. Then it rolls forward (the same service, back to the version that was active) and
times that too. Going back to a deprecated version takes an override reason, which the
rehearsal gives and reports (``needs_override_reason``). The outcome is archived as a signed ``recovery-drill`` version
(``rehearsal-<slot>``) and a ``RecoveryRun(kind="rehearsal", subject=<slot>)``. The real
registry's pointers never move.
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.recovery.backup import backup_create
from governance.recovery.drills import Measured, backup_facts, restore_into, run_summary
from governance.recovery.models import RecoveryRun
from governance.recovery.outcomes import outcome_publish, rehearsal_artifact_slug
from governance.recovery.scratch import SCRATCH_ENV, ScratchFailed, scratch_database
from governance.recovery.selectors import slot_by_label
from governance.recovery.services import recovery_run_record
from registry.models import Deprecation, Version
from reviews.services import rollback
from reviews.services.rollback import rollback_point
from rollouts import runtime
from rollouts.models import Slot

REASON_BACK = "Rollback rehearsal in a scratch copy: revert"
REASON_FORWARD = "Rollback rehearsal in a scratch copy: roll forward"
#: Going back to a deprecated version needs an administrator's override reason; the rehearsal
#: gives this one (in the scratch copy only) and says that a real rollback would need one.
OVERRIDE_REASON = "Rollback rehearsal in a scratch copy: the incident commander's override"


def rehearsal_plan(slot: Slot) -> tuple[Version, Version]:
    """(the slot's default now, the version a rollback goes back to); Conflict when there is
    nothing to roll back (no default, or a first promotion)."""
    artifact = slot.artifact
    current = artifact.active_version
    if current is None:
        raise Conflict(
            f"{slot}: {artifact.path} has no active version (switched off); nothing to roll back.",
            field="slot",
        )
    back_to = rollback_point(artifact)
    if back_to is None:
        raise Conflict(
            f"{slot}: {artifact.path} has no earlier promoted version to roll back to.",
            field="slot",
        )
    return current, back_to


def _resolved(slot: Slot) -> dict[str, Any]:
    answer = runtime.answer(slot.application.tenant.slug, slot.application.slug, slot.name)
    return {"path": answer.path, "sha256": answer.sha256, "reason": answer.reason}


def _moved(slot: Slot, reason: str, target: Version | None, want: Version) -> dict[str, Any]:
    """One timed pointer move: the rollback service, then resolve until it answers ``want``."""
    started = time.monotonic()
    rollback(
        artifact=slot.artifact,
        actor=None,
        reason=reason,
        target=target,
        override_reason=OVERRIDE_REASON,  # recorded only when the target is deprecated
    )
    deadline = started + 10.0
    resolved = _resolved(slot)
    while resolved["sha256"] != want.manifest_sha256 and time.monotonic() < deadline:
        time.sleep(0.01)
        resolved = _resolved(slot)
    return {"seconds": round(time.monotonic() - started, 4), "resolved": resolved}


def scratch_rehearse(*, slot_label: str) -> dict[str, Any]:
    """Roll ``slot_label``'s default back and forward in THIS database, which must be the scratch
    copy named by ``GOVERNANCE_SCRATCH_DB`` (anything else is refused before a read)."""
    if os.environ.get(SCRATCH_ENV, "") != str(settings.DATABASES["default"]["NAME"]):
        raise Forbidden(
            f"Rehearsals move pointers only in a scratch copy ({SCRATCH_ENV} names it); "
            "run `drill rehearse` instead.",
            field="database",
        )
    slot = slot_by_label(slot_label)
    current, back_to = rehearsal_plan(slot)
    deprecated = Deprecation.objects.filter(version=back_to, removed_at__isnull=True).exists()
    with transaction.atomic():
        back = _moved(slot, REASON_BACK, None, back_to)
    slot = slot_by_label(slot_label)
    with transaction.atomic():
        forward = _moved(slot, REASON_FORWARD, current, current)
    problems = [
        f"after the {step} the slot resolves to {moved['resolved']['path']}, not {want.path}"
        for step, moved, want in (("rollback", back, back_to), ("roll forward", forward, current))
        if moved["resolved"]["sha256"] != want.manifest_sha256
    ]
    return {
        "slot": str(slot),
        "artifact": slot.artifact.path,
        "from": current.path,
        "to": back_to.path,
        "needs_override_reason": deprecated,
        "revert_seconds": back["seconds"],
        "forward_seconds": forward["seconds"],
        "resolved_after_revert": back["resolved"],
        "resolved_after_forward": forward["resolved"],
        "problems": problems,
    }


def _rehearse_in_scratch(slot: Slot, backup: Path | None, measured: Measured) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="governance-rehearsal-") as folder:
        fresh = backup is None
        if backup is None:
            try:
                backup = backup_create(out_dir=Path(folder)).path
            except (DomainError, OSError) as exc:
                measured.problems.append(f"backup failed: {exc}")
                return {}
        ok = backup_facts(backup, measured)
        measured.backup["fresh"] = fresh  # a fresh backup is taken for this and not kept
        if not ok:
            return {}
        try:
            with scratch_database() as scratch:
                if not restore_into(scratch, backup, measured):
                    return {}
                answer, _ = scratch.manage_json("drill", "scratch-rehearse", str(slot), "--json")
        except ScratchFailed as exc:
            measured.problems.append(str(exc))
            return {}
    measured.seconds["revert_seconds"] = float(answer.get("revert_seconds") or 0.0)
    measured.seconds["forward_seconds"] = float(answer.get("forward_seconds") or 0.0)
    measured.problems.extend(str(p) for p in answer.get("problems") or [])
    return answer


def rehearsal_run(
    *, slot_label: str, backup: Path | None = None, actor: User | None = None
) -> RecoveryRun:
    """Rehearse a rollback of ``slot_label`` (``application.slot``) in a scratch copy and record
    it, passed or failed. Refused (nothing recorded) for an unknown slot, a slot with nothing
    to roll back to, or a named backup that does not exist."""
    slot = slot_by_label(slot_label)
    rehearsal_plan(slot)
    if backup is not None and not backup.exists():
        raise DomainError(f"{backup}: no such file or directory.", field="backup")
    started = timezone.now()
    measured = Measured()
    answer = _rehearse_in_scratch(slot, backup, measured)
    return rehearsal_record(
        slot=slot,
        answer=answer,
        measured=measured,
        started_at=started,
        actor=actor,
    )


@transaction.atomic
def rehearsal_record(
    *,
    slot: Slot,
    answer: dict[str, Any],
    measured: Measured,
    started_at: datetime,
    actor: User | None,
) -> RecoveryRun:
    """Archive a rehearsal's outcome (finished now) as a signed ``recovery-drill`` version and
    record its run."""
    finished_at = timezone.now()
    outcome = RecoveryRun.Outcome.FAILED if measured.problems else RecoveryRun.Outcome.PASSED
    label = str(slot)
    facts = {k: answer.get(k) for k in ("from", "to", "artifact", "needs_override_reason")}
    resolved = {k: answer.get(k) for k in ("resolved_after_revert", "resolved_after_forward")}
    content = {
        "kind": RecoveryRun.Kind.REHEARSAL.value,
        "outcome": outcome.value,
        "slot": label,
        **facts,
        "backup": measured.backup,
        **measured.seconds,
        **resolved,
        "problems": measured.problems,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
    }
    version = outcome_publish(
        slug=rehearsal_artifact_slug(label),
        title=f"Rollback rehearsals of {label}",
        content=content,
        reason=f"Rollback rehearsal of {label} {outcome.value}",
        actor=actor,
    )
    return recovery_run_record(
        kind=RecoveryRun.Kind.REHEARSAL,
        outcome=outcome,
        subject=label,
        started_at=started_at,
        finished_at=finished_at,
        location="" if measured.backup.get("fresh") else str(measured.backup.get("path") or ""),
        details={**measured.seconds, **facts, "backup": measured.backup},
        error="; ".join(measured.problems),
        version=version,
        actor=actor,
    )


def rehearsal_cli(slot_label: str, *, backup: Path | None = None) -> tuple[bool, str]:
    """The runner ``rollouts rehearse`` calls (``rollouts.hooks``): (passed, its summary)."""
    run = rehearsal_run(slot_label=slot_label, backup=backup)
    return run.outcome == RecoveryRun.Outcome.PASSED, run_summary(run)
