"""Questions registry asks the floors above it, answered by functions they register at start-up.

registry must never import rollouts; rollouts registers its answers here in
``RolloutsConfig.ready()``. With nothing registered, every answer is "no traffic", so a
deployment without runtime telemetry removes deprecated versions on schedule as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

#: Takes version ids, ``hours=`` and ``now=``; answers ``{version id: requests served in the
#: last hours}`` (absent = none).
RecentTraffic = Callable[..., dict[Any, int]]

_recent_traffic: list[RecentTraffic] = []


def register_recent_traffic(answer: RecentTraffic) -> None:
    """Register who answers "how many requests did these versions serve lately?" (idempotent)."""
    if answer not in _recent_traffic:
        _recent_traffic.append(answer)


def recent_traffic(
    version_ids: Iterable[Any], *, hours: int = 24, now: datetime | None = None
) -> dict[Any, int]:
    """Requests each version served in the last ``hours`` (summed over every registered answer)."""
    ids = list(version_ids)
    total: dict[Any, int] = {}
    if not ids:
        return total
    for answer in _recent_traffic:
        for version_id, requests in answer(ids, hours=hours, now=now).items():
            total[version_id] = total.get(version_id, 0) + int(requests)
    return total
