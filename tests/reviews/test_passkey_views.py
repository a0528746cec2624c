"""Passkey sign-off from the change page: the challenge endpoint, the decide form, the approvals
panel, and the refusals (replay, no passkey, a password where a passkey is required)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews import services
from reviews.models import Approval
from reviews.policy import DEFAULT_RULES
from tests.factories import run_pending_checks
from tests.passkey_authenticator import SoftAuthenticator
from tests.reviews.test_passkeys import in_review, passkey_policy, register
from tests.reviews.test_views import page, section, sent_back, url

pytestmark = pytest.mark.django_db
__all__ = ["in_review", "passkey_policy"]  # fixtures, imported for use here


def browser(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf(client: Client, change: Any) -> str:
    client.get(url(change))
    return str(client.cookies["csrftoken"].value)


def challenge(client: Client, change: Any, **body: Any) -> Any:
    body.setdefault("decision", "approve")
    return client.post(
        url(change, "passkey-challenge"),
        data=json.dumps(body),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf(client, change),
    )


def decide(
    client: Client, change: Any, answer: dict[str, Any], decision: str = "approve", **form: Any
) -> Any:
    return client.post(
        url(change, decision),
        {
            "csrfmiddlewaretoken": csrf(client, change),
            "passkey_challenge": answer["challenge_id"],
            "passkey_credential": json.dumps(answer["credential"]),
            **form,
        },
    )


def signed(client: Client, change: Any, device: SoftAuthenticator, **body: Any) -> dict[str, Any]:
    """The page's script: ask for the challenge, let the authenticator sign it."""
    got = challenge(client, change, **body)
    assert got.status_code == 200, got.content
    data = got.json()
    return {"challenge_id": data["challenge_id"], "credential": device.sign(data["options"])}


def test_challenge_names_the_statement_to_sign(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    register(people["reviewer"], SoftAuthenticator())
    got = challenge(browser(people["reviewer"]), in_review, comment="Reads well.")
    assert got.status_code == 200, got.content
    data = got.json()
    statement = json.loads(data["statement"])
    assert statement["change"] == in_review.reference
    assert statement["revision"] == in_review.revision
    assert statement["binding_sha256"] == in_review.binding_sha256
    assert statement["decision"] == "approve"
    assert statement["requirement"] == "reviewer"
    assert statement["origin"] == "http://testserver"
    assert data["options"]["rpId"] == "testserver"
    assert data["options"]["allowCredentials"][0]["id"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"decision": "maybe"}, "decision", 400),
        ({"requirement": 5}, "requirement", 400),
        ({"comment": ["x"]}, "comment", 400),
        ({"comment": "x" * 5001}, "comment", 400),
    ],
)
def test_challenge_refusals_name_the_field(
    in_review: Any, people: dict[str, Any], body: dict[str, Any], field: str, status: int
) -> None:
    register(people["reviewer"], SoftAuthenticator())
    got = challenge(browser(people["reviewer"]), in_review, **body)
    assert got.status_code == status
    assert got.json()["field"] == field


def test_challenge_without_a_passkey_says_register_one(
    in_review: Any, people: dict[str, Any]
) -> None:
    got = challenge(browser(people["reviewer"]), in_review)
    assert got.status_code == 409
    assert got.json()["field"] == "passkey"
    assert "account page" in got.json()["detail"]


def test_challenge_needs_csrf_and_a_visible_change(in_review: Any, people: dict[str, Any]) -> None:
    register(people["reviewer"], SoftAuthenticator())
    client = browser(people["reviewer"])
    no_token = client.post(
        url(in_review, "passkey-challenge"), data="{}", content_type="application/json"
    )
    assert no_token.status_code == 403
    csrf(client, in_review)
    missing = client.post(
        "/reviews/changes/CR-99999/passkey-challenge/",
        data=json.dumps({"decision": "approve"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert missing.status_code == 404
    assert "detail" in missing.json()


def test_the_author_gets_no_challenge(in_review: Any, people: dict[str, Any]) -> None:
    register(people["author"], SoftAuthenticator())
    got = challenge(browser(people["author"]), in_review)
    assert got.status_code == 403
    assert got.json()["detail"]


def test_where_required_the_form_offers_the_passkey_and_no_password(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    register(people["reviewer"], SoftAuthenticator())
    client = browser(people["reviewer"])
    form = section(page(client, url(in_review)), "decide-form")
    assert 'name="password"' not in form
    assert "Approve with passkey" in form
    assert "Reject with passkey" in form
    assert '<button type="submit">Approve</button>' not in form
    assert 'name="passkey_challenge"' in form
    assert 'name="passkey_credential"' in form
    assert "What your passkey signs" in form
    assert in_review.binding_sha256 in form
    assert "<dt>Role</dt><dd>Reviewer</dd>" in form
    assert f'data-challenge-url="{url(in_review, "passkey-challenge")}"' in form
    html = page(client, url(in_review))
    assert 'src="/static/js/passkeys.js"' in html
    assert "data-passkey-required" in section(html, "approvals")


def test_where_required_without_a_passkey_the_form_says_register_one(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    form = section(page(browser(people["reviewer"]), url(in_review)), "decide-form")
    assert "register a passkey on your account page" in form
    assert 'href="/account/tokens/#passkeys"' in form
    assert 'name="password"' not in form
    assert "Approve with passkey" not in form


def test_not_required_a_passkey_holder_may_choose_either(
    in_review: Any, people: dict[str, Any]
) -> None:
    register(people["reviewer"], SoftAuthenticator())
    form = section(page(browser(people["reviewer"]), url(in_review)), "decide-form")
    assert 'name="password"' in form
    assert '<button type="submit">Approve</button>' in form
    assert "Approve with passkey" in form
    assert "register a passkey" not in form
    nobody = section(page(browser(people["admin"]), url(in_review)), "decide-form")
    assert "Approve with passkey" not in nobody


def test_sign_off_with_a_passkey_is_recorded_and_marked(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device, name="Work laptop")
    client = browser(people["reviewer"])
    answer = signed(client, in_review, device, comment="Reads well.")
    response = decide(client, in_review, answer, comment="Reads well.")
    assert response.status_code == 302, response.content
    approval = Approval.objects.get(change=in_review)
    assert approval.passkey == passkey
    assert approval.requirement == "reviewer"
    assert approval.comment == "Reads well."
    event = Event.objects.get(kind=EventKind.APPROVAL_GRANTED)
    assert event.payload["passkey"]["statement"] == approval.passkey_statement

    html = page(client, url(in_review))
    assert "Approved" in html
    assert "with your passkey &#x27;Work laptop&#x27;" in html
    row = section(html, "approvals")
    row = row[row.index('data-requirement="reviewer"') :]
    row = row[: row.index("</tr>")]
    assert "Signed with passkey 'Work laptop'" in row
    assert "the server verified the assertion" in row
    assert approval.passkey_challenge[:12] in row
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None
    assert html.count("data-passkey-event") == 1  # the timeline's approval.granted


def test_reject_with_a_passkey(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    client = browser(people["reviewer"])
    answer = signed(client, in_review, device, decision="reject", comment="Too risky.")
    decide(client, in_review, answer, decision="reject", comment="Too risky.")
    approval = Approval.objects.get(change=in_review)
    assert approval.decision == "reject"
    assert approval.passkey is not None
    rejections = section(page(client, url(in_review)), "approvals")
    assert "Signed with passkey" in rejections[rejections.index('id="rejections"') :]


def test_an_answer_for_another_decision_or_comment_is_refused(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    client = browser(people["reviewer"])
    answer = signed(client, in_review, device, comment="Fine.")
    response = decide(client, in_review, answer, comment="Something else.")
    html = sent_back(client, response, in_review, "decide-form")
    assert "does not sign this decision" in section(html, "decide-form")
    assert 'value="{' not in section(html, "decide-form")  # the answer is not kept
    assert not Approval.objects.filter(change=in_review).exists()


def test_a_replayed_answer_is_refused(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    client = browser(people["reviewer"])
    answer = signed(client, in_review, device)
    assert decide(client, in_review, answer).status_code == 302
    changed = services.change_revise(
        change=in_review, actor=people["author"], reason="Tweak", title="Tune it again"
    )
    changed = services.change_submit(change=changed, actor=people["author"])

    run_pending_checks(changed)
    response = decide(client, changed, answer)
    html = sent_back(client, response, changed, "decide-form")
    assert "already answered" in section(html, "decide-form")
    assert not changed.approvals.filter(voided_at__isnull=True).exists()


def test_a_password_where_a_passkey_is_required_is_refused(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    client = browser(people["reviewer"])
    response = client.post(
        url(in_review, "approve"),
        {"csrfmiddlewaretoken": csrf(client, in_review), "password": "pw", "comment": "ok"},
    )
    html = sent_back(client, response, in_review, "decide-form")
    form = section(html, "decide-form")
    assert "needs your passkey" in form
    assert "register a passkey on your account page" in form
    assert not Approval.objects.filter(change=in_review).exists()


def test_a_mangled_answer_is_refused_not_a_500(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    register(people["reviewer"], device)
    client = browser(people["reviewer"])
    for credential in ("not json", "[1]", json.dumps({"id": "x"}), ""):
        answer = signed(client, in_review, device)
        response = client.post(
            url(in_review, "approve"),
            {
                "csrfmiddlewaretoken": csrf(client, in_review),
                "passkey_challenge": answer["challenge_id"],
                "passkey_credential": credential,
            },
        )
        html = sent_back(client, response, in_review, "decide-form")
        assert "Not done" in section(html, "decide-form")
    assert not Approval.objects.filter(change=in_review).exists()


def test_a_revoked_passkey_approval_is_said_not_to_count(
    passkey_policy: None, in_review: Any, people: dict[str, Any]
) -> None:
    device = SoftAuthenticator()
    passkey = register(people["reviewer"], device, name="Old phone")
    client = browser(people["reviewer"])
    decide(client, in_review, signed(client, in_review, device))
    accounts.passkey_revoke(passkey=passkey, actor=people["reviewer"], reason="Lost")
    approvals = section(page(client, url(in_review)), "approvals")
    not_counting = approvals[approvals.index('id="not-counting"') :]
    assert "signed with a passkey revoked on" in not_counting
    assert "Signed with passkey 'Old phone'" in not_counting


def test_a_password_approval_in_a_passkey_slot_is_said_not_to_count(
    in_review: Any, people: dict[str, Any], acme: Any
) -> None:
    # Approved with the password before the policy asked for passkeys, in a change whose
    # submission fixed the passkey slots (as a change submitted under the new policy would).
    services.approval_decide(change=in_review, actor=people["reviewer"], decision="approve")
    in_review.passkey_requirements = ["reviewer"]
    in_review.save(update_fields=["passkey_requirements"])
    approvals = section(page(browser(people["admin"]), url(in_review)), "approvals")
    assert "without the approver&#x27;s passkey" in approvals


def test_change_page_queries_do_not_grow_with_passkey_approvals(
    in_review: Any, people: dict[str, Any], make_user: Any, django_assert_max_num_queries: Any
) -> None:
    made = iter(range(100))

    def grow(times: int) -> None:
        for _ in range(times):
            i = next(made)
            user = make_user(f"pk{i}", acme=["member", "reviewer"])
            passkey = register(user, SoftAuthenticator(), name=f"key {i}")
            Approval.objects.create(
                change=in_review,
                approver=user,
                requirement="reviewer",
                decision="approve",
                revision=0,
                binding_sha256="0" * 64,
                passkey=passkey,
                passkey_statement="{}",
                passkey_challenge=f"{i:064d}",
            )

    grow(2)
    client = browser(people["admin"])
    client.get(url(in_review))
    with django_assert_max_num_queries(200) as few:
        client.get(url(in_review))
    grow(6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, url(in_review))
    assert html.count("Signed with passkey") == 8


def test_mixed_slots_offer_the_password_and_name_the_passkey_slot(
    in_review: Any, people: dict[str, Any], acme: Any
) -> None:
    # "multi" holds reviewer and administrator; only the reviewer's sign-off needs a passkey.
    services.approval_policy_update(
        tenant=acme,
        actor=None,
        rules={**DEFAULT_RULES, "passkey_required": ["reviewer"]},
        reason="Reviewers sign with passkeys.",
    )
    register(people["multi"], SoftAuthenticator())
    form = section(page(browser(people["multi"]), url(in_review)), "decide-form")
    assert 'name="password"' in form
    assert '<button type="submit">Approve</button>' in form
    assert "Approve with passkey" in form
    policy_note = form[form.index('id="passkey-policy"') :]
    assert "as Reviewer with your passkey" in policy_note[: policy_note.index("</p>")]
    assert "the one chosen above" in form  # two roles: the statement names the chosen one
