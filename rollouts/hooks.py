"""Questions rollouts asks the project level above it, answered by functions it registers.

rollouts must never import ``governance.recovery`` (the roof); ``GovernanceConfig.ready()``
registers the rehearsal runner here, so ``manage.py rollouts rehearse SLOT`` runs the same
rehearsal as ``manage.py drill rehearse SLOT``. With nothing registered the command refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from governance.kernel.errors import DomainError

#: Takes the slot's label (``application.slot``) and ``backup=`` (a path or None); rehearses a
#: rollback of it in a scratch copy, records it, and answers (passed, one line saying how it went).
RehearsalRunner = Callable[..., tuple[bool, str]]

_rehearsal_runners: list[RehearsalRunner] = []


def register_rehearsal_runner(runner: RehearsalRunner) -> None:
    """Register who rehearses a slot's rollback (idempotent; the last one registered runs)."""
    if runner not in _rehearsal_runners:
        _rehearsal_runners.append(runner)


def rehearsal_run(slot_label: str, *, backup: Path | None = None) -> tuple[bool, str]:
    """Rehearse a rollback of the slot through the registered runner (refused without one)."""
    if not _rehearsal_runners:
        raise DomainError("No rollback rehearsal runner is installed.", field="slot")
    return _rehearsal_runners[-1](slot_label, backup=backup)
