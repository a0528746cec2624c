"""Review pages: my reviews, the change page and its sign-off, promotion, rollback, policy, record, notifications."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.test import Client

from governance.kernel.events.models import SigningKey
from governance.kernel.events.services import canonical
from governance.kernel.models import Notification
from registry.models import Artifact
from reviews import services
from reviews.choices import ChangeStatus, Decision
from reviews.models import Approval, ApprovalPolicy, ChangeRequest, CheckRun, EvaluationReport
from tests.reviews.test_services import evaluation, run_checks

pytestmark = pytest.mark.django_db
PASSWORD = "pw"  # make_user's default


def url(change: Any, action: str | None = None) -> str:
    base = f"/reviews/changes/{change.reference}/"
    if action == "record.json":
        return base + action
    return f"{base}{action}/" if action else base


def page(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def section(html: str, id_: str) -> str:
    """The HTML of the element with this id up to the next section, for assertions about one part."""
    start = html.index(f'id="{id_}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


def submitted(open_change: Any, people: dict[str, Any], version: Any) -> ChangeRequest:
    change = open_change(version)
    evaluation(change, version)
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    return change


def approved(open_change: Any, people: dict[str, Any], version: Any) -> ChangeRequest:
    change = submitted(open_change, people, version)
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision=Decision.APPROVE)
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    return change


def promoted(open_change: Any, people: dict[str, Any], version: Any) -> ChangeRequest:
    change = approved(open_change, people, version)
    return services.change_promote(change=change, actor=people["admin"])


@pytest.fixture
def live_v1(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> Any:
    """prompt_v1 promoted, so a change to v2 has a current version to compare with."""
    promoted(open_change, people, prompt_v1)
    return prompt_v1


def sent_back(client: Client, response: Any, change: Any, anchor: str) -> str:
    """A failed action answers a redirect to the change page at the form used (post/redirect/
    get); the page it leads to, once (a reload shows no error), is returned."""
    assert response.status_code == 302, response.status_code
    assert response["Location"] == f"{url(change)}#{anchor}"
    html = page(client, url(change))
    assert "data-error-summary" not in page(client, url(change))  # taken once
    return html


def signed_in(user: Any, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


# --- my reviews and the list ---------------------------------------------------------------


def test_my_reviews_lists_a_waiting_change_for_the_reviewer_not_the_author(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    html = page(signed_in(people["reviewer"]), "/reviews/")
    waiting = section(html, "waiting")
    assert change.reference in waiting
    assert "Reviewer" in waiting
    assert "Tune the prompt" in waiting
    assert "author" in waiting

    html = page(signed_in(people["author"]), "/reviews/")
    assert change.reference not in section(html, "waiting")
    mine = section(html, "mine")
    assert change.reference in mine
    assert "approval from Reviewer" in mine
    assert "approval from Administrator" in mine


def test_a_reviewer_who_decided_no_longer_waits(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    services.approval_decide(change=change, actor=people["reviewer"], decision=Decision.APPROVE)
    html = page(signed_in(people["reviewer"]), "/reviews/")
    assert change.reference not in section(html, "waiting")
    mine = section(page(signed_in(people["author"]), "/reviews/"), "mine")
    assert "approval from Administrator" in mine
    assert "approval from Reviewer" not in mine


def test_change_list_filters_by_status(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    draft = open_change(prompt_v1, title="Still a draft")
    review = services.change_submit(
        change=open_change(prompt_v1, title="Under review"), actor=people["author"]
    )
    client = signed_in(people["reviewer"])
    html = page(client, "/reviews/changes/")
    assert draft.reference in html
    assert review.reference in html
    html = page(client, "/reviews/changes/?status=in_review")
    rows = html.split('id="changes"')[1]
    assert review.reference in rows
    assert draft.reference not in rows


def test_change_list_query_count_does_not_grow_with_rows(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, django_assert_max_num_queries: Any
) -> None:
    for _ in range(2):
        open_change(prompt_v1)
    client = signed_in(people["reviewer"])
    client.get("/reviews/changes/")
    with django_assert_max_num_queries(20) as few:
        client.get("/reviews/changes/?status=draft")
    for _ in range(20):
        open_change(prompt_v1)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, "/reviews/changes/?status=draft")
    assert html.count('href="/reviews/changes/CR-') == 22


# --- opening and revising ------------------------------------------------------------------


def test_open_a_change_from_a_prefilled_form(people: dict[str, Any], prompt_v1: Any) -> None:
    client = signed_in(people["author"])
    html = page(client, "/reviews/changes/new/?propose=prompt/acme/qualify-lead/1.0.0")
    assert "prompt/acme/qualify-lead/1.0.0</textarea>" in html
    assert '<option value="acme" selected>' in html
    response = client.post(
        "/reviews/changes/new/",
        {
            "tenant": "acme",
            "title": "First prompt",
            "rollback_plan": "Deactivate it.",
            "proposed": "qualify-lead@1.0.0\n",
            "emergency": "on",
        },
    )
    change = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url(change)
    assert change.emergency
    assert change.status == ChangeStatus.DRAFT
    html = page(client, url(change))
    assert "EMERGENCY" in html
    assert "First prompt" in html


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"proposed": "no-such@9.9.9"}, "proposed", "No version"),
        ({"rollback_plan": "   "}, "rollback_plan", "required"),
        ({"golden_corpus": "no-corpus@1.0.0"}, "golden_corpus", "No version"),
    ],
)
def test_open_errors_show_on_the_field_and_nothing_is_written(
    people: dict[str, Any], prompt_v1: Any, data: dict[str, str], field: str, message: str
) -> None:
    form = {
        "tenant": "acme",
        "title": "t",
        "rollback_plan": "p",
        "proposed": "qualify-lead@1.0.0",
        **data,
    }
    response = signed_in(people["author"]).post("/reviews/changes/new/", form)
    assert response.status_code == 400
    html = response.content.decode()
    after_field = html.split(f'name="{field}"')[1].split("</p>")[0]
    assert message in after_field
    assert not ChangeRequest.objects.exists()


def test_revise_needs_a_reason_and_voids_approvals(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    services.approval_decide(change=change, actor=people["reviewer"], decision=Decision.APPROVE)
    client = signed_in(people["author"])
    html = page(client, url(change, "edit"))
    assert "qualify-lead/2" in html or "qualify-lead/1.1.0" in html
    form = {"title": "Tune it", "rollback_plan": "Back to 1.0.0", "proposed": "qualify-lead@1.1.0"}
    response = client.post(url(change, "edit"), form)
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    response = client.post(url(change, "edit"), {**form, "reason": "clearer title"})
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.revision == 2
    assert change.status == ChangeStatus.DRAFT
    assert change.title == "Tune it"
    assert not Approval.objects.filter(change=change, voided_at__isnull=True).exists()
    assert signed_in(people["reviewer"]).get(url(change, "edit")).status_code == 403


# --- the change page -----------------------------------------------------------------------


def test_change_page_shows_diff_checks_and_missing_approvals(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    html = page(signed_in(people["reviewer"]), url(change))
    items = section(html, "items-heading")
    assert live_v1.manifest_sha256 in items
    assert prompt_v2.manifest_sha256 in items
    assert 'class="diff diff-split"' in items
    assert "<ins>" in items
    assert "politely" in items
    checks = section(html, "checks")
    assert "Pack verification" in checks
    assert "check-passed" in checks
    assert "<details><summary>Log</summary>" in checks
    assert "verify" in checks
    assert "Re-run" in checks
    approvals = section(html, "approvals")
    assert approvals.count("missing") == 2
    assert "Reviewer" in approvals
    assert "Administrator" in approvals
    assert 'id="decide-form"' in approvals
    assert 'name="password"' in approvals
    assert "accuracy" in section(html, "evidence")
    assert "0.91" in section(html, "evidence")
    timeline = section(html, "timeline")
    assert 'href="/governance/events/' in timeline
    assert "submitted" in timeline.lower()
    assert "missing approval from Reviewer" in section(html, "promotion")


def test_the_author_sees_author_actions_and_no_sign_off_form(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    draft = open_change(prompt_v2)
    html = page(signed_in(people["author"]), url(draft))
    assert "Submit for review" in html
    assert "Revise" in html
    assert "Withdraw" in html
    change = submitted(open_change, people, prompt_v2)
    html = page(signed_in(people["author"]), url(change))
    assert 'id="decide-form"' not in html
    assert "Submit for review" not in html
    assert "Withdraw" in html
    # Someone holding no required role sees no form either.
    assert 'id="decide-form"' not in page(signed_in(people["privacy"]), url(change))


def test_a_first_version_shows_its_content(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    html = page(signed_in(people["author"]), url(change))
    items = section(html, "items-heading")
    assert "first version" in items
    assert 'class="highlight"' in items
    assert "Qualify" in items


def test_change_page_query_count_does_not_grow_with_approvals_checks_and_events(
    open_change: Any,
    people: dict[str, Any],
    make_user: Any,
    live_v1: Any,
    prompt_v2: Any,
    django_assert_max_num_queries: Any,
) -> None:
    change = submitted(open_change, people, prompt_v2)
    made = iter(range(100))

    def grow(times: int) -> None:
        for _ in range(times):
            i = next(made)
            services.comment_add(change=change, actor=people["author"], body=f"note {i}")
            # Evidence rows (as rows: attaching would void the approvals below), which the
            # stage criteria the promotion section lists read.
            EvaluationReport.objects.create(
                version=prompt_v2,
                change=change,
                metrics={"accuracy": 0.9, "safety": 0.97},
                seed=str(i),
                rng="pcg64",
                test_run_ids=[f"ci-{i}"],
                sha256=f"{i:064d}",
            )
            services.check_rerun(change=change, kind=None, actor=people["author"])
            run_checks(change)
            # Decisions on an earlier revision stay on the page as "not counting".
            Approval.objects.create(
                change=change,
                approver=make_user(f"old{i}", acme=["member", "reviewer"]),
                requirement="reviewer",
                decision="approve",
                revision=0,
                binding_sha256="0" * 64,
            )

    grow(2)
    client = signed_in(people["reviewer"])
    client.get(url(change))
    # The stage criteria of the proposed version (issue 17) add a constant 8; whether the
    # reviewer's slot needs a passkey (the policy in force) and holds one (issue 18), 3.
    with django_assert_max_num_queries(56) as few:
        client.get(url(change))
    grow(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        html = page(client, url(change))
    assert html.count("given for an earlier revision") == 10
    assert EvaluationReport.objects.filter(change=change).count() > 10
    assert 'data-criterion="risk_note"' in html  # advisory notes, read from the evidence
    assert html.count("note ") >= 10
    assert CheckRun.objects.filter(change=change).count() > 30


@pytest.mark.usefixtures("people", "globex")
def test_other_tenants_changes_are_not_found(
    open_change: Any, make_user: Any, prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    stranger = signed_in(make_user("stranger", globex=["member", "administrator"]))
    assert stranger.get(url(change)).status_code == 404
    assert stranger.get(url(change, "record.json")).status_code == 404
    assert stranger.post(url(change, "approve"), {"password": PASSWORD}).status_code == 404
    assert stranger.get("/reviews/policy/acme/").status_code == 404
    assert change.reference not in page(stranger, "/reviews/changes/")


# --- sign-off ------------------------------------------------------------------------------


def test_approve_asks_for_the_password_once_per_few_minutes(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    first = submitted(open_change, people, prompt_v2)
    second = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"])

    response = client.post(url(first, "approve"), {"comment": "fine"})
    html = sent_back(client, response, first, "decide-form")
    assert "Confirm your password to sign off." in section(html, "decide-form")
    assert not Approval.objects.filter(change=first).exists()

    response = client.post(url(first, "approve"), {"comment": "fine", "password": "wrong"})
    assert "wrong" not in str(dict(client.session))  # the password is never kept
    html = sent_back(client, response, first, "decide-form")
    form = section(html, "decide-form")
    summary = form.split("data-error-summary")[1].split("</div>")[0]
    assert "That is not your password" in summary  # at the top of the form, linked to the field
    assert 'href="#id_password"' in summary
    field = re.search(r'<input[^>]*name="password"[^>]*>', form).group(0)
    assert 'aria-invalid="true"' in field
    assert 'aria-describedby="id_password_helptext id_password_error"' in field
    assert "That is not your password" in form.split('id="id_password_error"')[1]
    assert "fine</textarea>" in form  # the comment is kept; the password is not
    assert 'value="wrong"' not in form
    assert not Approval.objects.filter(change=first).exists()

    response = client.post(url(first, "approve"), {"comment": "fine", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == url(first)
    approval = Approval.objects.get(change=first)
    assert approval.approver == people["reviewer"]
    assert approval.requirement == "reviewer"
    html = page(client, url(first))
    slot = html.split('data-requirement="reviewer"')[1].split("</tr>")[0]
    assert "reviewer" in slot
    assert "fine" in slot
    assert 'id="decide-form"' not in html

    # Within the confirmation window the next sign-off does not ask again.
    assert 'name="password"' not in section(page(client, url(second)), "approvals")
    response = client.post(url(second, "approve"), {"comment": ""})
    assert response.status_code == 302
    assert Approval.objects.filter(change=second, approver=people["reviewer"]).exists()


def test_reject_needs_a_comment(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"])
    response = client.post(url(change, "reject"), {"password": PASSWORD, "comment": " "})
    assert "Say why you reject" in section(
        sent_back(client, response, change, "decide-form"), "decide-form"
    )
    assert not Approval.objects.filter(change=change).exists()
    response = client.post(url(change, "reject"), {"comment": "Too risky"})
    assert response.status_code == 302
    change.refresh_from_db()
    assert change.status == ChangeStatus.REJECTED
    html = page(client, url(change))
    assert "Too risky" in section(html, "rejections")


def test_the_author_cannot_sign_off_from_the_page(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["author"])
    response = client.post(url(change, "approve"), {"password": PASSWORD})
    html = sent_back(client, response, change, "approvals")
    assert "author of a change cannot approve" in section(html, "approvals")
    assert not Approval.objects.filter(change=change).exists()


def test_posts_without_a_csrf_token_are_refused(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"], enforce_csrf_checks=True)
    html = page(client, url(change))
    assert html.count('name="csrfmiddlewaretoken"') >= 4
    response = client.post(url(change, "approve"), {"password": PASSWORD})
    assert response.status_code == 403
    assert not Approval.objects.filter(change=change).exists()


def test_confirm_page_remembers_the_password(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"])
    assert 'name="password"' in page(client, "/reviews/confirm/?next=" + url(change))
    response = client.post("/reviews/confirm/", {"password": "nope", "next": url(change)})
    assert response.status_code == 403
    assert "not your password" in response.content.decode()
    response = client.post("/reviews/confirm/", {"password": PASSWORD, "next": url(change)})
    assert response.status_code == 302
    assert response["Location"] == url(change)
    assert 'name="password"' not in section(page(client, url(change)), "approvals")
    response = client.post(
        "/reviews/confirm/", {"password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/reviews/"


# --- other actions -------------------------------------------------------------------------


def test_submit_comment_withdraw_from_the_page(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = open_change(prompt_v2)
    client = signed_in(people["author"])
    response = client.post(url(change, "submit"), follow=True)
    assert "Submitted" in response.content.decode()
    change.refresh_from_db()
    assert change.status == ChangeStatus.IN_REVIEW
    # Submitting twice is a conflict shown on the page, not a server error.
    response = client.post(url(change, "submit"))
    html = sent_back(client, response, change, "author-actions")
    assert "cannot become in review" in section(html, "author-actions")

    reviewer = signed_in(people["reviewer"])
    response = reviewer.post(url(change, "comment"), {"body": "Why now?"})
    assert response.status_code == 302
    assert "Why now?" in section(page(client, url(change)), "comments")
    response = reviewer.post(url(change, "comment"), {"body": ""})
    html = sent_back(reviewer, response, change, "comment-form")
    assert "This field is required" in section(html, "comments").split("data-error-summary")[1]
    assert change.comments.count() == 1

    assert client.post(url(change, "withdraw"), {"reason": "not needed"}).status_code == 302
    change.refresh_from_db()
    assert change.status == ChangeStatus.WITHDRAWN


def test_unknown_actions_and_gets_are_refused(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    client = signed_in(people["author"])
    assert client.post(url(change, "explode")).status_code == 404
    # A GET of an action (a reload) goes to the change page, never a blank 405.
    response = client.get(url(change, "submit"))
    assert response.status_code == 302
    assert response["Location"] == change.get_absolute_url()


def test_rerun_starts_a_new_attempt(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"])
    response = client.post(url(change, "rerun"), {"kind": "pack_verification"})
    assert response.status_code == 302
    assert CheckRun.objects.filter(change=change, kind="pack_verification", attempt=2).exists()
    response = client.post(url(change, "rerun"), {"kind": "rules_lint"})
    assert "not a required check" in section(
        sent_back(client, response, change, "checks"), "checks"
    )
    before = CheckRun.objects.filter(change=change).count()
    response = client.post(url(change, "rerun"), {"kind": "bogus"})
    assert "no such check" in section(sent_back(client, response, change, "checks"), "checks")
    assert CheckRun.objects.filter(change=change).count() == before


def test_an_administrator_promotes_from_the_page(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = approved(open_change, people, prompt_v2)
    assert "Promote</button>" not in page(signed_in(people["reviewer"]), url(change))
    reviewer = signed_in(people["reviewer"])
    response = reviewer.post(url(change, "promote"))
    html = sent_back(reviewer, response, change, "promotion")
    assert "Only an administrator can promote a change." in section(html, "promotion")
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    client = signed_in(people["admin"])
    html = page(client, url(change))
    assert 'id="blockers-none"' in html
    assert "Promote</button>" in html
    response = client.post(url(change, "promote"), {"password": PASSWORD}, follow=True)
    assert "its versions are now active" in response.content.decode()
    artifact = Artifact.objects.get(pk=prompt_v2.artifact_id)
    assert artifact.active_version == prompt_v2
    html = page(client, url(change))
    assert "Promoted" in html
    assert "Roll back</button>" in html


# --- rollback ------------------------------------------------------------------------------


def test_rollback_from_the_artifact_page(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v2)
    artifact_url = "/registry/prompt/acme/qualify-lead/"
    assert 'id="rollback"' not in page(signed_in(people["reviewer"]), artifact_url)
    client = signed_in(people["admin"])
    html = page(client, artifact_url)
    active = html.split('id="active-version"')[1].split("</dd>")[0]
    assert prompt_v2.version in active
    assert "Active" in active
    assert 'id="rollback"' in html
    assert f'<option value="{live_v1.version}">' in html
    rollback_url = "/reviews/rollback/prompt/acme/qualify-lead/"

    response = client.post(rollback_url, {"reason": ""})
    assert response.status_code == 400
    assert "Why roll back" in response.content.decode()
    response = signed_in(people["reviewer"]).post(rollback_url, {"reason": "bad answers"})
    assert response.status_code == 403
    assert Artifact.objects.get(pk=prompt_v2.artifact_id).active_version == prompt_v2

    response = client.post(
        rollback_url, {"reason": "bad answers", "target": live_v1.version, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == artifact_url
    assert Artifact.objects.get(pk=prompt_v2.artifact_id).active_version == live_v1
    html = page(client, artifact_url)
    assert "Rolled back" in html
    assert live_v1.version in html.split('id="active-version"')[1].split("</dd>")[0]


# --- policy --------------------------------------------------------------------------------


def test_policy_page_shows_rules_and_only_administrators_edit(people: dict[str, Any]) -> None:
    reviewer = signed_in(people["reviewer"])
    html = page(reviewer, "/reviews/policy/acme/")
    assert "Any change" in section(html, "policy-rules")
    assert "built-in" in html
    assert 'name="rules"' not in html
    response = reviewer.post("/reviews/policy/acme/", {"rules": "{}", "reason": "x"})
    assert response.status_code == 403
    assert not ApprovalPolicy.objects.exists()

    admin = signed_in(people["admin"])
    assert 'name="rules"' in page(admin, "/reviews/policy/acme/")
    response = admin.post("/reviews/policy/acme/", {"rules": "{not json", "reason": "x"})
    assert response.status_code == 400
    assert "Not valid JSON" in response.content.decode().split('name="rules"')[1].split("</p>")[0]
    response = admin.post("/reviews/policy/acme/", {"rules": '{"rules": []}', "reason": "x"})
    assert response.status_code == 400
    assert "non-empty list" in response.content.decode().split('name="rules"')[1].split("</p>")[0]
    assert not ApprovalPolicy.objects.exists()

    rules = {"rules": [{"name": "Two eyes", "require": ["reviewer"]}], "postmortem_days": 3}
    response = admin.post(
        "/reviews/policy/acme/", {"rules": json.dumps(rules), "reason": "smaller team"}
    )
    assert response.status_code == 302
    html = page(admin, "/reviews/policy/acme/")
    assert "Two eyes" in section(html, "policy-rules")
    history = section(html, "policy-history")
    assert "smaller team" in history
    assert "admin" in history


# --- record --------------------------------------------------------------------------------


def test_record_is_signed_and_verifies(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    change = approved(open_change, people, prompt_v2)
    response = signed_in(people["reviewer"]).get(url(change, "record.json"))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{change.reference}.json"'
    body = json.loads(response.content)
    record = body["record"]
    assert record["change_id"] == change.reference
    assert record["change_type"] == "prompt"
    assert record["proposed_versions"] == [prompt_v2.pinned]
    assert record["current_versions"] == [live_v1.pinned]
    assert record["artifacts"][0]["proposed"]["sha256"] == prompt_v2.manifest_sha256
    assert record["rollback_plan"] == change.rollback_plan
    assert {c["status"] for c in record["checks"]} == {"passed"}
    assert record["test_run_ids"] == ["ci-123"]
    signers = {(a["actor_id"], a["requirement"]) for a in record["approvals"] if a["counts"]}
    assert signers == {
        (str(people["reviewer"].pk), "reviewer"),
        (str(people["admin"].pk), "administrator"),
    }
    assert all(a["at"] for a in record["approvals"])

    digest = hashlib.sha256(canonical(record)).hexdigest()
    assert digest == body["sha256"]
    key = SigningKey.objects.get(kid=body["key_id"])
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key)).verify(
        bytes.fromhex(body["signature"]), bytes.fromhex(digest)
    )


# --- notifications -------------------------------------------------------------------------


def test_notifications_count_in_the_nav_and_mark_all_read(
    open_change: Any, people: dict[str, Any], live_v1: Any, prompt_v2: Any
) -> None:
    Notification.objects.all().delete()
    change = submitted(open_change, people, prompt_v2)
    client = signed_in(people["reviewer"])
    html = page(client, "/reviews/")
    unread = Notification.objects.filter(user=people["reviewer"], read_at__isnull=True).count()
    assert unread >= 1
    assert f'id="unread-count">{unread}<' in html
    html = page(client, "/reviews/notifications/")
    assert f"Review {change.reference} as reviewer: " in html
    assert "Mark all read" in html
    response = client.post("/reviews/notifications/")
    assert response.status_code == 302
    html = page(client, "/reviews/notifications/")
    assert 'id="unread-count"' not in html
    assert "Everything is read." in html
    assert not Notification.objects.filter(user=people["reviewer"], read_at__isnull=True).exists()


def test_a_password_confirmation_counts_only_for_the_person_who_gave_it(
    people: dict[str, Any], rf: Any
) -> None:
    from reviews import reauth

    request = rf.post("/")
    request.session = {}
    request.user = people["reviewer"]
    assert not reauth.recently_confirmed(request)
    assert not reauth.confirm(request, "wrong")
    assert reauth.confirm(request, PASSWORD)
    assert reauth.recently_confirmed(request)
    request.user = people["admin"]  # same session, someone else signed in
    assert not reauth.recently_confirmed(request)
    request.session[reauth.SESSION_KEY] = 1e12  # an older format is not trusted either
    assert not reauth.recently_confirmed(request)


def _waiting_rows(tenant: Any, author: Any, count: int, start: int) -> None:
    """``count`` changes in review that need a reviewer, as rows (the page only reads them)."""
    from django.utils import timezone

    ChangeRequest.objects.bulk_create(
        ChangeRequest(
            tenant=tenant,
            year=2026,
            number=start + i,
            change_type="prompt",
            title=f"Waiting {start + i}",
            rollback_plan="Roll back.",
            author=author,
            status=ChangeStatus.IN_REVIEW,
            requirements=["reviewer", "administrator"],
            submitted_at=timezone.now(),
        )
        for i in range(count)
    )


def test_my_reviews_shows_the_first_rows_says_how_many_and_links_to_the_list(
    people: dict[str, Any], acme: Any, django_assert_num_queries: Any
) -> None:
    from reviews.views import MY_REVIEWS_LIMIT

    client = signed_in(people["reviewer"])
    _waiting_rows(acme, people["author"], MY_REVIEWS_LIMIT + 5, start=9000)
    client.get("/reviews/")  # warm the session and the caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        html = page(client, "/reviews/")
    waiting = section(html, "waiting")
    assert waiting.count("<tr>") == MY_REVIEWS_LIMIT + 1  # the header row and the capped rows
    more = f"The {MY_REVIEWS_LIMIT} longest waiting of {MY_REVIEWS_LIMIT + 5}"
    assert more in waiting
    link = "/reviews/changes/?status=in_review&amp;waiting_for_me=true"
    assert f'href="{link}"' in waiting

    # Three times the rows: the same number of statements, the same number of rows shown.
    _waiting_rows(acme, people["author"], 2 * (MY_REVIEWS_LIMIT + 5), start=9500)
    with django_assert_num_queries(len(few.captured_queries)):
        html = page(client, "/reviews/")
    assert section(html, "waiting").count("<tr>") == MY_REVIEWS_LIMIT + 1
    assert f"of {3 * (MY_REVIEWS_LIMIT + 5)}" in section(html, "waiting")

    # The link lists every one of them, and only those.
    listed = page(client, link.replace("&amp;", "&") + "&page=4")
    assert "Page 4 of 4" in listed


def test_the_change_list_filters_what_waits_for_me(people: dict[str, Any], acme: Any) -> None:
    _waiting_rows(acme, people["author"], 3, start=9000)
    mine = ChangeRequest.objects.create(
        tenant=acme,
        year=2026,
        number=9100,
        change_type="prompt",
        title="My own",
        rollback_plan="r",
        author=people["reviewer"],
        status=ChangeStatus.IN_REVIEW,
        requirements=["reviewer"],
    )
    html = page(
        signed_in(people["reviewer"]), "/reviews/changes/?status=in_review&waiting_for_me=true"
    )
    assert html.count("Waiting 90") == 3
    assert mine.reference not in html
    assert "My own" not in html
