"""Telemetry ingest: a batch is stored whole or refused whole (naming the field), counts once,
feeds VersionUsage; the rollup keeps totals; the API takes service tokens with telemetry:write."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Tenant
from accounts.services import service_token_create
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.models import Event
from registry.models import Artifact, Version, VersionUsage
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import Resolution
from rollouts.models import Rollout, TelemetryBatch, TelemetryCounter
from rollouts.telemetry import Totals
from rollouts.telemetry_selectors import recent_traffic, rollout_arm_totals, version_usage
from rollouts.telemetry_services import telemetry_fold, telemetry_fold_due, telemetry_ingest
from tests.reviews.conftest import PINS, make_artifact, publish

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def bucket(minutes_ago: float = 1) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def row(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "application": "sales-agent",
        "slot": "qualifyLead",
        "version": "1.0.0",
        "bucket_start": bucket(),
        "requests": 10,
        "errors": 1,
        "latency_ms": [4, 4, 2, 0, 0, 0, 0, 0, 0],
        "cost": 0.5,
        "quality_sum": 1.6,
        "quality_sumsq": 1.3,
        "quality_n": 2,
        "snapshot_sequence": 3,
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def ingest(tenant: Tenant, rows: list[dict[str, Any]], batch_id: str = "b-1") -> Any:
    return telemetry_ingest(principal_or_tenant=tenant, batch_id=batch_id, rows=rows, now=NOW)


def nothing_stored() -> bool:
    return (
        not TelemetryBatch.objects.exists()
        and not TelemetryCounter.objects.exists()
        and not VersionUsage.objects.exists()
    )


@pytest.mark.usefixtures("slot")
def test_a_batch_is_stored_aligned_and_feeds_usage(prompt_v1: Version, acme: Tenant) -> None:
    assert prompt_v1.version == "1.0.0"
    events = Event.objects.count()
    result = ingest(
        acme, [row(), row(bucket_start=bucket(0.5), requests=4, errors=0, latency_ms=None)]
    )
    assert result.as_json() == {
        "status": "accepted",
        "batch_id": "b-1",
        "rows": 2,
        "requests": 14,
        "rollouts": [],
    }
    stored = list(TelemetryCounter.objects.order_by("id"))
    assert [(c.requests, c.errors, c.version_id, c.arm, c.rollout_id) for c in stored] == [
        (10, 1, prompt_v1.pk, "", None),
        (4, 0, prompt_v1.pk, "", None),
    ]
    assert all(c.bucket_start.second == 0 and c.bucket_start.microsecond == 0 for c in stored)
    assert stored[0].histogram == [4, 4, 2, 0, 0, 0, 0, 0, 0]
    usage = VersionUsage.objects.get(version=prompt_v1)
    assert (usage.consumer, usage.requests) == ("acme/sales-agent", 14)
    assert usage.last_seen_at == max(c.bucket_start for c in stored)
    assert Event.objects.count() == events  # measurement, not governance state
    ingest(acme, [row(requests=6, latency_ms=None)], batch_id="b-2")
    usage.refresh_from_db()
    assert usage.requests == 20
    assert recent_traffic(prompt_v1, now=NOW) == 20
    assert [
        (u.consumer, u.requests_24h, u.requests_7d) for u in version_usage(prompt_v1, now=NOW)
    ] == [("acme/sales-agent", 20, 20)]


@pytest.mark.usefixtures("slot")
def test_a_duplicate_batch_counts_once(prompt_v1: Version, acme: Tenant) -> None:
    first = ingest(acme, [row()])
    again = ingest(acme, [row(), row()])  # a retry, even a different body, counts once
    assert (first.status, again.status) == ("accepted", "duplicate")
    assert (again.rows, again.requests) == (1, 10)
    assert TelemetryCounter.objects.count() == 1
    assert VersionUsage.objects.get(version=prompt_v1).requests == 10


def _rows_with(bad: dict[str, Any]) -> list[dict[str, Any]]:
    return [row(), row(**bad)]


BAD_ROWS = [
    ({"requests": -1}, "rows[1].requests"),
    ({"requests": 2.5}, "rows[1].requests"),
    ({"requests": True}, "rows[1].requests"),
    ({"errors": 11}, "rows[1].errors"),
    ({"refusals": 11}, "rows[1].refusals"),
    ({"policy_violations": -3}, "rows[1].policy_violations"),
    ({"latency_ms": [1, 2, 3]}, "rows[1].latency_ms"),
    ({"latency_ms": [10, 0, 0, 0, 0, 0, 0, 0, -1]}, "rows[1].latency_ms[8]"),
    ({"latency_ms": [1, 0, 0, 0, 0, 0, 0, 0, 0]}, "rows[1].latency_ms"),
    ({"quality_n": 11}, "rows[1].quality_n"),
    ({"quality_n": 0}, "rows[1].quality_n"),
    ({"cost": -1}, "rows[1].cost"),
    ({"cost": "NaN"}, "rows[1].cost"),
    ({"application": "nope"}, "rows[1].application"),
    ({"slot": "nope"}, "rows[1].slot"),
    ({"version": "9.9.9"}, "rows[1].version"),
    ({"version": ...}, "rows[1].version"),
    ({"bucket_start": (NOW + timedelta(hours=1)).isoformat()}, "rows[1].bucket_start"),
    ({"bucket_start": "2026-01-01T00:00:00"}, "rows[1].bucket_start"),
    ({"bucket_start": "yesterday"}, "rows[1].bucket_start"),
    ({"arm": "canary"}, "rows[1].arm"),
    ({"rollout": "RO-999", "arm": "canary"}, "rows[1].rollout"),
    ({"rollout": "rollout one"}, "rows[1].rollout"),
    ({"error": 1}, "rows[1].error"),
]


@pytest.mark.usefixtures("slot", "prompt_v1")
@pytest.mark.parametrize(("bad", "field"), BAD_ROWS, ids=[f for _, f in BAD_ROWS])
def test_a_bad_row_refuses_the_whole_batch_naming_its_field(
    acme: Tenant, bad: dict[str, Any], field: str
) -> None:
    with pytest.raises(DomainError) as refused:
        ingest(acme, _rows_with(bad))
    assert refused.value.field == field
    assert refused.value.status_code == 400
    assert nothing_stored()


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_batch_level_refusals(acme: Tenant, settings: Any) -> None:
    settings.TELEMETRY_MAX_BATCH_ROWS = 3
    cases = [
        ("b-1", [row()] * 4, "rows"),
        ("b-1", [], "rows"),
        ("b-1", "rows", "rows"),
        ("", [row()], "batch_id"),
        ("has space", [row()], "batch_id"),
        (7, [row()], "batch_id"),
        ("b-1", ["not an object"], "rows[0]"),
    ]
    for batch_id, rows, field in cases:
        with pytest.raises(DomainError) as refused:
            telemetry_ingest(principal_or_tenant=acme, batch_id=batch_id, rows=rows)
        assert refused.value.field == field, (batch_id, rows)
    assert nothing_stored()


def test_another_tenants_private_version_is_refused(
    people: dict[str, Any],
    promote: Callable[..., ChangeRequest],
    acme: Tenant,
    globex: Tenant,
    platform: Tenant,
) -> None:
    private: Artifact = make_artifact(acme, "prompt", "secret", owner=people["admin"])
    version = publish(private, impact="major", text="Acme only.", metadata=PINS)
    promote(version, tenant=acme)
    app = services.application_create(
        tenant=acme, slug="acme-bot", name="Acme bot", actor=people["admin"]
    )
    services.slot_create(
        application=app, name="answer", artifact=private, description="", actor=people["admin"]
    )
    mine = row(application="acme-bot", slot="answer", version=version.version)
    assert ingest(acme, [mine]).status == "accepted"
    with pytest.raises(DomainError) as refused:
        ingest(globex, [mine], batch_id="g-1")
    assert refused.value.field == "rows[0].slot"
    assert not TelemetryBatch.objects.filter(tenant=globex).exists()


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_a_version_that_never_served_is_refused(platform_prompt: Artifact, acme: Tenant) -> None:
    draft = publish(platform_prompt, text="Qualify {{ customer }} quickly.", metadata=PINS)
    with pytest.raises(DomainError) as refused:
        ingest(acme, [row(version=draft.version)])
    assert refused.value.field == "rows[0].version"
    assert "cannot have served" in refused.value.message
    assert nothing_stored()


def test_rollout_rows_are_checked_against_its_targets_and_arms(
    canary_rollout: Rollout, prompt_v1: Version, prompt_v2: Version, acme: Tenant
) -> None:
    ro = canary_rollout.reference
    canary = row(
        rollout=ro, arm="canary", version=prompt_v2.version, requests=5, errors=2, latency_ms=None
    )
    stable = row(
        rollout=ro, arm="stable", version=prompt_v1.version, requests=50, errors=1, latency_ms=None
    )
    result = ingest(acme, [canary, stable])
    assert result.rollouts == [ro]
    totals = rollout_arm_totals([canary_rollout])[canary_rollout.pk]
    assert (totals["canary"].requests, totals["canary"].errors) == (5, 2)
    assert (totals["stable"].requests, totals["stable"].errors) == (50, 1)
    for bad, field in [
        ({"arm": "stable", "version": prompt_v2.version}, "rows[0].version"),
        ({"arm": ""}, "rows[0].arm"),
        ({"arm": "blue"}, "rows[0].arm"),
    ]:
        with pytest.raises(DomainError) as refused:
            ingest(acme, [{**canary, **bad}], batch_id="b-bad")
        assert refused.value.field == field
    assert TelemetryCounter.objects.count() == 2


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_ingest_runs_a_fixed_number_of_queries(acme: Tenant) -> None:
    counts = []
    for n, batch_id in ((2, "q-1"), (200, "q-2")):
        rows = [row(bucket_start=bucket(i % 30)) for i in range(n)]
        with CaptureQueriesContext(connection) as ctx:
            ingest(acme, rows, batch_id=batch_id)
        # SQLite caps parameters per statement, so its bulk INSERT is split; count the rest.
        counts.append(
            sum(
                'INSERT INTO "rollouts_telemetrycounter"' not in q["sql"]
                for q in ctx.captured_queries
            )
        )
    assert counts[0] == counts[1] <= 14


def same_totals(a: dict[Any, dict[str, Totals]], b: dict[Any, dict[str, Totals]]) -> bool:
    """Equal counts; float sums equal up to rounding (a sum of sums adds in another order)."""
    assert a.keys() == b.keys()
    for rollout, arms in a.items():
        assert arms.keys() == b[rollout].keys()
        for arm, totals in arms.items():
            other = b[rollout][arm]
            for name, value in vars(totals).items():
                if isinstance(value, float):
                    assert value == pytest.approx(getattr(other, name)), name
                else:
                    assert value == getattr(other, name), name
    return True


def test_the_fold_keeps_totals_and_is_idempotent(
    canary_rollout: Rollout, prompt_v1: Version, prompt_v2: Version, acme: Tenant, settings: Any
) -> None:
    settings.TELEMETRY_RAW_RETENTION_HOURS = 1
    old = NOW - timedelta(hours=5)
    rows = []
    for minutes in range(0, 120, 7):  # two hours of buckets, five hours ago
        at = (old + timedelta(minutes=minutes)).isoformat()
        rows.append(
            row(
                bucket_start=at,
                rollout=canary_rollout.reference,
                arm="canary",
                version=prompt_v2.version,
            )
        )
        rows.append(
            row(
                bucket_start=at,
                rollout=canary_rollout.reference,
                arm="stable",
                version=prompt_v1.version,
                requests=20,
                latency_ms=None,
                quality_n=20,
            )
        )
    rows.append(row())  # recent: stays raw
    telemetry_ingest(principal_or_tenant=acme, batch_id="old", rows=rows, now=NOW)
    before = rollout_arm_totals([canary_rollout])
    usage_before = version_usage(prompt_v1, now=NOW)
    raw_before = TelemetryCounter.objects.count()

    folded = telemetry_fold_due(now=NOW)
    assert folded == raw_before - 1
    hours = TelemetryCounter.objects.filter(resolution=Resolution.HOUR)
    assert hours.count() <= 3 * 2  # at most three hours touched, two arms
    assert TelemetryCounter.objects.filter(resolution=Resolution.RAW).count() == 1
    assert same_totals(rollout_arm_totals([canary_rollout]), before)
    assert version_usage(prompt_v1, now=NOW) == usage_before
    assert all(h.bucket_start.minute == 0 for h in hours)
    assert {h.snapshot_sequence for h in hours} == {3}

    assert telemetry_fold_due(now=NOW) == 0  # idempotent
    assert telemetry_fold(hour=old) == 0
    assert same_totals(rollout_arm_totals([canary_rollout]), before)


# --- the API -------------------------------------------------------------------------------


def _service_client(tenant: Tenant, scopes: list[str]) -> APIClient:
    _, raw = service_token_create(tenant=tenant, name="svc", scopes=scopes, actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_api_stores_a_batch_and_answers_a_retry_as_duplicate(acme: Tenant) -> None:
    client = _service_client(acme, ["telemetry:write"])
    body = {"batch_id": "api-1", "rows": [row(bucket_start=timezone.now().isoformat())]}
    first = client.post("/api/v1/telemetry/", body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["status"] == "accepted"
    assert TelemetryBatch.objects.get().token is not None
    again = client.post("/api/v1/telemetry/", body, format="json")
    assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert TelemetryCounter.objects.count() == 1

    bad: dict[str, Any] = copy.deepcopy(body)
    bad["batch_id"] = "api-2"
    bad["rows"][0]["errors"] = 99
    refused = client.post("/api/v1/telemetry/", bad, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["field"] == "rows[0].errors"
    not_object = client.post("/api/v1/telemetry/", [1, 2], format="json")
    assert not_object.status_code == 400
    assert TelemetryCounter.objects.count() == 1


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_api_refuses_personal_tokens_and_missing_scope(
    acme: Tenant, people: dict[str, Any], token_client: Any
) -> None:
    body = {"batch_id": "api-1", "rows": [row(bucket_start=timezone.now().isoformat())]}
    personal = token_client(people["admin"]).post("/api/v1/telemetry/", body, format="json")
    assert personal.status_code == 401
    reader = _service_client(acme, ["runtime:read"])
    missing = reader.post("/api/v1/telemetry/", body, format="json")
    assert missing.status_code == 403
    assert "telemetry:write" in missing.json()["error"]["message"]
    anonymous = APIClient().post("/api/v1/telemetry/", body, format="json")
    assert anonymous.status_code == 401
    assert nothing_stored()


def test_the_service_checks_the_scope_itself(acme: Tenant) -> None:
    from accounts.authentication import ServicePrincipal

    principal = ServicePrincipal(
        token_id=acme.pk,
        tenant_id=acme.pk,
        tenant_slug="acme",
        name="x",
        prefix="gsv_x",
        scopes=frozenset({"runtime:read"}),
    )
    with pytest.raises(Forbidden) as refused:
        telemetry_ingest(principal_or_tenant=principal, batch_id="b", rows=[row()])
    assert refused.value.field == "scope"


@pytest.mark.usefixtures("slot", "prompt_v1")
def test_bucket_alignment_follows_the_setting(acme: Tenant, settings: Any) -> None:
    settings.TELEMETRY_BUCKET_SECONDS = 300
    at = datetime(2026, 1, 31, 12, 7, 42, tzinfo=UTC)
    telemetry_ingest(
        principal_or_tenant=acme, batch_id="b", rows=[row(bucket_start=at.isoformat())], now=NOW
    )
    assert TelemetryCounter.objects.get().bucket_start == datetime(2026, 1, 31, 12, 5, tzinfo=UTC)


@pytest.mark.usefixtures("slot")
def test_old_batches_are_forgotten_once_their_rows_are_folded(
    prompt_v1: Version, acme: Tenant, settings: Any
) -> None:
    settings.TELEMETRY_RAW_RETENTION_HOURS = 1
    days_ago = NOW - timedelta(days=2)
    old_row = row(bucket_start=(days_ago - timedelta(minutes=5)).isoformat())
    telemetry_ingest(principal_or_tenant=acme, batch_id="old", rows=[old_row], now=days_ago)
    ingest(acme, [row()], batch_id="new")
    telemetry_fold_due(now=NOW)
    assert list(TelemetryBatch.objects.values_list("batch_id", flat=True)) == ["new"]
    assert recent_traffic(prompt_v1, hours=24 * 7, now=NOW) == 20  # nothing lost
    assert TelemetryCounter.objects.filter(resolution=Resolution.HOUR).get().requests == 10


def test_an_ingest_queues_the_controller_for_active_rollouts_after_commit(
    canary_rollout: Rollout,
    prompt_v2: Version,
    acme: Tenant,
    people: dict[str, Any],
    django_capture_on_commit_callbacks: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rollouts import tasks

    queued: list[list[str]] = []
    monkeypatch.setattr(tasks.rollouts_controller_soon, "delay", queued.append)
    canary = row(rollout=canary_rollout.reference, arm="canary", version=prompt_v2.version)
    with django_capture_on_commit_callbacks(execute=True):
        ingest(acme, [canary], batch_id="draft")
    assert queued == []  # a draft rollout is not analysed
    services.rollout_start(rollout=canary_rollout, actor=people["admin"])
    with django_capture_on_commit_callbacks(execute=True):
        ingest(acme, [canary], batch_id="live")
        assert queued == []  # not before the commit
    assert queued == [[str(canary_rollout.pk)]]
