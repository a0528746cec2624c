"""The safety switch on a change's page, and open changes that say why their "Current" moved.

A first promotion cannot be rolled back (nothing to go back to): its change page offers
the safety switch instead, to administrators, and the API's rollback names the
deactivation endpoint. An open change rebound to a new current version by another
change's promotion, rollback or deactivation records one event saying old and new.
"""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry.models import Artifact, Version
from reviews import selectors, services
from reviews.choices import ActivationKind, ChangeStatus
from reviews.models import Activation
from tests.reviews.test_promotion_rollback import active, pair, promote_many, signed_in
from tests.reviews.test_services import kinds, promote, submitted_prompt_change

__all__ = ["pair"]  # the fixture, used by name below


def page(client: Any, change: Any) -> str:
    return client.get(f"/reviews/changes/{change.reference}/").content.decode()


# --- the safety switch on the change page ----------------------------------------------------


def test_the_change_page_switches_off_a_first_promotion(
    open_change: Any,
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Any,
    token_client: Any,
    django_assert_max_num_queries: Any,
) -> None:
    change = promote(open_change, people, prompt_v1)
    admin, reviewer = signed_in(people["admin"]), signed_in(people["reviewer"])
    url = f"/reviews/changes/{change.reference}/switch-off/"
    html = page(admin, change)
    assert 'id="switch-off"' in html
    assert f'action="{url}"' in html
    assert "no earlier promoted version" in html
    assert 'id="switch-off"' not in page(reviewer, change)
    assert 'id="switch-off"' not in page(signed_in(people["author"]), change)
    # the switch costs the page no query of its own
    with django_assert_max_num_queries(60) as counted:
        page(admin, change)
    with django_assert_max_num_queries(len(counted.captured_queries)):
        page(reviewer, change)

    events = Event.objects.count()
    # Post/redirect/get: a refusal or a bad reason comes back on the change page.
    refused = reviewer.post(url, {"reason": "halt"}, follow=True)
    assert refused.redirect_chain == [(f"{change.get_absolute_url()}#switch-off", 302)]
    assert 'role="status"' in refused.content.decode()  # said above: no form for them
    response = admin.post(url, {"reason": "  "}, follow=True)
    assert response.redirect_chain == [(f"{change.get_absolute_url()}#switch-off", 302)]
    summary = response.content.decode().split("data-error-summary")[1].split("</div>")[0]
    assert "Why switch it off: This field is required." in summary
    assert active(prompt) == prompt_v1
    assert Event.objects.count() == events

    response = admin.post(url, {"reason": "leaks PII"})  # a deliberate act: the password
    assert response["Location"] == f"{change.get_absolute_url()}#switch-off"
    assert active(prompt) == prompt_v1
    response = admin.post(url, {"reason": "leaks PII", "password": "pw"})
    assert response["Location"] == change.get_absolute_url()
    assert active(prompt) is None
    change.refresh_from_db()
    assert change.status == ChangeStatus.ROLLED_BACK
    assert change.rolled_back_by == people["admin"]
    off = Activation.objects.get(change=change, kind=ActivationKind.DEACTIVATION)
    assert off.previous == prompt_v1
    assert off.reason == "leaks PII"
    assert change.rolled_back_at == off.created_at
    html = page(admin, change)
    status = html.split('id="change-status"')[1].split("</p>")[0]
    assert "Rolled back" in status
    assert "Promoted" not in status
    assert "by admin" in html.split('id="rolled-back"')[1].split("</dd>")[0]
    timeline = html.split('id="timeline"')[1]
    assert "Artifact deactivated (safety switch)</strong> by admin: leaks PII" in timeline
    assert 'id="switch-off"' not in html  # nothing left to switch off
    # nothing is served any more
    resp = token_client(people["admin"]).get("/api/v1/resolve/", {"ref": prompt.path})
    assert resp.status_code == 404
    # again: refused, nothing written
    events = Event.objects.count()
    again = admin.post(url, {"reason": "again"})
    assert again["Location"] == f"{change.get_absolute_url()}#switch-off"
    assert Event.objects.count() == events
    assert verify_database().ok


def test_a_change_that_replaced_a_version_is_rolled_back_not_switched_off(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    promote(open_change, people, prompt_v1)
    second = promote(open_change, people, prompt_v2)
    html = page(signed_in(people["admin"]), second)
    assert 'id="switch-off"' not in html
    assert 'class="rollback-form"' in html


def test_switching_off_a_change_with_several_first_versions(
    open_change: Any,
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Any,
    pair: dict[str, Any],
) -> None:
    change = promote_many(open_change, people, prompt_v1, pair["o1"])
    events = Event.objects.count()
    with pytest.raises(Forbidden):
        services.change_switch_off(change=change, actor=people["reviewer"], reason="halt")
    with pytest.raises(DomainError) as exc:
        services.change_switch_off(change=change, actor=people["admin"], reason="")
    assert exc.value.field == "reason"
    assert Event.objects.count() == events
    off = services.change_switch_off(change=change, actor=people["admin"], reason="halt")
    assert {a.artifact_id for a in off} == {prompt.pk, pair["other"].pk}
    assert active(prompt) is None
    assert active(pair["other"]) is None
    change.refresh_from_db()
    assert change.status == ChangeStatus.ROLLED_BACK
    assert kinds(change)[-2:] == [EventKind.ARTIFACT_DEACTIVATED] * 2
    with pytest.raises(Conflict):
        services.change_switch_off(change=change, actor=people["admin"], reason="again")


def test_api_rollback_of_a_first_promotion_names_the_deactivation_endpoint(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, token_client: Any
) -> None:
    promote(open_change, people, prompt_v1)
    client = token_client(people["admin"])
    resp = client.post(
        "/api/v1/rollbacks/", {"artifact": prompt.path, "reason": "bad"}, format="json"
    )
    assert resp.status_code == 409, resp.json()
    error = resp.json()["error"]
    assert "no earlier promoted version" in error["message"]
    assert "POST /api/v1/deactivations/" in error["message"]
    assert prompt.path in error["message"]
    assert error["field"] == "target"
    assert active(prompt) == prompt_v1
    # other refusals keep their own message
    resp = client.post(
        "/api/v1/rollbacks/",
        {"artifact": prompt.path, "reason": "bad", "target": prompt_v1.path},
        format="json",
    )
    assert resp.status_code == 409
    assert "deactivations" not in resp.json()["error"]["message"]


# --- open changes say why their "Current" moved ----------------------------------------------


def rebound(change: Any) -> list[dict[str, Any]]:
    return [
        e.payload for e in selectors.timeline(change) if e.kind == EventKind.CHANGE_REQUEST_REBOUND
    ]


def test_every_rebound_open_change_records_old_and_new_current(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    draft = open_change(prompt_v2)
    reviewed = submitted_prompt_change(open_change, people, prompt_v2)
    services.approval_decide(change=reviewed, actor=people["reviewer"], decision="approve")
    first = promote(open_change, people, prompt_v1)

    ref_v1 = {"path": prompt_v1.path, "sha256": prompt_v1.manifest_sha256}
    for change in (draft, reviewed):
        (event,) = rebound(change)
        assert event["items"] == [{"artifact": prompt.path, "from": None, "to": ref_v1}]
        assert event["reason"].startswith(f"{first.reference} was promoted")
    assert EventKind.APPROVAL_VOIDED not in kinds(draft)
    # the change in review: first why its "Current" moved, then its approval voided
    assert kinds(reviewed)[-2:] == [EventKind.CHANGE_REQUEST_REBOUND, EventKind.APPROVAL_VOIDED]
    # the promoted change itself is not rebound
    assert rebound(first) == []

    services.artifact_deactivate(artifact=prompt, actor=people["admin"], reason="halt")
    for change in (draft, reviewed):
        last = rebound(change)[-1]
        assert last["items"] == [{"artifact": prompt.path, "from": ref_v1, "to": None}]
        assert "was deactivated" in last["reason"]
    html = page(signed_in(people["author"]), draft)
    timeline = html.split('id="timeline"')[1]
    assert "Current version changed</strong> by admin:" in timeline
    assert f"{prompt.path}: current none → {prompt_v1.path}" in timeline
    assert f"{prompt.path}: current {prompt_v1.path} → none" in timeline
    assert verify_database().ok


def test_a_rollback_records_the_rebinding_too(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    promote(open_change, people, prompt_v1)
    promote(open_change, people, prompt_v2)
    draft = open_change(Version.objects.get(pk=prompt_v1.pk))  # read afresh, as a request does
    assert selectors.items_of(draft)[0].current == prompt_v2
    assert rebound(draft) == []  # opened against v2: nothing moved yet
    services.rollback(artifact=prompt, actor=people["admin"], reason="errors")
    (event,) = rebound(draft)
    assert event["items"][0]["from"]["path"] == prompt_v2.path
    assert event["items"][0]["to"]["path"] == prompt_v1.path
    assert "rolled back" in event["reason"]
