"""The API of action-eligible artifacts: the flag, the deputy and the safety switch (state,
engage, release), with the services' refusals as 4xx naming the field, and OpenAPI."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact

pytestmark = pytest.mark.django_db
API = "/api/v1/artifacts/prompt/acme/qualify-lead/"
HALT = "halted: safety switch engaged on prompt/acme/qualify-lead by admin: Refunds twice."


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def reviewer(make_user: Any, acme: Any) -> Any:
    return make_user("reviewer", acme=["member", "reviewer"])


def test_an_administrator_flags_halts_and_releases_through_the_api(
    prompt: Artifact, admin: Any, token_client: Any
) -> None:
    client = token_client(admin)
    got = client.post(
        API + "action-eligible/", {"value": True, "reason": "Refunds."}, format="json"
    )
    assert got.status_code == 200, got.json()
    assert (got.json()["action_eligible"], got.json()["deputy"]) == (True, None)
    state = client.get(API + "safety-switch/").json()
    assert state == {
        "artifact": "prompt/acme/qualify-lead",
        "action_eligible": True,
        "engaged": False,
        "halted": None,
        "history": [],
    }
    got = client.post(API + "safety-switch/engage/", {"reason": "Refunds twice."}, format="json")
    assert got.status_code == 200, got.json()
    body = got.json()
    assert (body["engaged"], body["halted"]) == (True, HALT)
    assert body["history"][0]["engaged_by"] == "admin"
    assert body["history"][0]["released_at"] is None
    again = client.post(API + "safety-switch/engage/", {"reason": "Again."}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "artifact"
    got = client.post(API + "safety-switch/release/", {"reason": "Fixed."}, format="json")
    body = got.json()
    assert (body["engaged"], body["halted"]) == (False, None)
    assert (body["history"][0]["released_by"], body["history"][0]["release_reason"]) == (
        "admin",
        "Fixed.",
    )
    kinds = list(
        Event.objects.filter(subject_id=str(prompt.pk))
        .order_by("seq")
        .values_list("kind", flat=True)
    )
    assert kinds[-3:] == [
        EventKind.ARTIFACT_ACTION_ELIGIBLE_SET,
        EventKind.SAFETY_SWITCH_ENGAGED,
        EventKind.SAFETY_SWITCH_RELEASED,
    ]


def test_refusals_name_the_field(
    prompt: Artifact, admin: Any, reviewer: Any, token_client: Any
) -> None:
    got = token_client(reviewer).post(
        API + "action-eligible/", {"value": True, "reason": "R."}, format="json"
    )
    assert got.status_code == 403
    assert "Only an administrator of acme" in got.json()["error"]["message"]
    client = token_client(admin)
    got = client.post(API + "action-eligible/", {"value": True}, format="json")
    assert got.status_code == 400
    assert "reason" in got.json()["error"]["field"]
    got = client.post(API + "safety-switch/engage/", {"reason": "Stop."}, format="json")
    assert got.status_code == 409
    assert "not action-eligible" in got.json()["error"]["message"]
    got = client.post(API + "safety-switch/release/", {"reason": ""}, format="json")
    assert got.status_code == 400
    assert got.json()["error"]["field"] == "reason"
    assert not Event.objects.filter(kind=EventKind.ARTIFACT_ACTION_ELIGIBLE_SET).exists()


def test_the_owner_names_a_deputy_and_unknown_names_read_as_non_members(
    prompt: Artifact, author: Any, reviewer: Any, token_client: Any
) -> None:
    client = token_client(author)
    got = client.post(API + "deputy/", {"deputy": "nobody-here"}, format="json")
    assert got.status_code == 400
    assert got.json()["error"] == {
        "code": "invalid",
        "message": "nobody-here is not an active member of acme.",
        "field": "deputy",
    }
    got = client.post(API + "deputy/", {"deputy": "reviewer"}, format="json")
    assert got.status_code == 200
    assert got.json()["deputy"] == "reviewer"
    got = client.post(API + "deputy/", {"deputy": None}, format="json")
    assert got.json()["deputy"] is None


def test_another_tenants_artifact_reads_as_missing(
    prompt: Artifact, make_user: Any, globex: Any, token_client: Any
) -> None:
    outsider = make_user("outsider", globex=["member", "administrator"])
    got = token_client(outsider).get(API + "safety-switch/")
    assert got.status_code == 404


def test_openapi_documents_the_endpoints(client: Any) -> None:
    schema = client.get("/api/v1/schema/?format=json").json()
    base = "/api/v1/artifacts/{cls}/{tenant}/{slug}/"
    for tail, method in (
        ("action-eligible/", "post"),
        ("deputy/", "post"),
        ("safety-switch/", "get"),
        ("safety-switch/engage/", "post"),
        ("safety-switch/release/", "post"),
    ):
        assert method in schema["paths"][base + tail], tail
    state = schema["components"]["schemas"]["SafetySwitchState"]["properties"]
    assert {"engaged", "halted", "history"} <= set(state)
    assert "halted" in schema["components"]["schemas"]["Answer"]["properties"]
