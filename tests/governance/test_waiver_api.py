"""Waiver API: list by state, grant, read, renew, revoke, countersign; bad input and other tenants."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import services as reviews
from reviews.choices import CheckKind
from reviews.waivers.models import Waiver
from tests.reviews.conftest import (
    _builtin_classes,
    make_artifact,
    open_change,
    people,
    prompt,
    prompt_v1,
    prompt_v2,
)
from tests.reviews.test_services import evaluation, run_checks

# Fixtures used here (imported so pytest finds them outside tests/reviews).
__all__ = ["_builtin_classes", "open_change", "people", "prompt", "prompt_v1", "prompt_v2"]

pytestmark = pytest.mark.django_db
BASE = "/api/v1/waivers/"
DAY = timedelta(days=1)


def url(ref: str, action: str = "") -> str:
    return f"{BASE}{ref}/" + (f"{action}/" if action else "")


def error(resp: Any) -> tuple[int, str | None]:
    body = resp.json()
    assert "error" in body, body
    return resp.status_code, body["error"]["field"]


def iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


def body(**kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tenant": "acme",
        "check": "offline_evaluation",
        "artifacts": ["prompt/acme/qualify-lead"],
        "owner": "reviewer",
        "justification": "The safety drop is a scoring artefact of the new eval set.",
        "mitigation": "Human review of 5% of replies until the eval is fixed.",
        "advisory_links": ["https://tickets.example.com/SEC-12"],
        "expires_at": iso(20 * DAY),
    }
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def admin(people: dict[str, Any], token_client: Any) -> APIClient:
    return token_client(people["admin"])


def grant(client: APIClient, **kw: Any) -> dict[str, Any]:
    resp = client.post(BASE, body(**kw), format="json")
    assert resp.status_code == 201, resp.json()
    return resp.json()


@pytest.fixture
def failing_change(open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any) -> Any:
    """v1 is active with safety 0.97; a change to v2 reports 0.5, so its offline evaluation fails."""
    first = open_change(prompt_v1)
    evaluation(first, prompt_v1)
    reviews.change_submit(change=first, actor=people["author"])
    run_checks(first)
    for who in ("reviewer", "admin"):
        reviews.approval_decide(change=first, actor=people[who], decision="approve")
    reviews.change_promote(change=first, actor=people["admin"])
    worse = open_change(prompt_v2)
    evaluation(worse, prompt_v2, safety=0.5)
    reviews.change_submit(change=worse, actor=people["author"])
    assert run_checks(worse)[CheckKind.OFFLINE_EVALUATION] == "failed"
    worse.refresh_from_db()
    return worse


# --- grant and read -------------------------------------------------------------------------


def test_grant_answers_the_waiver_with_its_state_scope_and_history(
    admin: APIClient, people: dict[str, Any], prompt: Any
) -> None:
    data = grant(admin)
    waiver = Waiver.objects.get()
    assert re.fullmatch(r"WV-\d{4}-\d{4}", data["reference"])
    assert data["reference"] == waiver.reference
    assert data["id"] == str(waiver.pk)
    assert data["url"] == f"/api/v1/waivers/{waiver.reference}/"
    assert (data["tenant"], data["state"], data["check"], data["metric"]) == (
        "acme",
        "active",
        "offline_evaluation",
        None,
    )
    assert data["scope"] == {
        "change": None,
        "change_revision": None,
        "artifacts": ["prompt/acme/qualify-lead"],
    }
    assert (data["owner"], data["granted_by"]) == ("reviewer", "admin")
    assert data["advisory_links"] == ["https://tickets.example.com/SEC-12"]
    assert data["needs_security"] is False
    assert data["countersigned_by"] is None
    assert (data["renews"], data["renewed_by"], data["lineage"]) == (None, None, [waiver.reference])
    assert [e["kind"] for e in data["history"]] == [EventKind.WAIVER_GRANTED]
    assert data["history"][0]["actor"] == "admin"
    assert data["history"][0]["payload"]["artifacts"] == ["prompt/acme/qualify-lead"]
    again = admin.get(url(waiver.reference)).json()
    assert again == data
    assert admin.get(url(str(waiver.pk))).json()["reference"] == waiver.reference  # by uuid
    assert admin.get(url(waiver.reference.lower())).status_code == 200


@pytest.fixture
def p95_gate(acme: Any, people: dict[str, Any]) -> None:
    """A change gate on prompts: without one, a change-gates waiver has nothing to waive."""
    from registry.models import ArtifactClass

    reviews.change_gate_set(
        tenant=acme,
        artifact_class=ArtifactClass.objects.get(slug="prompt"),
        gates=[{"metric": "p95", "max": 300}],
        actor=people["admin"],
    )


def test_grant_scoped_to_a_change_and_one_gate_metric(
    admin: APIClient, open_change: Any, prompt_v1: Any, p95_gate: None
) -> None:
    change = open_change(prompt_v1)
    data = grant(admin, artifacts=None, change=change.reference, check="change_gates", metric="p95")
    assert data["scope"] == {
        "change": change.reference,
        "change_revision": change.revision,
        "artifacts": [],
    }
    assert (data["check"], data["metric"]) == ("change_gates", "p95")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"justification": ""}, "justification"),
        ({"justification": None}, "justification"),
        ({"mitigation": "   "}, "mitigation"),
        ({"check": "nope"}, "check"),
        ({"expires_at": "next tuesday"}, "expires_at"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"owner": "nobody-here"}, "owner"),
        ({"owner": "outsider"}, "owner"),
        ({"artifacts": ["prompt/acme/no-such-thing"]}, "artifacts"),
        ({"artifacts": ["prompt/acme/qualify-lead/1.0.0"]}, "artifacts"),
        ({"artifacts": ["not a reference"]}, "artifacts"),
        ({"artifacts": "prompt/acme/qualify-lead"}, "artifacts"),
        ({"artifacts": []}, "scope"),
        ({"change": "CR-2026-9999"}, "change"),
        ({"metric": "p95"}, "metric"),
        ({"advisory_links": ["javascript:alert(1)"]}, "advisory_links"),
        ({"advisory_links": "https://x.example.com"}, "advisory_links"),
        ({"justification": "bad\x00byte"}, "justification"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    admin: APIClient, make_user: Any, globex: Any, prompt: Any, changes: Any, field: str
) -> None:
    make_user("outsider", globex="member")
    before = Event.objects.count()
    resp = admin.post(BASE, body(**changes), format="json")
    assert error(resp) == (400, field), resp.json()
    assert Waiver.objects.count() == 0
    assert Event.objects.count() == before


def test_both_change_and_artifacts_is_refused(
    admin: APIClient, open_change: Any, prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    resp = admin.post(BASE, body(change=change.reference), format="json")
    assert error(resp) == (400, "scope")
    assert not Waiver.objects.exists()


def test_only_an_administrator_may_grant(
    people: dict[str, Any], token_client: Any, prompt: Any
) -> None:
    for who in ("author", "reviewer", "security"):
        resp = token_client(people[who]).post(BASE, body(), format="json")
        assert resp.status_code == 403, (who, resp.json())
        assert resp.json()["error"]["code"] == "permission_denied"
    assert not Waiver.objects.exists()


# --- tenants --------------------------------------------------------------------------------


def test_other_tenants_waivers_are_not_found(
    admin: APIClient, make_user: Any, globex: Any, token_client: Any, prompt: Any
) -> None:
    data = grant(admin)
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    assert stranger.get(BASE).json()["results"] == []
    for path, method in (
        (url(data["reference"]), "get"),
        (url(data["reference"], "renew"), "post"),
        (url(data["reference"], "revoke"), "post"),
        (url(data["reference"], "countersign"), "post"),
    ):
        resp = getattr(stranger, method)(path, {"expires_at": iso(30 * DAY), "reason": "x"})
        assert resp.status_code == 404, (path, resp.json())
        assert resp.json()["error"]["code"] == "not_found"
    # granting in a tenant one does not belong to is the same 404
    resp = stranger.post(BASE, body(), format="json")
    assert error(resp) == (404, "tenant")
    # naming another tenant's artifact from one's own tenant reads as missing
    own = make_artifact(globex, "prompt", "own")
    resp = stranger.post(
        BASE,
        body(tenant="globex", owner="stranger", artifacts=[own.path, "prompt/acme/qualify-lead"]),
        format="json",
    )
    assert error(resp) == (400, "artifacts")
    waiver = Waiver.objects.get()
    assert waiver.revoked_at is None
    assert not hasattr(waiver, "renewal")


def test_anonymous_callers_are_refused(api: APIClient) -> None:
    assert api.get(BASE).status_code in (401, 403)
    assert api.post(BASE, body(), format="json").status_code in (401, 403)


# --- list -----------------------------------------------------------------------------------


def test_list_shows_expiring_soon_first_and_filters(
    admin: APIClient, open_change: Any, prompt_v1: Any, p95_gate: None
) -> None:
    later = grant(admin, expires_at=iso(40 * DAY))
    soon = grant(admin, expires_at=iso(3 * DAY))
    gates = grant(admin, check="change_gates", metric="p95", expires_at=iso(10 * DAY))
    gone = grant(admin, expires_at=iso(50 * DAY))
    admin.post(url(gone["reference"], "revoke"), {"reason": "fixed"}, format="json")

    rows = admin.get(BASE).json()["results"]
    assert [(r["reference"], r["state"]) for r in rows] == [
        (soon["reference"], "expiring_soon"),
        (gates["reference"], "active"),
        (later["reference"], "active"),
        (gone["reference"], "revoked"),
    ]

    def refs(**params: Any) -> list[str]:
        resp = admin.get(BASE, params)
        assert resp.status_code == 200, resp.json()
        return [r["reference"] for r in resp.json()["results"]]

    assert refs(state="expiring_soon") == [soon["reference"]]
    assert refs(state="revoked") == [gone["reference"]]
    assert refs(check="change_gates") == [gates["reference"]]
    assert refs(expiring_within=7) == [soon["reference"]]
    assert refs(expiring_within=45) == [soon["reference"], gates["reference"], later["reference"]]
    assert refs(tenant="acme", state="active") == [gates["reference"], later["reference"]]
    assert refs(tenant="globex") == []
    assert len(refs(state="", check="", tenant="", expiring_within="")) == 4  # blanks: any
    page = admin.get(BASE, {"limit": 2}).json()
    assert page["count"] == 4
    assert len(page["results"]) == 2
    assert page["next"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"state": "sleepy"}, "state"),
        ({"check": "nope"}, "check"),
        ({"expiring_within": "-1"}, "expiring_within"),
        ({"expiring_within": "soon"}, "expiring_within"),
        ({"expiring_within": "99999999999999999999"}, "expiring_within"),
    ],
)
def test_bad_list_filters_name_the_parameter(admin: APIClient, params: Any, field: str) -> None:
    assert error(admin.get(BASE, params)) == (400, field)


def test_expired_waivers_show_as_expired(admin: APIClient, prompt: Any) -> None:
    data = grant(admin, expires_at=iso(2 * DAY))
    with time_machine.travel(timezone.now() + 3 * DAY):
        rows = admin.get(BASE, {"state": "expired"}).json()["results"]
        assert [r["reference"] for r in rows] == [data["reference"]]
        assert admin.get(url(data["reference"])).json()["state"] == "expired"
        assert admin.get(BASE, {"expiring_within": 30}).json()["results"] == []


def test_list_costs_the_same_queries_for_more_rows(
    admin: APIClient, people: dict[str, Any], prompt: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    first = grant(admin)
    admin.post(url(first["reference"], "renew"), {"expires_at": iso(60 * DAY)}, format="json")
    with CaptureQueriesContext(connection) as few:
        assert len(admin.get(BASE).json()["results"]) == 2
    for _ in range(4):
        grant(admin)
    with CaptureQueriesContext(connection) as many:
        assert len(admin.get(BASE).json()["results"]) == 6
    assert len(many.captured_queries) == len(few.captured_queries)


# --- renew, revoke, countersign -------------------------------------------------------------


def test_renew_makes_a_new_waiver_linked_to_the_old(admin: APIClient, prompt: Any) -> None:
    old = grant(admin)
    resp = admin.post(
        url(old["reference"], "renew"),
        {"expires_at": iso(60 * DAY), "mitigation": "Eval set fixed by March."},
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    new = resp.json()
    assert new["reference"] != old["reference"]
    assert (new["renews"], new["renewed_by"]) == (old["reference"], None)
    assert new["lineage"] == [old["reference"], new["reference"]]
    assert new["mitigation"] == "Eval set fixed by March."
    assert new["justification"] == old["justification"]  # kept when left out
    assert new["scope"] == old["scope"]
    assert new["state"] == "active"
    assert [e["kind"] for e in new["history"]] == [EventKind.WAIVER_RENEWED]
    before = admin.get(url(old["reference"])).json()
    assert before["renewed_by"] == new["reference"]
    assert before["mitigation"] == old["mitigation"]  # never edited
    assert before["lineage"] == [old["reference"], new["reference"]]
    rows = {r["reference"]: r for r in admin.get(BASE).json()["results"]}
    assert rows[old["reference"]]["renewed_by"] == new["reference"]
    # renewing the old one again is refused: renew the newest
    again = admin.post(url(old["reference"], "renew"), {"expires_at": iso(30 * DAY)})
    assert error(again) == (409, "status")
    assert Waiver.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "expires_at"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2026-13-45"}, "expires_at"),
        ({"expires_at": "2999-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "+30d", "justification": ""}, "expires_at"),
    ],
)
def test_bad_renewals_name_the_field_and_write_nothing(
    admin: APIClient, prompt: Any, payload: Any, field: str
) -> None:
    old = grant(admin)
    resp = admin.post(url(old["reference"], "renew"), payload, format="json")
    assert error(resp) == (400, field)
    assert Waiver.objects.count() == 1


def test_renew_with_bad_links_names_them(admin: APIClient, prompt: Any) -> None:
    old = grant(admin)
    resp = admin.post(
        url(old["reference"], "renew"),
        {"expires_at": iso(30 * DAY), "advisory_links": ["ftp://x"]},
        format="json",
    )
    assert error(resp) == (400, "advisory_links")
    assert Waiver.objects.count() == 1


def test_revoke_ends_it_now_and_says_why(
    admin: APIClient, people: dict[str, Any], token_client: Any, prompt: Any
) -> None:
    data = grant(admin)
    assert error(admin.post(url(data["reference"], "revoke"), {})) == (400, "reason")
    assert error(admin.post(url(data["reference"], "revoke"), {"reason": "  "})) == (400, "reason")
    refused = token_client(people["author"]).post(url(data["reference"], "revoke"), {"reason": "x"})
    assert refused.status_code == 403
    assert Waiver.objects.get().revoked_at is None
    resp = token_client(people["security"]).post(
        url(data["reference"], "revoke"), {"reason": "The eval is fixed."}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    out = resp.json()
    assert (out["state"], out["revoked_by"], out["revoke_reason"]) == (
        "revoked",
        "security",
        "The eval is fixed.",
    )
    assert out["revoked_at"] is not None
    assert [e["kind"] for e in out["history"]] == [
        EventKind.WAIVER_GRANTED,
        EventKind.WAIVER_REVOKED,
    ]
    assert error(admin.post(url(data["reference"], "revoke"), {"reason": "again"})) == (
        409,
        "status",
    )
    assert error(admin.post(url(data["reference"], "renew"), {"expires_at": iso(9 * DAY)})) == (
        409,
        "status",
    )


def test_a_security_check_waiver_is_pending_until_countersigned(
    admin: APIClient, people: dict[str, Any], token_client: Any, prompt: Any
) -> None:
    data = grant(admin, check="pack_verification")
    assert (data["needs_security"], data["state"]) == (True, "pending")
    ref = data["reference"]
    assert admin.post(url(ref, "countersign")).status_code == 403  # the grantor
    assert token_client(people["reviewer"]).post(url(ref, "countersign")).status_code == 403
    resp = token_client(people["security"]).post(url(ref, "countersign"))
    assert resp.status_code == 200, resp.json()
    out = resp.json()
    assert (out["state"], out["countersigned_by"]) == ("active", "security")
    assert out["countersigned_at"] is not None
    assert [e["kind"] for e in out["history"]][-1] == EventKind.WAIVER_COUNTERSIGNED
    again = token_client(people["security"]).post(url(ref, "countersign"))
    assert error(again) == (409, "status")
    plain = grant(admin)
    assert error(admin.post(url(plain["reference"], "countersign"))) == (409, "status")


def test_the_change_page_shows_the_waiver_a_failed_check_passes_under(
    admin: APIClient, failing_change: Any
) -> None:
    detail = f"/api/v1/change-requests/{failing_change.reference}/"
    checks = {c["kind"]: c for c in admin.get(detail).json()["checks"]}
    blocked = checks["offline_evaluation"]
    assert (blocked["status"], blocked["passes"], blocked["waived_by"]) == ("failed", False, [])
    assert blocked["blocked_by"].startswith("Offline evaluation failed")
    data = grant(admin, artifacts=None, change=failing_change.reference)
    checks = {c["kind"]: c for c in admin.get(detail).json()["checks"]}
    waived = checks["offline_evaluation"]
    assert (waived["status"], waived["passes"], waived["waived"]) == ("failed", True, True)
    assert (waived["waived_by"], waived["blocked_by"]) == ([data["reference"]], None)
    assert checks["pack_verification"]["passes"] is True
    assert checks["pack_verification"]["waived_by"] == []
    admin.post(url(data["reference"], "revoke"), {"reason": "enough"}, format="json")
    again = {c["kind"]: c for c in admin.get(detail).json()["checks"]}["offline_evaluation"]
    assert again["passes"] is False
    assert data["reference"] in again["blocked_by"]


# --- odds and ends --------------------------------------------------------------------------


def test_unknown_references_and_actions_answer_json_404(admin: APIClient, prompt: Any) -> None:
    data = grant(admin)
    for path in (url("WV-2026-9999"), url("nonsense"), url("WV-x-y")):
        assert error(admin.get(path)) == (404, "reference")
    resp = admin.post(url(data["reference"], "extend"))
    assert error(resp) == (404, "action")


def test_the_schema_documents_every_waiver_operation(admin: APIClient) -> None:
    resp = admin.get("/api/v1/schema/", HTTP_ACCEPT="application/json")
    paths = resp.json()["paths"]
    assert set(paths["/api/v1/waivers/"]) >= {"get", "post"}
    assert "get" in paths["/api/v1/waivers/{reference}/"]
    for action in ("renew", "revoke", "countersign"):
        assert "post" in paths[f"/api/v1/waivers/{{reference}}/{action}/"]
    props = resp.json()["components"]["schemas"]["Waiver"]["properties"]
    assert {"state", "renews", "renewed_by", "scope"} <= set(props)


def test_a_check_that_does_not_apply_or_passed_is_refused_naming_its_state(
    admin: APIClient, failing_change: Any
) -> None:
    resp = admin.post(
        BASE,
        body(artifacts=None, change=failing_change.reference, check="rules_lint"),
        format="json",
    )
    assert error(resp) == (400, "check")
    assert "Rules lint does not apply" in resp.json()["error"]["message"]
    resp = admin.post(
        BASE,
        body(artifacts=None, change=failing_change.reference, check="pack_verification"),
        format="json",
    )
    assert error(resp) == (409, "check")
    assert "Pack verification has passed" in resp.json()["error"]["message"]
    resp = admin.post(BASE, body(check="rules_simulation"), format="json")  # a prompt artifact
    assert error(resp) == (400, "check")
    assert not Waiver.objects.exists()
