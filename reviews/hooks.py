"""Questions reviews asks the floors above it, answered by functions they register at start-up.

reviews must never import rollouts; rollouts registers its answers here in
``RolloutsConfig.ready()``. With nothing registered, every answer is "no" (an artifact
is bound to no slot), so promotion works as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

#: Each takes artifact ids and answers the subset bound to at least one application slot.
SlotBoundCheck = Callable[[Iterable[Any]], set[Any]]

_slot_bound_checks: list[SlotBoundCheck] = []


def register_slot_bound(check: SlotBoundCheck) -> None:
    """Register who answers "which of these artifacts are bound to a slot?" (idempotent)."""
    if check not in _slot_bound_checks:
        _slot_bound_checks.append(check)


def slot_bound(artifact_ids: Iterable[Any]) -> set[Any]:
    """The artifacts among ``artifact_ids`` whose default a rollout moves, not a promotion."""
    ids = list(artifact_ids)
    bound: set[Any] = set()
    for check in _slot_bound_checks:
        bound |= check(ids)
    return bound
