"""The Active stage's criteria rollouts answers: monitoring and post-deploy verification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from registry.models import Version
from rollouts.analysis import WatchVerdict
from rollouts.criteria import (
    RolloutOutcome,
    monitoring_facts,
    monitoring_verdict,
    post_deploy_facts,
    post_deploy_verdict,
)
from rollouts.models import Slot, TelemetryCounter

AT = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
PATH = "prompt/platform/qualify-lead@1.1.0"


def test_monitoring_is_met_with_the_count_and_last_time() -> None:
    met, detail = monitoring_verdict(path=PATH, requests=1200, last_seen=AT)
    assert met
    assert detail == "1200 requests reported in the last 24 h, the last at 2026-12-03 09:30 UTC"


def test_monitoring_missing_says_how_to_enable_it() -> None:
    met, detail = monitoring_verdict(path=PATH, requests=0, last_seen=None)
    assert not met
    assert detail.startswith(f"No telemetry for {PATH} in the last 24 h: send its telemetry: ")
    assert "POST /api/v1/telemetry/" in detail
    assert "telemetry:write" in detail


def outcome(status: str | None, failed: tuple[str, ...] = ()) -> RolloutOutcome:
    return RolloutOutcome("RO-4", "/rollouts/RO-4/", 7 if status else None, status, failed)


def test_post_deploy_is_met_by_a_succeeded_rollout_whose_manifest_passes() -> None:
    met, detail = post_deploy_verdict(path=PATH, active=True, rollout=outcome("pass"), watch=None)
    assert met
    assert detail == (
        "RO-4 succeeded; its phase manifest v7 passes (runtime-governance, rollback-proof)"
    )


def test_post_deploy_names_the_failing_phase() -> None:
    met, detail = post_deploy_verdict(
        path=PATH,
        active=True,
        rollout=outcome("fail", ("drift-gate", "runtime-governance")),
        watch=None,
    )
    assert not met
    assert detail == "RO-4's phase manifest v7 does not pass: runtime-governance"


def test_post_deploy_without_a_rollout_reads_the_watch() -> None:
    healthy = WatchVerdict(False, "within thresholds (900 requests in the last 60 min)")
    met, detail = post_deploy_verdict(path=PATH, active=True, rollout=None, watch=healthy)
    assert met
    assert detail.endswith("within thresholds (900 requests in the last 60 min)")
    bad = WatchVerdict(True, "errors: e-value >= 80: observed 0.1")
    assert post_deploy_verdict(path=PATH, active=True, rollout=None, watch=bad) == (
        False,
        "Telemetry breaks its thresholds: errors: e-value >= 80: observed 0.1",
    )
    early = WatchVerdict(None, "collecting: 12/200 requests in the last 60 min")
    met, detail = post_deploy_verdict(path=PATH, active=True, rollout=None, watch=early)
    assert not met
    assert "collecting: 12/200" in detail
    met, detail = post_deploy_verdict(path=PATH, active=False, rollout=None, watch=None)
    assert not met
    assert detail.startswith(f"{PATH} is not serving as a default")


@pytest.mark.django_db
def test_the_facts_come_from_telemetry_and_the_rollout(slot: Slot, prompt_v1: Version) -> None:
    now = timezone.now()
    assert monitoring_facts(prompt_v1, now=now) == (0, None)
    TelemetryCounter.objects.create(
        tenant=slot.application.tenant, application=slot.application, slot=slot,
        version=prompt_v1, bucket_start=now - timedelta(hours=1), requests=40, received_at=now,
    )  # fmt: skip
    TelemetryCounter.objects.create(
        tenant=slot.application.tenant, application=slot.application, slot=slot,
        version=prompt_v1, bucket_start=now - timedelta(hours=30), requests=99,
    )  # fmt: skip
    assert monitoring_facts(prompt_v1, now=now) == (40, now)
    active, rollout, watch = post_deploy_facts(prompt_v1)
    assert (active, rollout) == (True, None)
    assert watch is not None
    assert watch.breached is None  # 40 requests: below the minimum


def test_rollouts_replaces_the_placeholders_in_the_catalog() -> None:
    from reviews.lifecycle.catalog import criterion
    from rollouts.criteria import monitoring_check, post_deploy_check

    monitoring, verification = criterion("monitoring"), criterion("post_deploy_verification")
    assert monitoring is not None
    assert verification is not None
    assert (monitoring.check, verification.check) == (monitoring_check, post_deploy_check)
    assert (monitoring.stage, verification.stage) == ("active", "active")


@pytest.mark.django_db
def test_the_checks_answer_through_the_lifecycle_subject(slot: Slot, prompt_v1: Version) -> None:
    from reviews.lifecycle import subject_for
    from rollouts.criteria import monitoring_check, post_deploy_check

    subject = subject_for(prompt_v1)
    missing = monitoring_check(subject)
    assert not missing.met
    assert "POST /api/v1/telemetry/" in missing.detail
    TelemetryCounter.objects.create(
        tenant=slot.application.tenant, application=slot.application, slot=slot,
        version=prompt_v1, bucket_start=timezone.now() - timedelta(minutes=5), requests=250,
    )  # fmt: skip
    met = monitoring_check(subject)
    assert met.met
    assert met.detail.startswith("250 requests reported in the last 24 h, the last at ")
    assert met.url == f"/rollouts/usage/prompt/platform/{slot.artifact.slug}/"
    verified = post_deploy_check(subject)  # 250 healthy requests, no baseline: within thresholds
    assert verified.met
    assert verified.detail == (
        "Telemetry since it became active is within thresholds (250 requests in the last 60 min)"
    )


@pytest.mark.django_db
def test_an_enforced_policy_refuses_a_rollout_naming_the_unmet_criteria(
    promoted_change: Any, people: dict[str, Any], settings: Any
) -> None:
    from governance.kernel.errors import Conflict
    from rollouts import services

    settings.LIFECYCLE_ENFORCED_DEFAULT = True
    with pytest.raises(Conflict) as refused:
        services.rollout_create(change=promoted_change, actor=people["admin"], strategy="canary")
    message = refused.value.message
    assert message.startswith(
        f"{promoted_change.reference} cannot be rolled out: the Approved stage criteria are not met: "
    )
    assert "Evaluation plan" in message
    assert refused.value.code == "criteria_unmet"
    settings.LIFECYCLE_ENFORCED_DEFAULT = False  # advisory: the draft is made ...
    draft = services.rollout_create(
        change=promoted_change, actor=people["admin"], strategy="canary", reason="advisory"
    )
    settings.LIFECYCLE_ENFORCED_DEFAULT = True  # ... and enforced again before it starts
    with pytest.raises(Conflict) as at_start:
        services.rollout_start(rollout=draft, actor=people["admin"])
    assert at_start.value.message == message
    draft.refresh_from_db()
    assert draft.state == "draft"
