"""Rollout dashboards: the rollout page's telemetry (charts with tables), its live fragment, query counts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Tenant
from registry.models import Version
from rollouts import services
from rollouts.models import Rollout, Slot, TelemetryCounter
from tests.charts import chart_svg

pytestmark = pytest.mark.django_db


def rows(
    rollout: Rollout,
    slot: Slot,
    stable: Version,
    canary: Version,
    tenant: Tenant,
    *,
    minutes: int,
    canary_errors: int = 5,
) -> None:
    """``minutes`` buckets of telemetry: 90 stable requests (2 errors) and 10 canary ones each."""
    now = timezone.now().replace(second=0, microsecond=0)
    TelemetryCounter.objects.bulk_create(
        TelemetryCounter(
            tenant=tenant,
            application=slot.application,
            slot=slot,
            version=version,
            rollout=rollout,
            arm=arm,
            bucket_start=now - timedelta(minutes=m),
            requests=n,
            errors=e,
            refusals=0,
            latency_le_100=n,
            cost=0.001 * n,
            quality_sum=0.8 * n,
            quality_n=n,
        )
        for m in range(minutes)
        for version, arm, n, e in ((stable, "stable", 90, 2), (canary, "canary", 10, canary_errors))
    )


@pytest.fixture
def started(canary_rollout: Rollout, people: dict[str, Any]) -> Rollout:
    rollout = services.rollout_start(rollout=canary_rollout, actor=people["admin"])
    Rollout.objects.filter(pk=rollout.pk).update(started_at=timezone.now() - timedelta(hours=3))
    rollout.refresh_from_db()
    return rollout


def section(html: str) -> str:
    match = re.search(r'<section[^>]*id="dashboard"[^>]*>(.*?)</section>', html, re.S)
    assert match is not None
    return match.group(0)


def test_the_rollout_page_compares_the_arms_and_stacks_the_versions(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
) -> None:
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=30)
    client.force_login(people["admin"])
    html = client.get(f"/rollouts/RO-{started.number}/").content.decode()
    dash = section(html)
    # canary vs stable per metric, with the counts and the threshold
    errors = re.search(r'<tr data-metric="errors" class="worse">(.*?)</tr>', dash, re.S)
    assert errors is not None
    assert "50.00%" in errors.group(1)
    assert "(150 of 300)" in errors.group(1)
    assert "2.22%" in errors.group(1)
    assert "(60 of 2700)" in errors.group(1)
    assert "rolls back when the test statistic reaches 1/(alpha/4) = 80" in errors.group(1)
    assert "e-value " in errors.group(1)
    assert " of 80<" in errors.group(1)  # the analysis' statistic
    assert 'id="verdict"' in dash
    # the statistic's trend: a chart (log scale, the threshold dashed) and its numbers
    assert re.search(
        r'id="statistic-chart"[^>]*alt="The canary analysis&#x27; test statistic', dash
    )
    trend = dash.split('id="statistic-table"')[1].split("</table>")[0]
    errors_trend = [float(v) for v in re.findall(r"</time></td><td>([0-9.e+]+)</td>", trend)]
    assert errors_trend
    assert errors_trend[-1] > errors_trend[0] > 1  # grows with the evidence
    assert 'data-metric="latency_p95_ms"' in dash
    assert "≤ 100 ms" in dash
    # every chart is an image with a text alternative, and the numbers in a table
    svg = chart_svg(dash, "distribution-chart")
    assert "0.0.1" in svg or prompt_v1.version in svg
    assert re.search(r'id="distribution-chart"[^>]*alt="Requests per version over time', dash)
    assert f"{prompt_v1.version} 2700" in dash
    assert f"{prompt_v2.version} 300" in dash
    table = dash.split('id="distribution-table"')[1].split("</table>")[0]
    cells = re.findall(r"</time></td><td>(\d+)</td><td>(\d+)</td></tr>", table)
    assert 8 <= len(cells) <= 11  # 30 minutes in steps of 4 (3 hours / about 60 points)
    assert sum(int(a) for a, _ in cells) == 2700
    assert sum(int(b) for _, b in cells) == 300
    chart_svg(dash, "chart-errors")
    # the step timeline marks the start; the live fragment is polled while it runs
    assert 'data-kind="start"' in dash
    assert f'hx-get="/rollouts/RO-{started.number}/dashboard/"' in dash
    assert 'hx-trigger="every 15s"' in dash
    assert "js/htmx.min.js" in html
    assert "<script>" not in html


def test_a_rolled_back_rollout_marks_it_and_stops_polling(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
) -> None:
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=5)
    services.rollout_pause(rollout=started, actor=people["admin"], reason="look closer")
    started.refresh_from_db()
    services.rollout_rollback(rollout=started, actor=None, reason="error rate regression")
    client.force_login(people["admin"])
    response = client.get(f"/rollouts/RO-{started.number}/dashboard/")
    assert response.status_code == 200
    dash = response.content.decode()
    assert dash.lstrip().startswith('<section aria-labelledby="dashboard-heading" id="dashboard"')
    assert "hx-get" not in dash
    assert 'data-state="rolled_back"' in dash
    kinds = re.findall(r'data-kind="(\w+)"', dash)
    assert kinds == ["start", "pause", "rollback"]
    assert "by system: error rate regression" in dash


def test_a_draft_says_nothing_is_measured(
    client: Client, canary_rollout: Rollout, people: dict[str, Any]
) -> None:
    client.force_login(people["admin"])
    dash = client.get(f"/rollouts/RO-{canary_rollout.number}/dashboard/").content.decode()
    assert "Nothing is measured before the rollout starts." in dash


def test_the_fragment_is_for_people_who_see_the_rollout(
    client: Client, started: Rollout, people: dict[str, Any]
) -> None:
    response = client.get(f"/rollouts/RO-{started.number}/dashboard/")
    assert response.status_code == 302
    assert "/login" in response["Location"]
    client.force_login(people["admin"])
    assert client.get("/rollouts/RO-999/dashboard/").status_code == 404
    assert client.post(f"/rollouts/RO-{started.number}/dashboard/").status_code == 405


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_rows_or_range(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
    django_assert_num_queries: Any,
) -> None:
    client.force_login(people["admin"])
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=3)
    page, fragment = f"/rollouts/RO-{started.number}/", f"/rollouts/RO-{started.number}/dashboard/"
    few_page, few_fragment = _queries(client, page), _queries(client, fragment)
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=120)  # more rows
    Rollout.objects.filter(pk=started.pk).update(started_at=timezone.now() - timedelta(days=6))
    with django_assert_num_queries(few_fragment):
        client.get(fragment)
    with django_assert_num_queries(few_page):
        client.get(page)


# --- the fleet and usage pages ----------------------------------------------------------------


def test_the_fleet_shows_every_rollout_with_its_health(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
    django_assert_num_queries: Any,
) -> None:
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=3)
    client.force_login(people["admin"])
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/rollouts/fleet/").content.decode()
    row = re.search(
        rf'<tr data-rollout="RO-{started.number}" data-health="(\w+)">(.*?)</tr>', html, re.S
    )
    assert row is not None
    assert row.group(1) == "watch"  # the canary's error rate is worse
    assert "50.00% of 30" in row.group(2)
    assert "2.22% of 270" in row.group(2)
    assert "1%" in row.group(2)
    assert "none yet" in row.group(2)
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=50)
    with django_assert_num_queries(len(ctx.captured_queries)):
        client.get("/rollouts/fleet/")


def test_usage_of_an_artifact_and_of_a_version(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
) -> None:
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=3)
    client.force_login(people["admin"])
    artifact = prompt_v1.artifact
    url = f"/rollouts/usage/{artifact.path}/"
    html = client.get(url).content.decode()
    found = dict(
        re.findall(r'<tr data-version="([^"]+)">.*?<td>sales-agent</td><td>(\d+)</td>', html, re.S)
    )
    assert found == {prompt_v1.version: "270", prompt_v2.version: "30"}
    page = client.get(prompt_v1.get_absolute_url()).content.decode()
    usage = page.split('id="recent-usage"')[1].split("</table>")[0]
    assert f'data-consumer="{platform.slug}/sales-agent"' in usage
    assert "<td>270</td><td>270</td>" in usage
    assert f'href="{url}"' in page
    assert client.get("/rollouts/usage/prompt/nobody/nothing/").status_code == 404


# --- Prometheus ----------------------------------------------------------------------------


def test_metrics_gauge_running_rollouts_and_time_requests(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
    settings: Any,
) -> None:
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=3)
    settings.METRICS_PUBLIC = True
    client.force_login(people["admin"])
    client.get(prompt_v1.get_absolute_url())  # a registry page, timed by the middleware
    text = client.get("/metrics").content.decode()
    ro, tenant = f'rollout="RO-{started.number}"', f'tenant="{platform.slug}"'
    assert f'governance_rollout_weight{{{ro},strategy="canary",{tenant}}} 0.01' in text
    assert f'governance_rollout_state{{{ro},state="progressing",{tenant}}} 1.0' in text
    assert f'governance_rollout_state{{{ro},state="paused",{tenant}}} 0.0' in text
    stat = re.search(
        rf'governance_rollout_test_statistic{{metric="errors",{ro},{tenant}}} ([0-9.e+-]+)', text
    )
    assert stat is not None
    assert float(stat.group(1)) > 0
    assert f'governance_rollout_test_threshold{{metric="errors",{ro},{tenant}}} 80.0' in text
    route = "registry/<slug:cls>/<slug:tenant>/<slug:slug>/v/<str:version>/"
    assert re.search(
        r'governance_http_request_duration_seconds_count\{method="GET",route="'
        + re.escape(route)
        + r'",status="2xx"\} [1-9]',
        text,
    )


def test_continuous_metrics_show_the_change_gate_the_analysis_checked(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
    settings: Any,
) -> None:
    from reviews.models import ChangeGate

    settings.ROLLOUT_STEP_MIN_SECONDS = 0
    settings.ROLLOUT_STEP_MIN_REQUESTS = 1
    ChangeGate.objects.create(
        tenant=platform,
        artifact_class=prompt_v1.artifact.artifact_class,
        gates=[{"metric": "latency_p95_ms", "max": 50}],
    )
    later = timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)
    TelemetryCounter.objects.bulk_create(
        TelemetryCounter(
            tenant=platform,
            application=slot.application,
            slot=slot,
            version=version,
            rollout=started,
            arm=arm,
            bucket_start=later,
            requests=n,
            latency_le_100=n,
        )
        for version, arm, n in ((prompt_v1, "stable", 990), (prompt_v2, "canary", 10))
    )
    client.force_login(people["admin"])
    dash = section(client.get(f"/rollouts/RO-{started.number}/").content.decode())
    latency = re.search(r'<tr data-metric="latency_p95_ms"[^>]*>(.*?)</tr>', dash, re.S)
    assert latency is not None
    assert "gate " in latency.group(1)
    assert ": fails" in latency.group(1)
    assert 'class="health-bad"' in latency.group(1)


def test_the_usage_page_costs_the_same_with_more_traffic(
    client: Client,
    started: Rollout,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform: Tenant,
    people: dict[str, Any],
    django_assert_num_queries: Any,
) -> None:
    client.force_login(people["admin"])
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=2)
    url = f"/rollouts/usage/{prompt_v1.artifact.path}/"
    few = _queries(client, url)
    rows(started, slot, prompt_v1, prompt_v2, platform, minutes=60)
    with django_assert_num_queries(few):
        client.get(url)
