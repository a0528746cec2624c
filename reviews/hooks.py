"""Questions reviews asks the floors above it, answered by functions they register at start-up.

reviews must never import rollouts; rollouts registers its answers here in
``RolloutsConfig.ready()``. With nothing registered, every answer is "no" (an artifact
is bound to no slot), so promotion works as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: Each takes artifact ids and answers the subset bound to at least one application slot.
SlotBoundCheck = Callable[[Iterable[Any]], set[Any]]

#: Told of defaults that reviews moved itself (rollback, the safety switch): each move is
#: (artifact, from version, to version), with the actor and why; it records them in the
#: caller's transaction (rollouts writes the slots' pointer history).
DefaultMoved = Callable[[Sequence[tuple[Any, Any, Any]], Any, str], None]

_slot_bound_checks: list[SlotBoundCheck] = []
_default_moved: list[DefaultMoved] = []


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


def register_default_moved(listener: DefaultMoved) -> None:
    """Register who records a default that reviews moved (idempotent)."""
    if listener not in _default_moved:
        _default_moved.append(listener)


def default_moved(moves: Sequence[tuple[Any, Any, Any]], actor: Any, reason: str) -> None:
    """Tell every registered listener, in the caller's transaction."""
    if not moves:
        return
    for listener in _default_moved:
        listener(moves, actor, reason)
