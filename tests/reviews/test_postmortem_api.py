"""Change-request API: emergency follow-up fields and recording the post-mortem."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import services
from reviews.models import ChangeRequest
from tests.reviews.test_services import evaluation, run_checks

pytestmark = pytest.mark.django_db


def url(change: Any, action: str = "") -> str:
    return f"/api/v1/change-requests/{change.reference}/" + (f"{action}/" if action else "")


def error(resp: Any) -> tuple[int, str | None]:
    body = resp.json()
    assert "error" in body, body
    return resp.status_code, body["error"]["field"]


@pytest.fixture
def emergency(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> ChangeRequest:
    """A promoted emergency change: its post-mortem is due in the policy's number of days."""
    change = open_change(prompt_v1, emergency=True)
    evaluation(change, prompt_v1)
    services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    services.approval_decide(change=change, actor=people["admin"], decision="approve")  # owner
    services.approval_decide(change=change, actor=people["security"], decision="approve")
    change.refresh_from_db()
    return services.change_promote(change=change, actor=people["admin"])


def test_detail_shows_the_emergency_and_its_follow_up(
    people: dict[str, Any], token_client: Any, emergency: ChangeRequest
) -> None:
    client = token_client(people["author"])
    body = client.get(url(emergency)).json()
    assert body["emergency"] is True
    assert body["flags"]["emergency"] is True
    assert body["postmortem_due_at"] is not None
    assert (body["postmortem_done_at"], body["postmortem_overdue"]) == (None, False)
    assert (body["postmortem_by"], body["postmortem_summary"], body["postmortem_url"]) == (
        None,
        "",
        "",
    )
    assert emergency.postmortem_due_at is not None
    with time_machine.travel(emergency.postmortem_due_at + timedelta(hours=1)):
        assert client.get(url(emergency)).json()["postmortem_overdue"] is True


def test_recording_the_postmortem_closes_the_follow_up(
    people: dict[str, Any], token_client: Any, emergency: ChangeRequest
) -> None:
    client = token_client(people["author"])
    resp = client.post(
        url(emergency, "postmortem"),
        {"summary": "Bad deploy; added a canary.", "url": "https://wiki.example.com/pm/7"},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["postmortem_done_at"] is not None
    assert body["postmortem_overdue"] is False
    assert (body["postmortem_by"], body["postmortem_summary"], body["postmortem_url"]) == (
        "author",
        "Bad deploy; added a canary.",
        "https://wiki.example.com/pm/7",
    )
    event = Event.objects.get(kind=EventKind.POSTMORTEM_RECORDED)
    assert event.payload["late"] is False
    assert body["timeline"][-1]["kind"] == EventKind.POSTMORTEM_RECORDED
    again = client.post(url(emergency, "postmortem"), {"summary": "again"}, format="json")
    assert error(again) == (409, "status")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "summary"),
        ({"summary": "  "}, "summary"),
        ({"summary": "ok", "url": "not a link"}, "url"),
        ({"summary": "ok", "url": "javascript:alert(1)"}, "url"),
        ({"summary": "ok", "url": "https://x.example.com/" + "a" * 600}, "url"),
    ],
)
def test_bad_postmortems_name_the_field_and_write_nothing(
    people: dict[str, Any], token_client: Any, emergency: ChangeRequest, payload: Any, field: str
) -> None:
    resp = token_client(people["admin"]).post(url(emergency, "postmortem"), payload, format="json")
    assert error(resp) == (400, field)
    assert ChangeRequest.objects.get(pk=emergency.pk).postmortem_done_at is None
    assert not Event.objects.filter(kind=EventKind.POSTMORTEM_RECORDED).exists()


def test_only_promoted_emergencies_have_a_postmortem(
    people: dict[str, Any], token_client: Any, open_change: Any, prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    resp = token_client(people["author"]).post(url(change, "postmortem"), {"summary": "x"})
    assert error(resp) == (409, "status")
    body = token_client(people["author"]).get(url(change)).json()
    assert body["emergency"] is False
    assert body["postmortem_overdue"] is False


def test_bystanders_and_other_tenants_cannot_record_it(
    people: dict[str, Any],
    token_client: Any,
    make_user: Any,
    globex: Any,
    emergency: ChangeRequest,
) -> None:
    resp = token_client(people["privacy"]).post(url(emergency, "postmortem"), {"summary": "x"})
    assert resp.status_code == 403
    stranger: APIClient = token_client(make_user("stranger", globex=["member", "administrator"]))
    resp = stranger.post(url(emergency, "postmortem"), {"summary": "x"})
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert ChangeRequest.objects.get(pk=emergency.pk).postmortem_done_at is None


def test_a_late_postmortem_is_accepted_and_marked_late(
    people: dict[str, Any], token_client: Any, emergency: ChangeRequest
) -> None:
    assert emergency.postmortem_due_at is not None
    with time_machine.travel(emergency.postmortem_due_at + timedelta(days=2)):
        client = token_client(people["security"])
        assert client.get(url(emergency)).json()["postmortem_overdue"] is True
        resp = client.post(url(emergency, "postmortem"), {"summary": "Late, sorry."})
        assert resp.status_code == 200, resp.json()
        assert resp.json()["postmortem_overdue"] is False
    assert Event.objects.get(kind=EventKind.POSTMORTEM_RECORDED).payload["late"] is True


def test_the_schema_documents_the_postmortem_action(
    people: dict[str, Any], token_client: Any
) -> None:
    schema = token_client(people["author"]).get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    paths = schema.json()["paths"]
    assert "post" in paths["/api/v1/change-requests/{reference}/postmortem/"]
    detail = schema.json()["components"]["schemas"]["ChangeDetail"]["properties"]
    assert {"emergency", "postmortem_done_at", "postmortem_overdue", "checks"} <= set(detail)
    check = schema.json()["components"]["schemas"]["Check"]["properties"]
    assert {"passes", "waived_by", "blocked_by"} <= set(check)
