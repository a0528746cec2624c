"""Re-certification after an emergency: opened on promotion, closed by a normal change's
approval, reminded once when overdue, shown on the change and version pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from governance.sweep import governance_sweep
from reviews import selectors, services
from reviews.choices import ChangeStatus
from reviews.lifecycle.policy import DEFAULT_RECERTIFY_DAYS
from reviews.models import Recertification
from tests.reviews.test_services import evaluation, run_checks

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def emergency(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> Any:
    """prompt v1 promoted on the emergency path (owner: admin; security signs off too)."""
    change = open_change(prompt_v1, emergency=True)
    evaluation(change, prompt_v1)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["admin"], decision="approve")  # owner
    services.approval_decide(change=change, actor=people["security"], decision="approve")
    return services.change_promote(change=change, actor=people["admin"])


def followup(open_change: Any, people: dict[str, Any], *versions: Any) -> Any:
    """A normal change proposing ``versions`` (already active), approved by reviewer and admin."""
    change = open_change(*versions)
    for version in versions:
        evaluation(change, version)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    services.approval_decide(change=change, actor=people["admin"], decision="approve")
    change.refresh_from_db()
    return change


def test_promoting_an_emergency_change_opens_one_due_in_the_policy_days(emergency: Any) -> None:
    recertification = Recertification.objects.get(emergency=emergency)
    assert recertification.due_at == emergency.promoted_at + DEFAULT_RECERTIFY_DAYS * DAY
    assert recertification.certified_at is None
    event = Event.objects.get(kind=EventKind.RECERTIFICATION_OPENED)
    assert event.subject_id == str(emergency.pk)
    assert event.payload["days"] == DEFAULT_RECERTIFY_DAYS
    assert event.payload["due_at"] == recertification.due_at.isoformat()


def test_a_normal_change_is_not_recertified(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    services.change_promote(change=followup(open_change, people, prompt_v1), actor=people["admin"])
    assert not Recertification.objects.exists()


def test_an_approved_normal_change_of_the_same_versions_recertifies(
    emergency: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    assert selectors.awaiting_recertification([prompt_v1.pk])  # proposing it is allowed
    change = followup(open_change, people, prompt_v1)
    assert change.status == ChangeStatus.APPROVED
    recertification = Recertification.objects.get(emergency=emergency)
    assert recertification.followup == change
    assert recertification.certified_at is not None
    event = Event.objects.get(kind=EventKind.RECERTIFICATION_COMPLETED)
    assert event.subject_id == str(emergency.pk)
    assert event.payload["followup"] == change.reference
    assert event.payload["late"] is False
    assert selectors.awaiting_recertification([prompt_v1.pk]) == {}
    # Nothing is left to promote: the promotion request to administrators is resolved.
    assert not Notification.objects.filter(
        subject=f"change:{change.pk}:promote", resolved_at__isnull=True
    ).exists()


def test_a_superset_recertifies_and_a_part_does_not(
    emergency: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any, acme: Any
) -> None:
    from tests.reviews.conftest import PINS, make_artifact, publish

    other = make_artifact(acme, "prompt", "summarise", owner=people["admin"])
    o1 = publish(other, text="Summarise {{ text }}.", impact="major", metadata=PINS)
    followup(open_change, people, o1)  # does not propose prompt v1
    assert Recertification.objects.get().certified_at is None
    o2 = publish(other, text="Summarise {{ text }} briefly.", metadata=PINS)
    followup(open_change, people, prompt_v1, o2)
    assert Recertification.objects.get().certified_at is not None


def test_an_overdue_one_reminds_the_owner_and_security_officers_once(
    emergency: Any, people: dict[str, Any]
) -> None:
    recertification = Recertification.objects.get(emergency=emergency)
    assert services.recertification_reminders_send(now=recertification.due_at - DAY) == 0
    late = recertification.due_at + DAY
    assert services.recertification_reminders_send(now=late) == 2  # admin (owner), security
    assert governance_sweep(now=late + DAY)["recertification_reminders"] == 0
    notes = Notification.objects.filter(subject=f"recertification:{recertification.pk}")
    assert sorted(n.user.username for n in notes) == ["admin", "security"]
    assert "re-certify its versions, it is overdue" in notes[0].title
    assert notes[0].url == emergency.get_absolute_url()
    overdue = Event.objects.get(kind=EventKind.RECERTIFICATION_OVERDUE)
    assert overdue.payload["reminded"] == ["admin", "security"]
    recertification.refresh_from_db()
    assert recertification.reminded_at == late


def test_recertifying_late_resolves_the_reminder(
    emergency: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    recertification = Recertification.objects.get(emergency=emergency)
    services.recertification_reminders_send(now=recertification.due_at + DAY)
    Recertification.objects.filter(pk=recertification.pk).update(
        due_at=timezone.now() - DAY, opened_at=timezone.now() - 20 * DAY
    )
    followup(open_change, people, prompt_v1)
    assert not Notification.objects.filter(
        subject=f"recertification:{recertification.pk}", resolved_at__isnull=True
    ).exists()
    assert Event.objects.get(kind=EventKind.RECERTIFICATION_COMPLETED).payload["late"] is True


def test_the_change_and_version_pages_say_not_recertified(
    client: Any, emergency: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    recertification = Recertification.objects.get(emergency=emergency)
    due = f"{recertification.due_at:%Y-%m-%d}"
    client.force_login(people["reviewer"])
    change_page = client.get(emergency.get_absolute_url()).content.decode()
    assert 'id="not-recertified"' in change_page
    assert "Not re-certified</span> (due <time" in change_page
    assert due in change_page
    version_page = client.get(prompt_v1.get_absolute_url()).content.decode()
    assert 'id="version-notice-recertification"' in version_page
    assert f"Not re-certified</span> (due {due}): made active" in version_page
    assert emergency.reference in version_page
    done = followup(open_change, people, prompt_v1)
    change_page = client.get(emergency.get_absolute_url()).content.decode()
    assert 'id="recertified"' in change_page
    assert done.reference in change_page
    assert (
        "version-notice-recertification"
        not in client.get(prompt_v1.get_absolute_url()).content.decode()
    )


def test_changes_show_says_whether_it_is_recertified(emergency: Any) -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("changes", "show", emergency.reference, stdout=out)
    due = f"{Recertification.objects.get().due_at:%Y-%m-%d}"
    assert f"  NOT re-certified (due {due})" in out.getvalue().splitlines()


def test_the_api_detail_carries_it(
    token_client: Any, emergency: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    client = token_client(people["author"])
    url = f"/api/v1/change-requests/{emergency.reference}/"
    body = client.get(url).json()["recertification"]
    assert body["certified_at"] is None
    assert body["overdue"] is False
    done = followup(open_change, people, prompt_v1)
    body = client.get(url).json()["recertification"]
    assert body["followup"] == done.reference
    assert (
        client.get(f"/api/v1/change-requests/{done.reference}/").json()["recertification"] is None
    )
