"""Emergency follow-up: the post-mortem falls due, is reminded once when overdue, and is recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.models import Notification
from reviews import services
from reviews.choices import ChangeStatus
from tests.reviews.test_services import evaluation, run_checks

DAY = timedelta(days=1)


@pytest.fixture
def emergency(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> Any:
    change = open_change(prompt_v1, emergency=True)
    evaluation(change, prompt_v1)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["admin"], decision="approve")  # owner
    services.approval_decide(change=change, actor=people["security"], decision="approve")
    promoted = services.change_promote(change=change, actor=people["admin"])
    assert promoted.status == ChangeStatus.PROMOTED
    assert promoted.postmortem_due_at is not None
    return promoted


def test_an_overdue_postmortem_reminds_owner_and_author_once(
    emergency: Any, people: dict[str, Any]
) -> None:
    assert services.postmortem_reminders_send(now=emergency.postmortem_due_at - DAY) == 0
    late = emergency.postmortem_due_at + DAY
    assert services.postmortem_reminders_send(now=late) == 2
    notes = Notification.objects.filter(dedupe_key=f"postmortem:{emergency.pk}:overdue")
    assert set(notes.values_list("user__username", flat=True)) == {"admin", "author"}
    assert emergency.reference in notes.first().title
    assert services.postmortem_reminders_send(now=late + DAY) == 0


def test_recording_the_postmortem_closes_the_follow_up(
    emergency: Any, people: dict[str, Any]
) -> None:
    with pytest.raises(Forbidden):
        services.postmortem_record(change=emergency, actor=people["reviewer"], summary="x")
    with pytest.raises(DomainError) as exc:
        services.postmortem_record(change=emergency, actor=people["author"], summary=" ")
    assert exc.value.field == "summary"
    with pytest.raises(DomainError) as exc:
        services.postmortem_record(
            change=emergency, actor=people["author"], summary="ok", url="ftp://x"
        )
    assert exc.value.field == "url"
    done = services.postmortem_record(
        change=emergency,
        actor=people["author"],
        summary="Root cause: an unpinned model alias.",
        url="https://wiki.example/pm/42",
    )
    assert done.postmortem_done_at is not None
    assert done.postmortem_by == people["author"]
    event = Event.objects.get(kind=EventKind.POSTMORTEM_RECORDED)
    assert event.payload["late"] is False
    assert event.payload["url"] == "https://wiki.example/pm/42"
    with pytest.raises(Conflict):
        services.postmortem_record(change=emergency, actor=people["author"], summary="again")
    assert services.postmortem_reminders_send(now=timezone.now() + 60 * DAY) == 0


def test_only_promoted_emergency_changes_have_a_postmortem(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    with pytest.raises(Conflict):
        services.postmortem_record(change=change, actor=people["author"], summary="nothing")


def test_emergency_changes_are_labelled_in_notifications(emergency: Any) -> None:
    titles = list(
        Notification.objects.filter(url=emergency.get_absolute_url()).values_list(
            "title", flat=True
        )
    )
    assert titles
    # Each title is the action to take ("[Emergency] Review CR-1 as ..."): the label comes first.
    assert all(t.startswith("[Emergency] ") and emergency.reference in t for t in titles)
