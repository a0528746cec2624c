"""Passkey sign-off over the API: register, require, challenge, approve with the assertion, see
it in the detail and the signed record; and every refusal a 4xx naming the field."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import PasskeyChallenge
from governance.kernel import passkey_proof
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import record, services
from reviews.choices import ChangeStatus
from reviews.models import Approval
from reviews.policy import DEFAULT_RULES
from tests.factories import EVIDENCE_METRICS, run_pending_checks
from tests.passkey_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db
BASE = "/api/v1/change-requests/"
PASSWORD = "pw"  # make_user's default


def url(change: Any, action: str = "") -> str:
    return f"{BASE}{change.reference}/" + (f"{action}/" if action else "")


def error(resp: Any) -> tuple[int, str | None, str]:
    body = resp.json()["error"]
    return resp.status_code, body["field"], body["code"]


def register(client: APIClient, device: SoftAuthenticator, name: str = "Laptop") -> Any:
    begun = client.post("/api/v1/passkeys/registration-options/", format="json")
    assert begun.status_code == 200, begun.json()
    resp = client.post(
        "/api/v1/passkeys/",
        {
            "challenge_id": begun.json()["challenge_id"],
            "credential": device.register(begun.json()["options"]),
            "name": name,
            "password": PASSWORD,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    return resp.json()


def challenge(client: APIClient, change: Any, **body: Any) -> Any:
    resp = client.post(
        url(change, "passkey-challenge"), {"decision": "approve", **body}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    return resp.json()


def answer(device: SoftAuthenticator, issued: dict[str, Any]) -> dict[str, Any]:
    return {"challenge_id": issued["challenge_id"], "credential": device.sign(issued["options"])}


@pytest.fixture
def passkey_policy(token_client: Any, people: dict[str, Any]) -> dict[str, Any]:
    """acme's reviewers sign off with passkeys (set over the API)."""
    resp = token_client(people["admin"]).put(
        "/api/v1/approval-policies/acme/",
        {
            "rules": {**DEFAULT_RULES, "passkey_required": ["reviewer"]},
            "reason": "Reviewers sign with passkeys.",
        },
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    return dict(resp.json())


@pytest.fixture
def submit(open_change: Any, people: dict[str, Any]) -> Any:
    def make(version: Any) -> Any:
        change = open_change(version)
        services.evidence_attach(
            change=change, actor=None, version=version, metrics=EVIDENCE_METRICS, seed="42"
        )
        change = services.change_submit(change=change, actor=people["author"])
        run_pending_checks(change)
        return change

    return make


@pytest.fixture
def in_review(passkey_policy: Any, submit: Any, prompt_v2: Any) -> Any:
    return submit(prompt_v2)


@pytest.fixture
def reviewer(token_client: Any, people: dict[str, Any]) -> APIClient:
    client: APIClient = token_client(people["reviewer"])
    return client


def test_policy_round_trips_passkey_required(passkey_policy: dict[str, Any]) -> None:
    assert passkey_policy["rules"]["passkey_required"] == ["reviewer"]
    assert passkey_policy["history"][0]["rules"]["passkey_required"] == ["reviewer"]


@pytest.mark.parametrize(
    "value", [["king"], "reviewer", [1], {"reviewer": True}], ids=["role", "str", "int", "obj"]
)
def test_policy_refuses_a_bad_passkey_required(
    token_client: Any, people: dict[str, Any], value: Any
) -> None:
    resp = token_client(people["admin"]).put(
        "/api/v1/approval-policies/acme/",
        {"rules": {**DEFAULT_RULES, "passkey_required": value}, "reason": "x"},
        format="json",
    )
    assert error(resp)[:2] == (400, "rules")
    assert "passkey_required" in resp.json()["error"]["message"]


def test_full_flow_over_the_api(
    in_review: Any, reviewer: APIClient, people: dict[str, Any], token_client: Any
) -> None:
    device = SoftAuthenticator()
    passkey = register(reviewer, device)
    detail = reviewer.get(url(in_review)).json()
    assert detail["passkey_requirements"] == ["reviewer"]
    slots = {s["requirement"]: s for s in detail["requirements"]}
    assert slots["reviewer"]["passkey_required"] is True
    assert slots["administrator"]["passkey_required"] is False

    issued = challenge(reviewer, in_review, comment="Looks right.")
    statement = passkey_proof.parse_statement(issued["statement"])
    assert (issued["change"], issued["revision"], issued["requirement"]) == (
        in_review.reference,
        in_review.revision,
        "reviewer",
    )
    assert statement["binding_sha256"] == in_review.binding_sha256
    assert statement["change_uuid"] == str(in_review.pk)
    assert issued["statement_sha256"] == hashlib.sha256(issued["statement"].encode()).hexdigest()
    assert passkey_proof.b64url_decode(issued["options"]["challenge"]) == bytes.fromhex(
        issued["statement_sha256"]
    )
    assert [c["id"] for c in issued["options"]["allowCredentials"]] == [passkey["credential_id"]]
    assert (issued["rp_id"], issued["origin"]) == ("testserver", "http://testserver")

    # No password: the assertion is the deliberate act.
    resp = reviewer.post(
        url(in_review, "approve"),
        {"comment": "Looks right.", "passkey": answer(device, issued)},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    filled = {s["requirement"]: s["filled_by"] for s in body["requirements"]}["reviewer"]
    assert filled["approver"] == "reviewer"
    signed = filled["passkey"]
    assert signed["credential_id"] == passkey["credential_id"]
    assert signed["name"] == "Laptop"
    assert signed["statement"] == issued["statement"]
    assert signed["statement_sha256"] == issued["statement_sha256"]
    assert set(signed["assertion"]) == {
        "credential_id",
        "authenticator_data",
        "client_data_json",
        "signature",
        "user_handle",
    }
    assert [(a["approver"], a["counts"], a["why"]) for a in body["approvals"]] == [
        ("reviewer", True, None)
    ]
    assert body["approvals"][0]["passkey"] == signed
    # Anyone can check it with the public key the API (and the log) gives.
    passkey_proof.check_assertion(
        signed["statement"],
        passkey_proof.Assertion.from_json(signed["assertion"]),
        passkey["public_key_spki"],
    )
    event = Event.objects.get(kind=EventKind.APPROVAL_GRANTED)
    assert event.payload["passkey"]["assertion"] == signed["assertion"]
    assert reviewer.get(f"/api/v1/passkeys/{passkey['id']}/").json()["last_used_at"]

    # The administrator's slot needs no passkey: a password still does.
    admin = token_client(people["admin"])
    resp = admin.post(url(in_review, "approve"), {"password": PASSWORD}, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["status"] == ChangeStatus.APPROVED
    assert {s["requirement"]: s["filled_by"]["passkey"] for s in resp.json()["requirements"]} == {
        "reviewer": signed,
        "administrator": None,
    }


def test_password_only_is_refused_where_a_passkey_is_required(
    in_review: Any, reviewer: APIClient
) -> None:
    register(reviewer, SoftAuthenticator())
    for body in ({"password": PASSWORD}, {}, {"password": "wrong"}):
        resp = reviewer.post(url(in_review, "approve"), body, format="json")
        assert error(resp) == (403, "passkey", "passkey_required"), resp.json()
        assert "passkey-challenge" in resp.json()["error"]["message"]
    resp = reviewer.post(
        url(in_review, "reject"), {"password": PASSWORD, "comment": "No."}, format="json"
    )
    assert error(resp) == (403, "passkey", "passkey_required")
    assert not Approval.objects.exists()


def test_a_passkey_replaces_the_password_where_none_is_required(
    submit: Any, prompt_v2: Any, reviewer: APIClient
) -> None:
    change = submit(prompt_v2)  # the built-in policy: no passkey required
    device = SoftAuthenticator()
    register(reviewer, device)
    assert reviewer.post(url(change, "approve"), {}, format="json").status_code == 403
    resp = reviewer.post(
        url(change, "approve"),
        {"passkey": answer(device, challenge(reviewer, change))},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["approvals"][0]["passkey"]["name"] == "Laptop"


def test_reject_with_a_passkey(in_review: Any, reviewer: APIClient) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review, decision="reject", comment="Too risky.")
    resp = reviewer.post(
        url(in_review, "reject"),
        {"comment": "Too risky.", "passkey": answer(device, issued)},
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["status"] == ChangeStatus.REJECTED
    assert resp.json()["rejections"][0]["passkey"]["statement"] == issued["statement"]
    assert json.loads(issued["statement"])["decision"] == "reject"


def test_replay_on_another_change_is_refused(
    in_review: Any, submit: Any, prompt: Any, reviewer: APIClient
) -> None:
    from tests.factories import PINS, publish

    other = submit(publish(prompt, text="Qualify {{ customer }} briskly.", metadata=PINS))
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review)
    signed = answer(device, issued)
    resp = reviewer.post(url(other, "approve"), {"passkey": signed}, format="json")
    assert error(resp) == (409, "passkey", "passkey_replayed")
    assert not other.approvals.exists()
    # Refused, nothing was used up: the answer still signs the change it was made for.
    resp = reviewer.post(url(in_review, "approve"), {"passkey": signed}, format="json")
    assert resp.status_code == 200, resp.json()


def test_replay_on_another_revision_is_refused(
    in_review: Any, reviewer: APIClient, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    used = answer(device, challenge(reviewer, in_review))
    unused = answer(device, challenge(reviewer, in_review))
    assert (
        reviewer.post(url(in_review, "approve"), {"passkey": used}, format="json").status_code
        == 200
    )
    revised = services.change_revise(
        change=in_review, actor=people["author"], reason="Tweak", title="Tune it again"
    )
    revised = services.change_submit(change=revised, actor=people["author"])
    run_pending_checks(revised)
    resp = reviewer.post(url(revised, "approve"), {"passkey": used}, format="json")
    assert error(resp) == (409, "passkey.challenge_id", "conflict")
    assert "already answered" in resp.json()["error"]["message"]
    resp = reviewer.post(url(revised, "approve"), {"passkey": unused}, format="json")
    assert error(resp) == (409, "passkey", "passkey_statement_mismatch")
    assert "revision" in resp.json()["error"]["message"]
    assert not revised.approvals.filter(voided_at__isnull=True).exists()


def test_statement_mismatch_is_refused(in_review: Any, reviewer: APIClient) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review, comment="Fine.")
    resp = reviewer.post(
        url(in_review, "approve"),
        {"comment": "Fine, with a change.", "passkey": answer(device, issued)},
        format="json",
    )
    assert error(resp) == (409, "passkey", "passkey_statement_mismatch")
    assert "comment_sha256" in resp.json()["error"]["message"]
    # The signature over one statement does not answer another challenge.
    first = challenge(reviewer, in_review)
    second = challenge(reviewer, in_review)
    resp = reviewer.post(
        url(in_review, "approve"),
        {
            "passkey": {
                "challenge_id": first["challenge_id"],
                "credential": device.sign(second["options"]),
            }
        },
        format="json",
    )
    assert error(resp)[:2] == (403, "passkey")
    assert not Approval.objects.exists()


def test_revoked_key_signs_nothing_and_its_approval_stops_counting(
    in_review: Any, reviewer: APIClient
) -> None:
    device = SoftAuthenticator()
    passkey = register(reviewer, device)
    resp = reviewer.post(
        url(in_review, "approve"),
        {"passkey": answer(device, challenge(reviewer, in_review))},
        format="json",
    )
    assert resp.status_code == 200
    revoked = reviewer.post(
        f"/api/v1/passkeys/{passkey['id']}/revoke/",
        {"reason": "Lost laptop", "password": PASSWORD},
        format="json",
    )
    assert revoked.json()["state"] == "revoked"
    detail = reviewer.get(url(in_review)).json()
    assert [(a["counts"], a["passkey"]["credential_id"]) for a in detail["approvals"]] == [
        (False, passkey["credential_id"])
    ]
    assert "revoked" in detail["approvals"][0]["why"]
    assert detail["not_counting"][0]["why"] == detail["approvals"][0]["why"]
    assert {s["requirement"]: s["filled_by"] for s in detail["requirements"]}["reviewer"] is None
    # No active passkey left to ask a challenge for.
    resp = reviewer.post(
        url(in_review, "passkey-challenge"), {"decision": "approve"}, format="json"
    )
    assert error(resp)[:2] == (409, "passkey")


def test_an_answer_signed_before_revocation_is_refused(in_review: Any, reviewer: APIClient) -> None:
    device = SoftAuthenticator()
    passkey = register(reviewer, device)
    pending = answer(device, challenge(reviewer, in_review))
    reviewer.post(
        f"/api/v1/passkeys/{passkey['id']}/revoke/",
        {"reason": "Lost", "password": PASSWORD},
        format="json",
    )
    resp = reviewer.post(url(in_review, "approve"), {"passkey": pending}, format="json")
    assert error(resp) == (403, "passkey", "permission_denied")
    assert "revoked" in resp.json()["error"]["message"]
    assert not Approval.objects.exists()


@pytest.mark.parametrize(
    ("passkey", "status", "field"),
    [
        ("not an object", 400, "passkey"),
        ({"credential": {}}, 400, "passkey.challenge_id"),
        ({"challenge_id": "nope", "credential": {}}, 400, "passkey.challenge_id"),
        ({"challenge_id": "CHALLENGE"}, 400, "passkey.credential"),
        ({"challenge_id": "CHALLENGE", "credential": "{not json"}, 400, "passkey.credential"),
        ({"challenge_id": "CHALLENGE", "credential": [1, 2]}, 400, "passkey.credential"),
        ({"challenge_id": "CHALLENGE", "credential": {"id": "x"}}, 400, "passkey"),
        (
            {"challenge_id": "CHALLENGE", "credential": {"id": 5, "response": "x"}},
            400,
            "passkey",
        ),
        (
            {"challenge_id": "00000000-0000-0000-0000-000000000000", "credential": "SIGNED"},
            404,
            "passkey.challenge_id",
        ),
    ],
)
def test_bad_passkey_input_names_the_field(
    in_review: Any, reviewer: APIClient, passkey: Any, status: int, field: str
) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review)
    if isinstance(passkey, dict):
        passkey = dict(passkey)
        if passkey.get("challenge_id") == "CHALLENGE":
            passkey["challenge_id"] = issued["challenge_id"]
        if passkey.get("credential") == "SIGNED":
            passkey["credential"] = device.sign(issued["options"])
    resp = reviewer.post(url(in_review, "approve"), {"passkey": passkey}, format="json")
    assert error(resp)[:2] == (status, field), resp.json()
    assert not Approval.objects.exists()


def test_expired_and_foreign_challenges_are_refused(
    in_review: Any, reviewer: APIClient, token_client: Any, make_user: Any
) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review)
    PasskeyChallenge.objects.filter(pk=issued["challenge_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    resp = reviewer.post(
        url(in_review, "approve"), {"passkey": answer(device, issued)}, format="json"
    )
    assert error(resp) == (409, "passkey.challenge_id", "conflict")
    assert "expired" in resp.json()["error"]["message"]
    # Someone else's challenge reads as missing.
    other = make_user("other", acme=["member", "reviewer"])
    other_client = token_client(other)
    other_device = SoftAuthenticator()
    register(other_client, other_device)
    theirs = challenge(other_client, in_review)
    resp = reviewer.post(
        url(in_review, "approve"),
        {
            "passkey": {
                "challenge_id": theirs["challenge_id"],
                "credential": device.sign(theirs["options"]),
            }
        },
        format="json",
    )
    assert error(resp) == (404, "passkey.challenge_id", "not_found")
    assert not Approval.objects.exists()


def test_a_registration_challenge_does_not_sign_off(in_review: Any, reviewer: APIClient) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    begun = reviewer.post("/api/v1/passkeys/registration-options/", format="json").json()
    resp = reviewer.post(
        url(in_review, "approve"),
        {
            "passkey": {
                "challenge_id": begun["challenge_id"],
                "credential": device.sign(begun["options"]),
            }
        },
        format="json",
    )
    assert error(resp) == (404, "passkey.challenge_id", "not_found")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "decision"),
        ({"decision": "maybe"}, 400, "decision"),
        ({"decision": "approve", "requirement": "king"}, 400, "requirement"),
        ({"decision": "approve", "comment": "x" * 5001}, 400, "comment"),
        ({"decision": "reject"}, 400, "comment"),
        ({"decision": "reject", "comment": "   "}, 400, "comment"),
    ],
)
def test_bad_challenge_input_names_the_field(
    in_review: Any, reviewer: APIClient, body: dict[str, Any], status: int, field: str
) -> None:
    register(reviewer, SoftAuthenticator())
    resp = reviewer.post(url(in_review, "passkey-challenge"), body, format="json")
    assert error(resp)[:2] == (status, field), resp.json()
    assert not PasskeyChallenge.objects.filter(purpose="sign_off").exists()


def test_no_challenge_for_a_change_not_open_for_review(
    passkey_policy: Any, open_change: Any, prompt_v2: Any, reviewer: APIClient
) -> None:
    register(reviewer, SoftAuthenticator())
    draft = open_change(prompt_v2)
    resp = reviewer.post(url(draft, "passkey-challenge"), {"decision": "approve"}, format="json")
    assert error(resp) == (409, "status", "conflict")
    assert "draft" in resp.json()["error"]["message"]
    assert not PasskeyChallenge.objects.filter(purpose="sign_off").exists()


def test_challenge_refusals(
    in_review: Any, reviewer: APIClient, token_client: Any, people: dict[str, Any], globex: Any
) -> None:
    # No passkey yet.
    resp = reviewer.post(
        url(in_review, "passkey-challenge"), {"decision": "approve"}, format="json"
    )
    assert error(resp)[:2] == (409, "passkey")
    assert "register one" in resp.json()["error"]["message"]
    # The author never signs off their own change.
    author = token_client(people["author"])
    resp = author.post(url(in_review, "passkey-challenge"), {"decision": "approve"}, format="json")
    assert resp.status_code == 403
    # Unknown change: 404.
    resp = reviewer.post(
        f"{BASE}CR-1999-0001/passkey-challenge/", {"decision": "approve"}, format="json"
    )
    assert resp.status_code == 404


def test_the_signed_record_carries_the_assertion(in_review: Any, reviewer: APIClient) -> None:
    device = SoftAuthenticator()
    passkey = register(reviewer, device)
    issued = challenge(reviewer, in_review)
    reviewer.post(url(in_review, "approve"), {"passkey": answer(device, issued)}, format="json")
    signed = record.signed_record(in_review)
    assert signed["record"]["format"] == record.RECORD_FORMAT == 2
    (entry,) = signed["record"]["approvals"]
    assert entry["counts"] is True
    assert entry["why_not_counting"] is None
    assert entry["passkey"]["credential_id"] == passkey["credential_id"]
    assert entry["passkey"]["statement"] == issued["statement"]
    assert entry["passkey"]["statement_sha256"] == issued["statement_sha256"]
    passkey_proof.check_assertion(
        entry["passkey"]["statement"],
        passkey_proof.Assertion.from_json(entry["passkey"]["assertion"]),
        passkey["public_key_spki"],
    )
    reviewer.post(
        f"/api/v1/passkeys/{passkey['id']}/revoke/",
        {"reason": "Lost", "password": PASSWORD},
        format="json",
    )
    (entry,) = record.change_record(in_review)["approvals"]
    assert entry["counts"] is False
    assert "revoked" in entry["why_not_counting"]


def test_password_approval_in_the_record_has_no_passkey(
    submit: Any, prompt_v2: Any, reviewer: APIClient
) -> None:
    change = submit(prompt_v2)
    reviewer.post(url(change, "approve"), {"password": PASSWORD}, format="json")
    (entry,) = record.change_record(change)["approvals"]
    assert (entry["passkey"], entry["counts"], entry["why_not_counting"]) == (None, True, None)


def test_the_schema_documents_the_flow(
    api: APIClient, people: dict[str, Any], token_client: Any
) -> None:
    schema = token_client(people["reviewer"]).get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    step1 = paths["/api/v1/change-requests/{reference}/passkey-challenge/"]["post"]
    assert "navigator.credentials.get" in step1["description"]
    assert step1["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "SignOffChallengeIn"
    )
    approve = paths["/api/v1/change-requests/{reference}/approve/"]["post"]
    assert "passkey" in approve["description"]
    refused = approve["responses"]["403"]
    assert "passkey_required" in refused["description"]
    assert refused["content"]["application/json"]["schema"]["$ref"].endswith("/ApiError")
    assert {"400", "404", "409"} <= set(step1["responses"])
    decision = schema["components"]["schemas"]["Decision"]["properties"]
    assert "passkey" in decision
    passkey_schema = schema["components"]["schemas"]["PasskeySignature"]["properties"]
    assert set(passkey_schema) == {
        "credential_id",
        "name",
        "statement",
        "statement_sha256",
        "assertion",
    }
    for path in (
        "/api/v1/passkeys/",
        "/api/v1/passkeys/{id}/",
        "/api/v1/passkeys/registration-options/",
        "/api/v1/passkeys/{id}/revoke/",
    ):
        assert path in paths, path
    assert "navigator.credentials.create" in paths["/api/v1/passkeys/"]["post"]["description"]
    policy = schema["components"]["schemas"]["PolicyUpdate"]["properties"]["rules"]
    assert "passkey_required" in policy["description"]


def _mutations() -> list[tuple[str, Any]]:
    def drop(key: str) -> Any:
        return lambda c: {**c, "response": {k: v for k, v in c["response"].items() if k != key}}

    def put(key: str, value: Any) -> Any:
        return lambda c: {**c, "response": {**c["response"], key: value}}

    return [
        ("no clientDataJSON", drop("clientDataJSON")),
        ("no authenticatorData", drop("authenticatorData")),
        ("no signature", drop("signature")),
        ("short authenticatorData", put("authenticatorData", "AAAA")),
        ("authenticatorData not base64", put("authenticatorData", "!!**")),
        ("clientDataJSON not JSON", put("clientDataJSON", "bm90IGpzb24")),
        ("clientDataJSON a number", put("clientDataJSON", 5)),
        ("signature garbage", put("signature", "AAAA")),
        ("userHandle a list", put("userHandle", [1])),
        ("response a string", lambda c: {**c, "response": "x"}),
        ("rawId not base64", lambda c: {**c, "rawId": "!!", "id": "!!"}),
        ("unknown credential", lambda c: {**c, "rawId": "AAAA", "id": "AAAA"}),
        ("type wrong", lambda c: {**c, "type": "password"}),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_a_malformed_assertion_is_a_4xx_on_passkey(
    in_review: Any, reviewer: APIClient, what: str, mutate: Any
) -> None:
    device = SoftAuthenticator()
    register(reviewer, device)
    issued = challenge(reviewer, in_review)
    credential = mutate(device.sign(issued["options"]))
    resp = reviewer.post(
        url(in_review, "approve"),
        {"passkey": {"challenge_id": issued["challenge_id"], "credential": credential}},
        format="json",
    )
    status, field, _code = error(resp)
    assert status in (400, 403), (what, resp.json())
    assert field == "passkey", (what, resp.json())
    assert not Approval.objects.exists()
