"""The telemetry signal a rollout's manifest reads: what the canary analysis plugs in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollouts.models import Rollout


@dataclass(frozen=True)
class Signal:
    """What runtime telemetry says about a rollout now.

    ``samples`` = observations since the rollout started; ``healthy`` None = nothing to
    judge yet (no telemetry), False = unhealthy (runtime-governance fails). A source sets
    ``detection`` (where its evidence is, e.g. an event page) and ``trace_ids``.
    """

    source: str = "none"
    samples: int = 0
    healthy: bool | None = None
    detail: str = ""
    detection: str = ""
    trace_ids: tuple[str, ...] = ()
    #: What the source measured (counts per arm, statistics, alpha, thresholds, timings).
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source": self.source,
            "samples": self.samples,
            "healthy": self.healthy,
            "detail": self.detail,
            "detection": self.detection,
            "trace_ids": list(self.trace_ids),
        }
        if self.evidence:
            body["evidence"] = self.evidence
        return body


SignalSource = Callable[[Rollout], Signal | None]
_signal_sources: list[SignalSource] = []


def signal_source_register(source: SignalSource) -> None:
    """Add a telemetry source (the first that answers for a rollout wins). Idempotent."""
    if source not in _signal_sources:
        _signal_sources.append(source)


def signal_source_unregister(source: SignalSource) -> None:
    if source in _signal_sources:
        _signal_sources.remove(source)


def signal_for(rollout: Rollout) -> Signal:
    """The rollout's telemetry signal, or "no signal" when no source answers."""
    for source in _signal_sources:
        signal = source(rollout)
        if signal is not None:
            return signal
    return Signal()
