"""``GET /metrics``: Prometheus text exposition of the governance telemetry, computed per scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from rest_framework import permissions, renderers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from typing_extensions import override

from accounts.selectors import is_platform_admin
from governance.kernel import request_metrics
from governance.kernel.events import selectors
from governance.recovery.metrics import RecoveryCollector
from rollouts.metrics import RolloutCollector


class PlainTextRenderer(renderers.BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    @override
    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else str(data).encode()


class IsPlatformAdminOrPublic(permissions.BasePermission):
    message = "Metrics are for platform administrators (or set METRICS_PUBLIC=1)."

    @override
    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(settings.METRICS_PUBLIC or is_platform_admin(request.user))


class GovernanceCollector:
    """Reads the log once per scrape; a fixed handful of queries."""

    def collect(self) -> Iterator[Metric]:
        t = selectors.telemetry(days=30)
        total = GaugeMetricFamily("governance_events_total", "Events in the governance log")
        total.add_metric([], t["events_total"])
        yield total
        kinds = GaugeMetricFamily(
            "governance_events_recent", "Events in the last 30 days by kind", labels=["kind"]
        )
        for kind, count in sorted(t["by_kind"].items()):
            kinds.add_metric([kind], count)
        yield kinds
        tenants = GaugeMetricFamily(
            "governance_tenant_activity", "Events in the last 30 days by tenant", labels=["tenant"]
        )
        for row in t["per_tenant"]:
            tenants.add_metric([row["tenant"]], row["events"])
        yield tenants
        rollbacks = GaugeMetricFamily(
            "governance_rollbacks_recent", "Rollbacks in the last 30 days"
        )
        rollbacks.add_metric([], t["rollbacks"])
        yield rollbacks
        failures = GaugeMetricFamily(
            "governance_verification_failures", "Log verification runs that failed"
        )
        failures.add_metric([], t["verification_failures"])
        yield failures
        lead = GaugeMetricFamily(
            "governance_publish_lead_time_hours_p50",
            "Median hours from change opened to promoted (30 days)",
        )
        lead.add_metric(
            [], t["lead_time_hours_p50"] if t["lead_time_hours_p50"] is not None else float("nan")
        )
        yield lead
        checkpoint = GaugeMetricFamily(
            "governance_checkpoint_tree_size", "Size of the newest signed checkpoint"
        )
        checkpoint.add_metric([], t["latest_checkpoint"].tree_size if t["latest_checkpoint"] else 0)
        yield checkpoint
        yield from self._exceptions()

    def _exceptions(self) -> Iterator[Metric]:
        """Waivers by state, overdue post-mortems, pending removals: three queries."""
        from django.utils import timezone

        from accounts.models import Tenant
        from registry.models import Deprecation
        from reviews.models import ChangeRequest
        from reviews.waivers.selectors import waiver_state_counts

        now = timezone.now()
        waivers = GaugeMetricFamily(
            "governance_waivers", "Waivers by derived state", labels=["state"]
        )
        for state, count in sorted(waiver_state_counts(Tenant.objects.all(), now).items()):
            waivers.add_metric([state], count)
        yield waivers
        overdue = GaugeMetricFamily(
            "governance_postmortems_overdue", "Emergency changes whose post-mortem is overdue"
        )
        overdue.add_metric(
            [],
            ChangeRequest.objects.filter(
                emergency=True, postmortem_due_at__lt=now, postmortem_done_at__isnull=True
            ).count(),
        )
        yield overdue
        deprecated = GaugeMetricFamily(
            "governance_deprecated_versions", "Deprecated versions not yet removed from resolution"
        )
        deprecated.add_metric([], Deprecation.objects.filter(removed_at__isnull=True).count())
        yield deprecated


#: The floors' own collectors, gathered here at the project level (nothing below imports this).
_collectors: list[Any] = [RolloutCollector(), RecoveryCollector()]


class PrometheusMetricsView(APIView):
    """Prometheus scrape endpoint (bearer token of a platform administrator, or public if configured)."""

    permission_classes = [IsPlatformAdminOrPublic]
    renderer_classes = [PlainTextRenderer]

    @extend_schema(exclude=True)  # Prometheus text, not part of the JSON API
    def get(self, _request: Request) -> Response:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(GovernanceCollector())
        for collector in _collectors:
            registry.register(collector)
        body = generate_latest(registry) + generate_latest(request_metrics.REGISTRY)
        return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8")
