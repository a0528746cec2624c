"""Change-request API: open, list, read, revise, sign off with a password, evidence, promote, roll back, policy."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact
from reviews import selectors, services
from reviews.choices import CheckStatus
from reviews.models import Approval, ChangeRequest, CheckRun
from reviews.policy import DEFAULT_RULES
from tests.reviews.conftest import make_artifact, publish

pytestmark = pytest.mark.django_db
BASE = "/api/v1/change-requests/"
PASSWORD = "pw"  # make_user's default
HUGE = "1e400 in the raw body"
METRICS = {"accuracy": 0.91, "safety": 0.97, "latency_p95_ms": 420}


def url(change: Any, action: str = "") -> str:
    ref = change if isinstance(change, str) else change.reference
    return f"{BASE}{ref}/" + (f"{action}/" if action else "")


def run_checks(change: Any) -> None:
    """Run every pending check of a change the way the worker does."""
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        services.check_execute(run=run)


def new_change(client: APIClient, *proposed: str, **extra: Any) -> Any:
    body = {
        "tenant": "acme",
        "title": "Tune the prompt",
        "rollback_plan": "Roll back to the previous version.",
        "proposed": list(proposed),
        **extra,
    }
    resp = client.post(BASE, body, format="json")
    assert resp.status_code == 201, resp.json()
    return resp.json()


def attach_evidence(client: APIClient, change: Any, version: Any, **metrics: Any) -> Any:
    resp = client.post(
        url(change, "evidence"),
        {
            "version": version.pinned,
            "metrics": metrics or METRICS,
            "seed": "42",
            "test_run_ids": ["ci-123"],
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    return resp.json()


def in_review(open_change: Any, people: dict[str, Any], version: Any) -> ChangeRequest:
    """A change with evidence, submitted, its checks run: ready for sign-off."""
    change = open_change(version)
    services.evidence_attach(change=change, actor=None, version=version, metrics=METRICS)
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    return change


def sign_off(client: APIClient, change: Any, **body: Any) -> Any:
    return client.post(url(change, "approve"), {"password": PASSWORD, **body}, format="json")


def error(resp: Any) -> tuple[int, str | None, str]:
    body = resp.json()["error"]
    return resp.status_code, body["field"], body["code"]


# --- opening ----------------------------------------------------------------------------------


def test_create_answers_the_detail_with_items_and_hashes(
    people: dict[str, Any], token_client: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    client = token_client(people["author"])
    body = new_change(
        client,
        "qualify-lead@1.1.0",
        description="Politer wording",
        risk_note="low",
        flags={"privacy_related": True},
    )
    change = ChangeRequest.objects.get()
    assert re.fullmatch(r"CR-\d{4}-\d{4}", body["reference"])
    assert body["reference"] == change.reference
    assert body["id"] == str(change.pk)
    assert body["url"] == f"/api/v1/change-requests/{change.reference}/"
    assert (body["tenant"], body["status"], body["revision"], body["author"]) == (
        "acme",
        "draft",
        1,
        "author",
    )
    assert body["change_type"] == "prompt"
    assert body["flags"] == {"privacy_related": True, "external_egress": False, "emergency": False}
    assert (body["description"], body["risk_note"]) == ("Politer wording", "low")
    assert body["items"] == [
        {
            "artifact": "prompt/acme/qualify-lead",
            "proposed": {
                "path": prompt_v2.path,
                "version": "1.1.0",
                "sha256": prompt_v2.manifest_sha256,
            },
            "current": None,
        }
    ]
    assert body["binding_sha256"] == change.binding_sha256 == selectors.binding_hash(change)
    assert body["policy"] is None
    assert body["requirements"] == []
    assert [e["kind"] for e in body["timeline"]] == [EventKind.CHANGE_REQUEST_OPENED]
    assert body["timeline"][0]["actor"] == "author"
    # the other reference forms the registry accepts
    full = new_change(client, "prompt/acme/qualify-lead/1.0.0")
    pinned = new_change(client, prompt_v1.pinned)
    assert full["items"][0]["proposed"]["sha256"] == prompt_v1.manifest_sha256
    assert pinned["items"][0]["proposed"]["version"] == "1.0.0"
    assert client.get(url(body["id"])).json()["reference"] == body["reference"]  # by uuid


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"proposed": "qualify-lead@1.0.0"}, 400, "proposed"),
        ({"proposed": []}, 400, "proposed"),
        ({"proposed": ["nope@1.0.0"]}, 400, "proposed"),
        ({"proposed": [{"ref": "x"}]}, 400, "proposed"),
        ({"proposed": ["qualify-lead@1.0.0#00000000"]}, 400, "proposed"),
        ({"rollback_plan": "  "}, 400, "rollback_plan"),
        ({"rollback_plan": None}, 400, "rollback_plan"),
        ({"title": "x" * 201}, 400, "title"),
        ({"flags": "yes"}, 400, "flags"),
        ({"flags": {"emergency": "maybe"}}, 400, "flags.emergency"),
        ({"golden_corpus": "nope@1.0.0"}, 400, "golden_corpus"),
        ({"golden_corpus": "qualify-lead@1.0.0"}, 400, "golden_corpus"),
        ({"tenant": "nope"}, 404, "tenant"),
        ({"tenant": "globex"}, 404, "tenant"),  # exists, but the author cannot see it
    ],
)
def test_bad_input_names_the_field(
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    globex: Any,
    change: dict[str, Any],
    status: int,
    field: str,
) -> None:
    body = {
        "tenant": "acme",
        "title": "t",
        "rollback_plan": "p",
        "proposed": ["qualify-lead@1.0.0"],
        **change,
    }
    resp = token_client(people["author"]).post(BASE, body, format="json")
    assert (resp.status_code, resp.json()["error"]["field"]) == (status, field), resp.json()
    assert not ChangeRequest.objects.exists()


def test_a_body_that_is_not_an_object_is_a_400(people: dict[str, Any], token_client: Any) -> None:
    client = token_client(people["author"])
    assert client.post(BASE, ["x"], format="json").status_code == 400
    resp = client.post(BASE, "{not json", content_type="application/json")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "parse_error"


# --- listing ----------------------------------------------------------------------------------


def test_list_rows_and_filters(
    acme: Any,
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    prompt_v2: Any,
    make_user: Any,
    globex: Any,
) -> None:
    draft = open_change(prompt_v1)
    waiting = in_review(open_change, people, prompt_v2)
    template = publish(make_artifact(acme, "prompt-template", "greeting"), text="Hi {{ name }}")
    by_multi = services.change_create(
        tenant=acme, actor=people["multi"], title="Greeting", rollback_plan="p", proposed=[template]
    )
    client = token_client(people["reviewer"])

    def refs(query: str = "") -> list[str]:
        resp = client.get(BASE + query)
        assert resp.status_code == 200, resp.json()
        return [row["reference"] for row in resp.json()["results"]]

    assert refs() == [by_multi.reference, waiting.reference, draft.reference]
    row = client.get(BASE).json()["results"][1]
    assert row == {
        "id": str(waiting.pk),
        "reference": waiting.reference,
        "tenant": "acme",
        "title": "Tune the prompt",
        "change_type": "prompt",
        "status": "in_review",
        "revision": 1,
        "flags": {"privacy_related": False, "external_egress": False, "emergency": False},
        "author": "author",
        "created_at": row["created_at"],
        "submitted_at": row["submitted_at"],
        "promoted_at": None,
        "rolled_back_at": None,
        "rolled_back_by": None,
        "url": f"/api/v1/change-requests/{waiting.reference}/",
    }
    assert row["submitted_at"] is not None
    assert refs("?status=in_review") == [waiting.reference]
    assert refs("?status=draft&change_type=prompt") == [draft.reference]
    assert refs("?change_type=prompt-template") == [by_multi.reference]
    assert refs("?author=multi") == [by_multi.reference]
    assert refs("?tenant=acme&author=author") == [waiting.reference, draft.reference]
    assert refs("?waiting_for_me=true") == [waiting.reference]
    assert refs("?waiting_for_me=false") == refs()
    sign_off(client, waiting)
    assert refs("?waiting_for_me=true") == []
    assert token_client(people["author"]).get(BASE + "?waiting_for_me=true").json()["results"] == []
    for query, field in (("?status=bogus", "status"), ("?tenant=globex", "tenant")):
        resp = client.get(BASE + query)
        assert (resp.status_code, resp.json()["error"]["field"]) == (400, field)
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    assert stranger.get(BASE).json()["results"] == []


def test_list_query_count_does_not_grow_with_the_changes(
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    prompt_v2: Any,
    django_assert_max_num_queries: Any,
) -> None:
    client = token_client(people["reviewer"])
    for version in (prompt_v1, prompt_v2):
        services.change_submit(change=open_change(version), actor=people["author"])
    client.get(BASE)  # warm up (token lookup, content types)
    for query in ("", "?waiting_for_me=true&status=in_review"):
        with django_assert_max_num_queries(20) as few:
            assert len(client.get(BASE + query).json()["results"]) >= 2
        counts = [len(few.captured_queries)]
        for _ in range(8):
            open_change(prompt_v1)
        with django_assert_max_num_queries(counts[0]) as many:
            client.get(BASE + query)
        counts.append(len(many.captured_queries))
        assert counts[0] == counts[1], (query, counts)


# --- reading ----------------------------------------------------------------------------------


def test_another_tenants_change_is_invisible(
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    make_user: Any,
    globex: Any,
) -> None:
    change = in_review(open_change, people, prompt_v1)
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    for path in (url(change), url(str(change.pk)), url("CR-1999-0001")):
        resp = stranger.get(path)
        assert resp.status_code == 404, path
        assert resp.json()["error"]["field"] == "reference", path
    assert stranger.patch(url(change), {"reason": "x"}, format="json").status_code == 404
    for action in ("submit", "approve", "reject", "withdraw", "promote", "rerun", "comment"):
        resp = stranger.post(url(change, action), {"password": PASSWORD}, format="json")
        assert resp.status_code == 404, action
    assert not Approval.objects.exists()
    resp = token_client(people["reviewer"]).post(url(change, "merge"), {}, format="json")
    assert error(resp) == (404, "action", "not_found")


def test_detail_shows_slots_checks_reports_and_blockers(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    body = token_client(people["reviewer"]).get(url(change)).json()
    assert body["status"] == "in_review"
    assert body["policy"] == "built-in"
    assert body["rollback_plan"] == "Roll back to the previous version."
    assert [(s["requirement"], s["filled_by"]) for s in body["requirements"]] == [
        ("reviewer", None),
        ("administrator", None),
    ]
    checks = {c["kind"]: c for c in body["checks"]}
    assert set(checks) == {"model_pins", "offline_evaluation", "policy", "pack_verification"}
    assert all(c["status"] == "passed" and c["attempt"] == 1 for c in checks.values())
    assert checks["pack_verification"]["log"]
    assert checks["pack_verification"]["finished_at"]
    (report,) = body["evaluation_reports"]
    assert report["version"] == prompt_v1.pinned
    assert report["metrics"] == METRICS
    assert report["sha256"] == change.evaluation_reports.get().sha256
    assert body["promotion_blockers"] == [
        "missing approval from Reviewer, Administrator",
    ]
    assert [e["kind"] for e in body["timeline"]][:3] == [
        EventKind.CHANGE_REQUEST_OPENED,
        EventKind.EVIDENCE_ATTACHED,
        EventKind.CHANGE_REQUEST_SUBMITTED,
    ]
    assert [e["seq"] for e in body["timeline"]] == sorted(e["seq"] for e in body["timeline"])


# --- revising and the simple actions ----------------------------------------------------------


def test_revise_submit_comment_rerun_withdraw(
    acme: Any,
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    prompt_v2: Any,
) -> None:
    change = open_change(prompt_v1)
    author = token_client(people["author"])
    assert error(author.patch(url(change), {"title": "x"}, format="json"))[:2] == (400, "reason")
    assert error(author.patch(url(change), {"reason": "r", "proposed": "v2"}, format="json"))[
        :2
    ] == (400, "proposed")
    resp = token_client(people["reviewer"]).patch(url(change), {"reason": "r"}, format="json")
    assert error(resp) == (403, None, "permission_denied")
    revised = author.patch(
        url(change),
        {"reason": "smaller step", "proposed": [prompt_v2.path], "flags": {"emergency": False}},
        format="json",
    ).json()
    assert (revised["revision"], revised["status"]) == (2, "draft")
    assert revised["items"][0]["proposed"]["version"] == "1.1.0"
    assert revised["timeline"][-1]["payload"]["reason"] == "smaller step"

    submitted = author.post(url(change, "submit"), format="json").json()
    assert submitted["status"] == "in_review"
    assert submitted["policy"] == "built-in"
    assert {c["status"] for c in submitted["checks"]} == {"pending"}
    assert error(author.post(url(change, "submit")))[::2] == (409, "conflict")

    commented = token_client(people["reviewer"]).post(
        url(change, "comment"), {"body": "Looks good"}, format="json"
    )
    assert commented.status_code == 201
    assert commented.json()["comments"] == [
        {
            "author": "reviewer",
            "body": "Looks good",
            "created_at": commented.json()["comments"][0]["created_at"],
            "revision": None,
            "path": "",
            "side": "",
            "line": None,
            "line_text": "",
        }
    ]
    assert error(author.post(url(change, "comment"), {"body": ""}, format="json"))[:2] == (
        400,
        "body",
    )

    assert error(author.post(url(change, "rerun"), {"kind": "bogus"}, format="json"))[:2] == (
        400,
        "kind",
    )
    rerun = author.post(url(change, "rerun"), {"kind": "model_pins"}, format="json").json()
    assert {c["kind"]: c["attempt"] for c in rerun["checks"]}["model_pins"] == 2

    corpus = publish(
        make_artifact(acme, "golden-corpus", "cases"), impact="major", data={"cases": []}
    )
    with_corpus = author.patch(
        url(change), {"reason": "evaluate", "golden_corpus": "cases@1.0.0"}, format="json"
    ).json()
    assert with_corpus["golden_corpus"] == {
        "path": corpus.path,
        "version": "1.0.0",
        "sha256": corpus.manifest_sha256,
    }
    assert with_corpus["status"] == "draft"
    assert with_corpus["revision"] == 3
    kept = author.patch(url(change), {"reason": "again"}, format="json").json()
    assert kept["golden_corpus"] == with_corpus["golden_corpus"]
    cleared = author.patch(
        url(change), {"reason": "no corpus", "golden_corpus": None}, format="json"
    )
    assert cleared.json()["golden_corpus"] is None

    withdrawn = author.post(url(change, "withdraw"), {"reason": "not needed"}, format="json")
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["timeline"][-1]["payload"]["reason"] == "not needed"


# --- sign-off ---------------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_change(
    acme: Any, open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    accounts.role_grant(user=people["author"], role="reviewer", tenant=acme, actor=None)
    change = in_review(open_change, people, prompt_v1)
    resp = sign_off(token_client(people["author"]), change)
    assert error(resp) == (403, None, "permission_denied")
    assert "author" in resp.json()["error"]["message"]
    assert not Approval.objects.exists()


def test_approval_needs_the_password_and_fills_the_slot(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    client = token_client(people["reviewer"])
    for body in ({}, {"password": ""}, {"password": "wrong"}):
        resp = client.post(url(change, "approve"), body, format="json")
        assert error(resp) == (403, "password", "password_required"), body
        assert "password" in resp.json()["error"]["message"]
    assert not Approval.objects.exists()
    resp = sign_off(client, change, comment="Reads well")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    approval = Approval.objects.get()
    reviewer_slot, admin_slot = body["requirements"]
    assert reviewer_slot == {
        "requirement": "reviewer",
        "label": "Reviewer",
        "filled_by": {
            "approval": str(approval.pk),
            "approver": "reviewer",
            "at": reviewer_slot["filled_by"]["at"],
            "comment": "Reads well",
            "passkey": None,
        },
        "passkey_required": False,
    }
    assert [(a["approver"], a["counts"], a["why"], a["passkey"]) for a in body["approvals"]] == [
        ("reviewer", True, None, None)
    ]
    assert admin_slot["filled_by"] is None
    assert body["status"] == "in_review"
    assert body["timeline"][-1]["kind"] == EventKind.APPROVAL_GRANTED
    assert body["promotion_blockers"] == ["missing approval from Administrator"]
    # a second, identical sign-off changes nothing: same approval, one event
    again = sign_off(client, change, comment="Reads well").json()
    assert again["requirements"][0]["filled_by"]["approval"] == str(approval.pk)
    assert Approval.objects.count() == 1
    assert Event.objects.filter(kind=EventKind.APPROVAL_GRANTED).count() == 1
    # deciding the other way is a conflict
    resp = client.post(
        url(change, "reject"), {"password": PASSWORD, "comment": "no"}, format="json"
    )
    assert error(resp)[::2] == (409, "conflict")


def test_bad_decision_input_names_the_field(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    client = token_client(people["multi"])
    assert error(sign_off(client, change, requirement="king"))[:2] == (400, "requirement")
    resp = sign_off(client, change, requirement="privacy_officer")
    assert error(resp)[:2] == (400, "requirement")
    assert error(sign_off(client, change, comment=["x"]))[:2] == (400, "comment")
    filled = sign_off(client, change, requirement="administrator").json()
    assert [s["filled_by"] and s["filled_by"]["approver"] for s in filled["requirements"]] == [
        None,
        "multi",
    ]


def test_reject_requires_a_comment(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    client = token_client(people["reviewer"])
    for body in ({"password": PASSWORD}, {"password": PASSWORD, "comment": "  "}):
        resp = client.post(url(change, "reject"), body, format="json")
        assert error(resp)[:2] == (400, "comment")
    # the comment is checked before the password is asked for
    assert error(client.post(url(change, "reject"), {}, format="json"))[:2] == (400, "comment")
    assert not Approval.objects.exists()
    resp = client.post(
        url(change, "reject"), {"password": PASSWORD, "comment": "Too risky"}, format="json"
    )
    body = resp.json()
    assert body["status"] == "rejected"
    assert [(r["approver"], r["decision"], r["comment"]) for r in body["rejections"]] == [
        ("reviewer", "reject", "Too risky")
    ]


def test_a_browser_session_that_confirmed_lately_needs_no_password_a_token_always_does(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    first = in_review(open_change, people, prompt_v1)
    second = in_review(open_change, people, prompt_v2)
    browser = APIClient()
    browser.force_login(people["reviewer"])
    assert error(browser.post(url(first, "approve"), {}, format="json"))[2] == "password_required"
    assert sign_off(browser, first).status_code == 200
    assert browser.post(url(second, "approve"), {}, format="json").status_code == 200
    assert Approval.objects.filter(approver=people["reviewer"]).count() == 2
    # a token caller confirming does not leave a session behind that later skips the password
    third = in_review(open_change, people, prompt_v2)
    admin = token_client(people["admin"])
    assert sign_off(admin, first).status_code == 200
    assert "sessionid" not in admin.cookies
    resp = admin.post(url(third, "approve"), {}, format="json")
    assert error(resp) == (403, "password", "password_required")


def test_a_session_post_without_a_csrf_token_is_refused(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    strict = APIClient(enforce_csrf_checks=True)
    strict.force_login(people["reviewer"])
    assert strict.get(url(change)).status_code == 200  # reading needs no token
    resp = sign_off(strict, change)
    assert resp.status_code == 403
    assert "CSRF" in resp.json()["error"]["message"]
    created = strict.post(
        BASE,
        {"tenant": "acme", "title": "t", "rollback_plan": "p", "proposed": [prompt_v1.path]},
        format="json",
    )
    assert created.status_code == 403
    assert not Approval.objects.exists()
    assert ChangeRequest.objects.count() == 1


# --- evidence ---------------------------------------------------------------------------------


def test_new_evidence_voids_the_approvals(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    for who in ("reviewer", "admin"):
        assert sign_off(token_client(people[who]), change).status_code == 200
    change.refresh_from_db()
    assert change.status == "approved"
    body = attach_evidence(token_client(people["author"]), change, prompt_v1, safety=0.99)
    assert body["report"]["metrics"] == {"safety": 0.99}
    assert body["report"]["version"] == prompt_v1.pinned
    assert body["report"]["seed"] == "42"
    assert body["report"]["test_run_ids"] == ["ci-123"]
    assert body["report"]["sha256"] == change.evaluation_reports.latest("created_at").sha256
    assert body["status"] == "in_review"
    assert [s["filled_by"] for s in body["requirements"]] == [None, None]
    assert sorted((v["approver"], v["void_reason"]) for v in body["voided"]) == [
        ("admin", "new evidence was attached"),
        ("reviewer", "new evidence was attached"),
    ]
    assert len(body["evaluation_reports"]) == 2
    assert body["binding_sha256"] != change.binding_sha256
    assert EventKind.APPROVAL_VOIDED in [e["kind"] for e in body["timeline"]]
    pending = [c for c in body["checks"] if c["status"] == "pending"]
    assert {c["kind"] for c in pending} == {"offline_evaluation"}
    assert pending[0]["attempt"] == 2


@pytest.mark.parametrize(
    ("report", "status", "field"),
    [
        ({"metrics": {"accuracy": "high"}}, 400, "metrics.accuracy"),
        ({"metrics": {"accuracy": True}}, 400, "metrics.accuracy"),
        ({"metrics": {"accuracy": HUGE}}, 400, "metrics.accuracy"),
        ({"metrics": [0.9]}, 400, "metrics"),
        ({"metrics": {}}, 400, "metrics"),
        ({"metrics": {"acc\u0000": 0.5}}, 400, "metrics"),
        ({"bias": {"note": "a\u0000b"}}, 400, "bias"),
        ({"bias": "fair"}, 400, "bias"),
        ({"safety": {"big": 2**60}}, 400, "safety"),
        ({"test_run_ids": "ci-1"}, 400, "test_run_ids"),
        ({"seed": "x" * 101}, 400, "seed"),
        ({"version": "nope@1.0.0"}, 400, "version"),
        ({"version": "qualify-lead@1.1.0"}, 400, "version"),  # not proposed here
        ({"version": None}, 400, "version"),
    ],
)
def test_bad_evidence_names_the_field(
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    prompt_v2: Any,
    report: dict[str, Any],
    status: int,
    field: str,
) -> None:
    change = open_change(prompt_v1)
    body = {"version": prompt_v1.path, "metrics": METRICS, **report}
    text = json.dumps(body).replace(json.dumps(HUGE), "1e400")  # parses as inf
    resp = token_client(people["author"]).post(
        url(change, "evidence"), text, content_type="application/json"
    )
    assert error(resp)[:2] == (status, field), resp.json()
    assert not change.evaluation_reports.exists()


# --- promotion and rollback -------------------------------------------------------------------


def test_only_administrators_promote(
    open_change: Any, people: dict[str, Any], token_client: Any, prompt_v1: Any
) -> None:
    change = in_review(open_change, people, prompt_v1)
    for who in ("reviewer", "admin"):
        sign_off(token_client(people[who]), change)
    resp = token_client(people["reviewer"]).post(url(change, "promote"))
    assert error(resp) == (403, None, "permission_denied")
    assert Artifact.objects.get(pk=prompt_v1.artifact_id).active_version is None
    assert ChangeRequest.objects.get().status == "approved"


def test_full_flow_to_promoted_then_rollback(
    people: dict[str, Any],
    token_client: Any,
    prompt: Artifact,
    prompt_v1: Any,
    prompt_v2: Any,
) -> None:
    author, admin = token_client(people["author"]), token_client(people["admin"])
    reviewer = token_client(people["reviewer"])

    def promote(version: Any) -> Any:
        change = new_change(author, version.path)
        attach_evidence(author, change["reference"], version)
        assert author.post(url(change["reference"], "submit")).status_code == 200
        run_checks(ChangeRequest.objects.get(pk=change["id"]))
        assert sign_off(reviewer, change["reference"]).status_code == 200
        approved = sign_off(admin, change["reference"]).json()
        assert approved["status"] == "approved"
        assert approved["promotion_blockers"] == []
        resp = admin.post(url(change["reference"], "promote"))
        assert resp.status_code == 200, resp.json()
        return resp.json()

    first = promote(prompt_v1)
    assert first["status"] == "promoted"
    assert first["promoted_at"] is not None
    assert first["promoted_by"] == "admin"
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v1
    second = promote(prompt_v2)
    assert second["items"][0]["current"] == {
        "path": prompt_v1.path,
        "version": "1.0.0",
        "sha256": prompt_v1.manifest_sha256,
    }
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v2
    assert error(admin.post(url(second["reference"], "promote")))[::2] == (409, "conflict")

    refused = reviewer.post(
        "/api/v1/rollbacks/", {"artifact": prompt.path, "reason": "errors"}, format="json"
    )
    assert error(refused) == (403, None, "permission_denied")
    resp = admin.post(
        "/api/v1/rollbacks/", {"artifact": prompt.path, "reason": "errors"}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert body["artifact"] == "prompt/acme/qualify-lead"
    assert body["from"] == second["items"][0]["proposed"]
    assert body["to"] == second["items"][0]["current"]
    assert (body["change"], body["reason"], body["actor"]) == (
        second["reference"],
        "errors",
        "admin",
    )
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v1
    event = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK)
    assert event.payload["change"] == second["reference"]
    assert event.payload["to"]["sha256"] == prompt_v1.manifest_sha256
    # going forward again to a version that was active before, named by reference
    forward = admin.post(
        "/api/v1/rollbacks/",
        {"artifact": prompt.path, "target": "qualify-lead@1.1.0", "reason": "fixed"},
        format="json",
    )
    assert forward.status_code == 201
    assert forward.json()["to"]["version"] == "1.1.0"


@pytest.mark.parametrize(
    ("rollback", "status", "field"),
    [
        ({"artifact": "qualify-lead"}, 400, "artifact"),
        ({"artifact": "prompt/acme/qualify-lead/1.0.0"}, 400, "artifact"),
        ({"artifact": "Prompt/acme/x"}, 400, "artifact"),
        ({"artifact": "prompt/acme/nope"}, 404, "artifact"),
        ({"artifact": "prompt/globex/qualify-lead"}, 404, "artifact"),
        ({"artifact": ["prompt/acme/qualify-lead"]}, 400, "artifact"),
        ({"target": "nope@1.0.0"}, 400, "target"),
        ({"target": "qualify-lead@1.1.0"}, 409, "target"),  # never active
        ({"target": "qualify-lead@1.0.0"}, 409, "target"),  # active now
        ({"target": "Qualify"}, 400, "target"),
        ({"reason": ""}, 400, "reason"),
        ({}, 409, "target"),  # nothing was active before the one promotion
    ],
)
def test_bad_rollbacks_name_the_field(
    open_change: Any,
    people: dict[str, Any],
    token_client: Any,
    prompt_v1: Any,
    prompt_v2: Any,
    globex: Any,
    rollback: dict[str, Any],
    status: int,
    field: str,
) -> None:
    change = in_review(open_change, people, prompt_v1)
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision="approve")
    services.change_promote(change=change, actor=people["admin"])
    body = {"artifact": "prompt/acme/qualify-lead", "reason": "errors", **rollback}
    resp = token_client(people["admin"]).post("/api/v1/rollbacks/", body, format="json")
    assert error(resp)[:2] == (status, field), resp.json()


# --- approval policy --------------------------------------------------------------------------


def test_policy_read_and_update(
    people: dict[str, Any], token_client: Any, make_user: Any, globex: Any
) -> None:
    path = "/api/v1/approval-policies/acme/"
    reviewer, admin = token_client(people["reviewer"]), token_client(people["admin"])
    body = reviewer.get(path).json()
    assert (body["tenant"], body["number"], body["scope"]) == ("acme", "built-in", "built-in")
    assert body["rules"] == DEFAULT_RULES
    assert body["history"] == []
    rules = {
        "rules": [{"name": "strict", "when": {}, "require": ["reviewer", "security_officer"]}],
        "postmortem_days": 3,
    }
    resp = reviewer.put(path, {"rules": rules, "reason": "tighter"}, format="json")
    assert error(resp) == (403, None, "permission_denied")
    for bad, field in (
        ({"rules": {"rules": [{"require": ["nobody"]}]}, "reason": "x"}, "rules"),
        ({"rules": "strict", "reason": "x"}, "rules"),
        ({"rules": {"rules": [], "postmortem_days": HUGE}, "reason": "x"}, "rules"),
        ({"rules": rules}, "reason"),
        ({"reason": "x"}, "rules"),
    ):
        text = json.dumps(bad).replace(json.dumps(HUGE), "1e400")
        resp = admin.put(path, text, content_type="application/json")
        assert error(resp)[:2] == (400, field), bad
    saved = admin.put(path, {"rules": rules, "reason": "tighter"}, format="json")
    assert saved.status_code == 200, saved.json()
    body = saved.json()
    assert (body["number"], body["scope"], body["reason"], body["created_by"]) == (
        1,
        "tenant",
        "tighter",
        "admin",
    )
    assert body["rules"]["rules"][0]["require"] == ["reviewer", "security_officer"]
    assert [(row["number"], row["reason"]) for row in body["history"]] == [(1, "tighter")]
    assert reviewer.get(path).json()["number"] == 1
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    assert error(stranger.get(path))[:2] == (404, "tenant")
    assert stranger.put(path, {"rules": rules, "reason": "x"}, format="json").status_code == 404


# --- schema -----------------------------------------------------------------------------------


def test_openapi_documents_the_change_request_endpoints(api: APIClient) -> None:
    schema = json.loads(
        api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    paths = schema["paths"]
    assert {
        "/api/v1/change-requests/",
        "/api/v1/change-requests/{reference}/",
        *(
            f"/api/v1/change-requests/{{reference}}/{action}/"
            for action in (
                "submit",
                "approve",
                "reject",
                "withdraw",
                "promote",
                "evidence",
                "rerun",
                "comment",
            )
        ),
        "/api/v1/approval-policies/{tenant}/",
        "/api/v1/rollbacks/",
    } <= set(paths)
    assert not any("{action}" in p for p in paths)
    components = schema["components"]["schemas"]
    approve = paths["/api/v1/change-requests/{reference}/approve/"]["post"]
    ref = approve["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "password" in components[ref.rsplit("/", 1)[1]]["properties"]
    assert {"requirements", "items", "checks", "timeline", "promotion_blockers"} <= set(
        components["ChangeDetail"]["properties"]
    )
    assert {"rules", "reason"} <= set(components["PolicyUpdate"]["properties"])
    assert {"from", "to", "change"} <= set(components["RollbackResult"]["properties"])
