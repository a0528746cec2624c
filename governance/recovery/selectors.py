"""Reading recovery runs: the latest of each kind, per rehearsal subject."""

from __future__ import annotations

from governance.recovery.models import RecoveryRun


def latest_run(
    kind: str, *, subject: str | None = None, passed: bool = False
) -> RecoveryRun | None:
    """The newest run of ``kind`` (optionally for one subject, optionally only a passed one)."""
    runs = RecoveryRun.objects.filter(kind=kind)
    if subject is not None:
        runs = runs.filter(subject=subject)
    if passed:
        runs = runs.filter(outcome=RecoveryRun.Outcome.PASSED)
    return runs.order_by("-finished_at", "-id").first()


def latest_rehearsals() -> list[RecoveryRun]:
    """The newest rehearsal of every subject (slot), by subject."""
    seen: dict[str, RecoveryRun] = {}
    for run in RecoveryRun.objects.filter(kind=RecoveryRun.Kind.REHEARSAL).order_by(
        "subject", "-finished_at", "-id"
    ):
        seen.setdefault(run.subject, run)
    return list(seen.values())
