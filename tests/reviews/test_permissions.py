"""One rule per action on a change (reviews.permissions): the service refuses with the
predicate's reason, and the pages show the action to exactly those it allows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from governance.kernel.errors import Forbidden
from governance.kernel.events.models import Event
from governance.kernel.permissions import Decision as Verdict
from registry.models import Artifact
from reviews import permissions, services
from reviews.choices import ChangeStatus, Decision
from reviews.models import Approval, ApprovalPolicy, EvaluationReport
from tests.reviews.test_postmortem import emergency
from tests.reviews.test_views import approved, promoted, submitted

__all__ = ["emergency"]  # a fixture used here

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _refused(call: Any, reason: str) -> None:
    before = Event.objects.count()
    with pytest.raises(Forbidden) as refused:
        call()
    assert refused.value.message == reason
    assert Event.objects.count() == before  # nothing written


def test_promote(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> None:
    change = approved(open_change, people, prompt_v1)
    reason = "Only an administrator can promote a change."
    assert permissions.can_promote(people["reviewer"], change) == Verdict(False, reason)
    _refused(lambda: services.change_promote(change=change, actor=people["reviewer"]), reason)
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    url = change.get_absolute_url()
    promote = f'action="/reviews/changes/{change.reference}/promote/"'
    assert promote not in _client(people["reviewer"]).get(url).content.decode()
    assert promote in _client(people["admin"]).get(url).content.decode()
    forced = _client(people["reviewer"]).post(f"{url}promote/", follow=True)
    assert forced.redirect_chain == [(f"{url}#promotion", 302)]
    assert reason in forced.content.decode()
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED


def test_rollback(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    promoted(open_change, people, prompt_v1)
    change = promoted(open_change, people, prompt_v2)
    reason = "Only an administrator can roll back."
    _refused(
        lambda: services.rollback(artifact=prompt, actor=people["reviewer"], reason="bad"), reason
    )
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v2
    form = 'class="rollback-form"'
    reviewer, admin = _client(people["reviewer"]), _client(people["admin"])
    assert form not in reviewer.get(change.get_absolute_url()).content.decode()
    assert form in admin.get(change.get_absolute_url()).content.decode()
    assert 'id="rollback"' not in reviewer.get(prompt.get_absolute_url()).content.decode()
    forced = reviewer.post(
        f"/reviews/rollback/prompt/acme/{prompt.slug}/", {"reason": "bad", "target": ""}
    )
    assert forced.status_code == 403
    assert reason in forced.content.decode()
    prompt.refresh_from_db()
    assert prompt.active_version == prompt_v2


def test_sign_off_by_role(open_change: Any, people: dict[str, Any], prompt_v1: Any) -> None:
    change = submitted(open_change, people, prompt_v1)
    author_reason = "The author of a change cannot approve or reject it."
    _refused(
        lambda: services.approval_decide(
            change=change, actor=people["author"], decision=Decision.APPROVE
        ),
        author_reason,
    )
    outsider_reason = permissions.can_decide(people["privacy"], change).reason
    assert outsider_reason.endswith("you hold none of these roles here.")
    _refused(
        lambda: services.approval_decide(
            change=change, actor=people["privacy"], decision=Decision.APPROVE
        ),
        outsider_reason,
    )
    assert not Approval.objects.exists()
    assert permissions.can_decide(people["reviewer"], change)
    url = change.get_absolute_url()
    assert 'id="decide-form"' not in _client(people["author"]).get(url).content.decode()
    assert 'id="decide-form"' not in _client(people["privacy"]).get(url).content.decode()
    assert 'id="decide-form"' in _client(people["reviewer"]).get(url).content.decode()


def test_evidence_attach(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, globex: Any, make_user: Any
) -> None:
    change = open_change(prompt_v1)
    outsider = make_user("outsider", globex="member")
    reason = "Only members of the change's tenant can attach evidence."
    assert not permissions.can_attach_evidence(outsider, change)
    _refused(
        lambda: services.evidence_attach(
            change=change, actor=outsider, version=prompt_v1, metrics={"accuracy": 0.9}
        ),
        reason,
    )
    assert not EvaluationReport.objects.exists()
    assert permissions.can_attach_evidence(people["reviewer"], change)


def test_revise_and_withdraw_are_the_authors_or_an_administrators(
    open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1)
    reason = "Only the author or an administrator can withdraw this change."
    _refused(
        lambda: services.change_withdraw(change=change, actor=people["reviewer"], reason="x"),
        reason,
    )
    reviewer = _client(people["reviewer"])
    page = reviewer.get(change.get_absolute_url()).content.decode()
    assert f'href="/reviews/changes/{change.reference}/edit/"' not in page
    refused = reviewer.get(f"/reviews/changes/{change.reference}/edit/")
    assert refused.status_code == 403
    html = refused.content.decode()
    assert "Only the author or an administrator can revise this change." in html
    assert 'name="rollback_plan"' not in html  # no form they cannot send
    author = _client(people["author"])
    page = author.get(change.get_absolute_url()).content.decode()
    assert f'href="/reviews/changes/{change.reference}/edit/"' in page
    assert author.get(f"/reviews/changes/{change.reference}/edit/").status_code == 200
    change.refresh_from_db()
    assert change.status == ChangeStatus.DRAFT


def test_the_approval_policy(acme: Any, people: dict[str, Any]) -> None:
    reason = "Only an administrator can change the approval policy."
    _refused(
        lambda: services.approval_policy_update(
            tenant=acme, rules={"rules": []}, reason="x", actor=people["reviewer"]
        ),
        reason,
    )
    reviewer = _client(people["reviewer"])
    assert 'name="rules"' not in reviewer.get("/reviews/policy/acme/").content.decode()
    forced = reviewer.post("/reviews/policy/acme/", {"rules": "{}", "reason": "x"})
    assert forced.status_code == 403
    assert reason in forced.content.decode()
    assert not ApprovalPolicy.objects.filter(tenant=acme).exists()
    assert 'name="rules"' in _client(people["admin"]).get("/reviews/policy/acme/").content.decode()


def test_the_api_detail_says_what_the_caller_may_do(
    open_change: Any, people: dict[str, Any], prompt_v1: Any, token_client: Any
) -> None:
    """The serializer asks the same predicates as the page and the service."""
    change = approved(open_change, people, prompt_v1)

    def allowed(who: str) -> dict[str, bool]:
        answer = token_client(people[who]).get(f"/api/v1/change-requests/{change.reference}/")
        assert answer.status_code == 200
        return answer.json()["allowed"]

    admin, reviewer, author = allowed("admin"), allowed("reviewer"), allowed("author")
    assert admin["promote"] is True
    assert reviewer["promote"] is False
    assert author["withdraw"] is True
    assert reviewer["withdraw"] is False
    assert author["sign_off"] is False
    assert allowed("security")["sign_off"] is False
    assert reviewer["sign_off"] is True  # holds a required role on an open change
    assert set(admin) == {
        "submit",
        "revise",
        "withdraw",
        "sign_off",
        "rerun_checks",
        "attach_evidence",
        "complete_checklist",
        "promote",
    }
    refused = token_client(people["reviewer"]).post(
        f"/api/v1/change-requests/{change.reference}/promote/"
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "Only an administrator can promote a change."


def test_recording_the_postmortem(people: dict[str, Any], emergency: Any) -> None:
    change = emergency
    reason = "Only the author, an owner, an administrator or a security officer can record it."
    assert permissions.can_record_postmortem(people["privacy"], change) == Verdict(False, reason)
    _refused(
        lambda: services.postmortem_record(change=change, actor=people["privacy"], summary="x"),
        reason,
    )
    privacy = _client(people["privacy"])
    assert "Record the post-mortem" not in privacy.get(change.get_absolute_url()).content.decode()
    forced = privacy.post(
        f"{change.get_absolute_url()}postmortem/", {"summary": "x", "url": ""}, follow=True
    )
    assert forced.redirect_chain == [(f"{change.get_absolute_url()}#postmortem-form", 302)]
    assert reason in forced.content.decode()
    assert (
        "Record the post-mortem"
        in _client(people["author"]).get(change.get_absolute_url()).content.decode()
    )
    change.refresh_from_db()
    assert change.postmortem_done_at is None
