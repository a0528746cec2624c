"""Prometheus gauges of the rollouts: weight, state and the canary analysis' latest statistic.

Registered into ``/metrics`` by ``RolloutsConfig.ready()`` (the kernel's endpoint never
imports rollouts). Covers rollouts that run (progressing or paused): a fixed handful of
queries per scrape, the analysis batched over all of them.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from rollouts import canary
from rollouts.choices import ACTIVE_STATES, BUCKETS, RolloutState
from rollouts.models import Rollout


class RolloutCollector:
    def collect(self) -> Iterator[Metric]:
        rollouts = list(
            Rollout.objects.filter(state__in=list(ACTIVE_STATES)).select_related("tenant")
        )
        weight = GaugeMetricFamily(
            "governance_rollout_weight",
            "Canary weight of a running rollout (share of subjects, 0 to 1)",
            labels=["rollout", "tenant", "strategy"],
        )
        state = GaugeMetricFamily(
            "governance_rollout_state",
            "1 for the state a running rollout is in",
            labels=["rollout", "tenant", "state"],
        )
        statistic = GaugeMetricFamily(
            "governance_rollout_test_statistic",
            "The canary analysis' latest e-value per guardrail metric (rolls back at threshold)",
            labels=["rollout", "tenant", "metric"],
        )
        threshold = GaugeMetricFamily(
            "governance_rollout_test_threshold",
            "The e-value at which the canary analysis rolls back (1 / alpha per metric)",
            labels=["rollout", "tenant", "metric"],
        )
        verdicts = canary.analyse([r for r in rollouts if canary.analysed(r)]) if rollouts else {}
        for r in rollouts:
            labels = [r.reference, r.tenant.slug]
            weight.add_metric([*labels, r.strategy], r.weight / BUCKETS)
            for value in (RolloutState.PROGRESSING, RolloutState.PAUSED):
                state.add_metric([*labels, value], 1.0 if r.state == value else 0.0)
            verdict = verdicts.get(r.pk)
            for test in verdict.evidence.get("tests", []) if verdict else []:
                statistic.add_metric([*labels, test["metric"]], float(test["e_value"]))
                threshold.add_metric([*labels, test["metric"]], float(test["threshold"]))
        yield weight
        yield state
        yield statistic
        yield threshold
