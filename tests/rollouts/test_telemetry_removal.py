"""No silent removals: a deprecated version that served traffic in the last 24 hours is not
removed by the sweep; its owner is alerted, once a day, and the alert survives the refusal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.sweep import governance_sweep
from registry import hooks
from registry import services as registry
from registry.models import Deprecation, Version
from reviews.models import ChangeRequest
from rollouts.models import Slot
from rollouts.telemetry_services import telemetry_ingest

pytestmark = pytest.mark.django_db


def served(tenant: Any, version: Version, at: Any, requests: int, batch_id: str) -> None:
    telemetry_ingest(
        principal_or_tenant=tenant,
        batch_id=batch_id,
        rows=[
            {
                "application": "sales-agent",
                "slot": "qualifyLead",
                "version": version.version,
                "bucket_start": (at - timedelta(hours=1)).isoformat(),
                "requests": requests,
            }
        ],
        now=at,
    )


@pytest.fixture
def deprecated(
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    promoted_change: ChangeRequest,
    people: dict[str, Any],
) -> Deprecation:
    """v2 (promoted, not the default) deprecated in favour of v1, removable after 7 days."""
    return registry.version_deprecate(
        version=prompt_v2,
        replacement=prompt_v1,
        reason="v1 is better after all.",
        remove_after_days=7,
        actor=people["admin"],
    )


def test_a_version_still_serving_is_held_and_its_owner_alerted_once_a_day(
    deprecated: Deprecation, prompt_v2: Version, acme: Any, people: dict[str, Any]
) -> None:
    later = timezone.now() + timedelta(days=10)
    served(acme, prompt_v2, later, 37, "late-1")
    assert hooks.recent_traffic([prompt_v2.pk], now=later) == {prompt_v2.pk: 37}

    with pytest.raises(registry.StillServing) as refused:
        registry.deprecation_remove(deprecation_id=deprecated.pk, now=later)
    assert refused.value.field == "version"
    assert refused.value.status_code == 409
    assert "served 37 requests in the last 24 hours" in refused.value.message
    alerts = Notification.objects.filter(dedupe_key__startswith="removal-held:")
    assert not alerts.exists()  # the service alone alerts no one

    said = governance_sweep(now=later)
    assert (said["removed_versions"], said["removals_held"]) == (0, 1)
    deprecated.refresh_from_db()
    assert deprecated.removed_at is None
    assert not Event.objects.filter(kind=EventKind.VERSION_REMOVED).exists()
    alert = alerts.get()
    assert alert.user == people["admin"] == prompt_v2.artifact.owner
    assert "still serves" in alert.title
    assert "37 requests" in alert.body
    assert alert.dedupe_key == f"removal-held:{prompt_v2.pk}:{later:%Y-%m-%d}"

    again = governance_sweep(now=later + timedelta(minutes=5))
    assert again["removals_held"] == 1
    assert alerts.count() == 1  # once a day, however often the sweep runs

    # A day without traffic later, the removal goes through.
    quiet = later + timedelta(days=2)
    assert governance_sweep(now=quiet)["removed_versions"] == 1
    deprecated.refresh_from_db()
    assert deprecated.removed_at == quiet
    assert Event.objects.filter(kind=EventKind.VERSION_REMOVED).count() == 1
    alert.refresh_from_db()  # what it asked for is done
    assert alert.title.startswith(f"Move traffic off {prompt_v2.path}: ")
    assert alert.resolved_at is not None
    assert alert.resolution == f"{prompt_v2.path} was removed."


@pytest.mark.usefixtures("deprecated")
def test_a_version_without_traffic_is_removed_on_schedule(prompt_v2: Version, acme: Any) -> None:
    later = timezone.now() + timedelta(days=10)
    served(acme, prompt_v2, later - timedelta(days=2), 5, "old")  # two days before: not recent
    said = governance_sweep(now=later)
    assert (said["removed_versions"], said["removals_held"]) == (1, 0)
    assert not Notification.objects.filter(dedupe_key__startswith="removal-held:").exists()
