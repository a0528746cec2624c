"""Prometheus gauges of recovery proof: how old the newest passed backup, drill and each slot's
rehearsal are, and whether the newest attempt of each passed (five queries per scrape).

A proof that never passed has no age series, and one never attempted has no ``last_success``
series either: alert on ``absent(...)`` as well as on the value (see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from governance.recovery.models import RecoveryRun
from governance.recovery.selectors import Proof, recovery_status


def _add(
    age: GaugeMetricFamily, success: GaugeMetricFamily, proof: Proof, labels: list[str]
) -> None:
    if proof.age is not None:
        age.add_metric(labels, proof.age.total_seconds())
    if proof.last is not None:
        success.add_metric(labels, 1.0 if proof.last.outcome == RecoveryRun.Outcome.PASSED else 0.0)


class RecoveryCollector:
    def collect(self) -> Iterator[Metric]:
        status = recovery_status()
        for kind, proof in (("backup", status.backup), ("drill", status.drill)):
            age = GaugeMetricFamily(
                f"governance_{kind}_age_seconds",
                f"Seconds since the newest passed {kind} finished (absent: none ever passed)",
            )
            success = GaugeMetricFamily(
                f"governance_{kind}_last_success",
                f"1 if the newest {kind} passed, 0 if it failed (absent: none ever ran)",
            )
            _add(age, success, proof, [])
            yield age
            yield success
        age = GaugeMetricFamily(
            "governance_rehearsal_age_seconds",
            "Seconds since a slot's newest passed rollback rehearsal finished",
            labels=["slot"],
        )
        success = GaugeMetricFamily(
            "governance_rehearsal_last_success",
            "1 if a slot's newest rollback rehearsal passed, 0 if it failed",
            labels=["slot"],
        )
        for proof in status.rehearsals:
            _add(age, success, proof, [proof.subject])
        yield age
        yield success
