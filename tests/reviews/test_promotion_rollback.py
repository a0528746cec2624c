"""Promotion and rollback that cannot go wrong (issue 10).

Restoring a deprecated version needs an override reason; a first promotion can be
switched off; a rolled-back change says so; a change rolls back as a whole; two changes
proposing the same version cannot flip or re-promote the live one.
"""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry import services as registry
from registry.choices import Stage
from registry.models import Artifact, VersionState
from reviews import selectors, services
from reviews.choices import ActivationKind, ChangeStatus
from reviews.models import Activation
from tests.reviews.conftest import PINS, make_artifact, publish
from tests.reviews.test_services import kinds, promote, run_checks, submitted_prompt_change


def approve(change: Any, people: dict[str, Any]) -> Any:
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision="approve")
    change.refresh_from_db()
    return change


def stage(version: Any) -> str:
    return VersionState.objects.get(version=version).stage


def active(artifact: Any) -> Any:
    artifact.refresh_from_db()
    return artifact.active_version


# --- restoring a deprecated version --------------------------------------------------------


@pytest.fixture
def v1_deprecated(open_change: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any) -> Any:
    """v1 promoted, then v2 promoted by a second change, then v1 deprecated in favour of v2."""
    promote(open_change, people, prompt_v1)
    second = promote(open_change, people, prompt_v2)
    registry.version_deprecate(
        version=prompt_v1,
        replacement=prompt_v2,
        reason="v2 answers in the customer's language.",
        remove_after_days=30,
        actor=people["admin"],
    )
    return second


def test_rolling_back_to_a_deprecated_version_is_refused_without_an_override(
    v1_deprecated: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    events = Event.objects.count()
    with pytest.raises(Conflict) as exc:
        services.rollback(artifact=prompt, actor=people["admin"], reason="errors up")
    assert exc.value.field == "override_reason"
    assert f"{prompt_v1.path} is deprecated (replaced by {prompt_v2.version}" in exc.value.message
    # nothing happened
    assert active(prompt) == prompt_v2
    assert Event.objects.count() == events
    assert not Activation.objects.filter(kind=ActivationKind.ROLLBACK).exists()
    v1_deprecated.refresh_from_db()
    assert v1_deprecated.status == ChangeStatus.PROMOTED
    # only an administrator may override
    with pytest.raises(Forbidden):
        services.rollback(
            artifact=prompt, actor=people["reviewer"], reason="errors", override_reason="fire"
        )


def test_an_override_reason_restores_it_and_is_recorded_everywhere(
    v1_deprecated: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    back = services.rollback(
        artifact=prompt,
        actor=people["admin"],
        reason="errors up",
        override_reason="v2 leaks internal notes; v1 is the only safe version",
    )
    assert active(prompt) == prompt_v1
    assert stage(prompt_v1) == Stage.ACTIVE
    assert back.override_reason == "v2 leaks internal notes; v1 is the only safe version"
    event = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK)
    assert event.payload["override_reason"] == back.override_reason
    assert event.payload["deprecated_restored"] == [prompt_v1.path]
    # ... and in the timeline of the change it undid
    timeline = list(selectors.timeline(v1_deprecated))
    assert timeline[-1].kind == EventKind.ROLLOUT_ROLLED_BACK
    assert timeline[-1].payload["override_reason"] == back.override_reason
    # ... and in its signed record
    from reviews.record import change_record

    v1_deprecated.refresh_from_db()
    record = change_record(v1_deprecated)
    assert record["status"] == "rolled_back"
    assert record["rolled_back_by"] == str(people["admin"].pk)
    (undo,) = [a for a in record["activations"] if a["kind"] == "rollback"]
    assert undo["override_reason"] == back.override_reason
    assert undo["artifact"] == prompt.path
    assert verify_database().ok


def test_a_rollback_to_a_version_that_is_not_deprecated_records_no_override(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    promote(open_change, people, prompt_v1)
    promote(open_change, people, prompt_v2)
    back = services.rollback(
        artifact=prompt, actor=people["admin"], reason="errors", override_reason="not needed"
    )
    assert back.override_reason == ""
    assert Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK).payload["override_reason"] is None


# --- the safety switch -----------------------------------------------------------------------


def test_a_first_promotion_is_switched_off_by_deactivation(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    change = promote(open_change, people, prompt_v1)
    with pytest.raises(Conflict) as exc:
        services.rollback(artifact=prompt, actor=people["admin"], reason="bad")
    assert "no earlier promoted version" in exc.value.message
    assert "deactivate" in exc.value.message
    with pytest.raises(Forbidden):
        services.artifact_deactivate(artifact=prompt, actor=people["reviewer"], reason="bad")
    with pytest.raises(DomainError) as exc2:
        services.artifact_deactivate(artifact=prompt, actor=people["admin"], reason="  ")
    assert exc2.value.field == "reason"

    off = services.artifact_deactivate(artifact=prompt, actor=people["admin"], reason="leaks PII")
    assert active(prompt) is None
    assert off.kind == ActivationKind.DEACTIVATION
    assert off.version is None
    assert off.previous == prompt_v1
    assert off.change == change
    # nothing is left in the active stage, so resolution has nothing to serve
    assert not VersionState.objects.filter(version__artifact=prompt, stage=Stage.ACTIVE).exists()
    assert stage(prompt_v1) == Stage.APPROVED
    event = Event.objects.get(kind=EventKind.ARTIFACT_DEACTIVATED)
    assert event.payload["from"]["sha256"] == prompt_v1.manifest_sha256
    assert event.payload["reason"] == "leaks PII"
    assert event.actor == people["admin"]
    # the change it undid reads "rolled back", by whom and when, with the event in its timeline
    change.refresh_from_db()
    assert change.status == ChangeStatus.ROLLED_BACK
    assert change.rolled_back_by == people["admin"]
    assert change.rolled_back_at == off.created_at
    assert kinds(change)[-1] == EventKind.ARTIFACT_DEACTIVATED
    with pytest.raises(Conflict):
        services.artifact_deactivate(artifact=prompt, actor=people["admin"], reason="again")
    with pytest.raises(Conflict):
        services.rollback(artifact=prompt, actor=people["admin"], reason="again")
    # a rollback can turn it back on (it was active before), and so can a new promotion
    again = services.rollback(
        artifact=prompt, actor=people["admin"], reason="fixed", target=prompt_v1
    )
    assert again.version == prompt_v1
    assert active(prompt) == prompt_v1
    assert verify_database().ok


# --- a change rolls back as a whole --------------------------------------------------------


@pytest.fixture
def pair(acme: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any) -> dict[str, Any]:
    other = make_artifact(acme, "prompt", "follow-up", owner=people["admin"])
    o1 = publish(other, impact="major", text="Follow up with {{ customer }}.", metadata=PINS)
    o2 = publish(other, text="Follow up kindly with {{ customer }}.", metadata=PINS)
    return {"other": other, "o1": o1, "o2": o2}


def promote_many(open_change: Any, people: dict[str, Any], *versions: Any) -> Any:
    change = open_change(*versions)
    from tests.reviews.test_services import evaluation

    for version in versions:
        evaluation(change, version)
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    approve(change, people)
    return services.change_promote(change=change, actor=people["admin"])


def test_a_change_with_several_versions_rolls_back_together_in_one_event(
    open_change: Any,
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Any,
    prompt_v2: Any,
    pair: dict[str, Any],
) -> None:
    promote_many(open_change, people, prompt_v1, pair["o1"])
    both = promote_many(open_change, people, prompt_v2, pair["o2"])
    assert active(prompt) == prompt_v2
    assert active(pair["other"]) == pair["o2"]
    before = Event.objects.filter(kind=EventKind.ROLLOUT_ROLLED_BACK).count()

    services.rollback(artifact=prompt, actor=people["admin"], reason="the pair misbehaves")
    assert active(prompt) == prompt_v1
    assert active(pair["other"]) == pair["o1"]
    rows = Activation.objects.filter(kind=ActivationKind.ROLLBACK, change=both)
    assert {(r.artifact_id, r.version_id) for r in rows} == {
        (prompt.pk, prompt_v1.pk),
        (pair["other"].pk, pair["o1"].pk),
    }
    (event,) = Event.objects.filter(kind=EventKind.ROLLOUT_ROLLED_BACK)[before:]
    assert event.payload["change"] == both.reference
    assert {i["artifact"]: i["to"]["sha256"] for i in event.payload["items"]} == {
        prompt.path: prompt_v1.manifest_sha256,
        pair["other"].path: pair["o1"].manifest_sha256,
    }
    assert stage(pair["o2"]) == Stage.APPROVED
    assert stage(pair["o1"]) == Stage.ACTIVE
    both.refresh_from_db()
    assert both.status == ChangeStatus.ROLLED_BACK


def test_a_refused_item_leaves_every_item_of_the_change_as_it_was(
    open_change: Any,
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Any,
    prompt_v2: Any,
    pair: dict[str, Any],
) -> None:
    promote_many(open_change, people, prompt_v1, pair["o1"])
    both = promote_many(open_change, people, prompt_v2, pair["o2"])
    registry.version_deprecate(
        version=pair["o1"],
        replacement=pair["o2"],
        reason="old",
        remove_after_days=30,
        actor=people["admin"],
    )
    with pytest.raises(Conflict) as exc:
        services.rollback(artifact=prompt, actor=people["admin"], reason="bad")
    assert pair["o1"].path in exc.value.message
    assert exc.value.field == "override_reason"
    assert active(prompt) == prompt_v2
    assert active(pair["other"]) == pair["o2"]
    assert not Activation.objects.filter(kind=ActivationKind.ROLLBACK).exists()
    both.refresh_from_db()
    assert both.status == ChangeStatus.PROMOTED


def test_an_item_a_later_change_replaced_is_left_alone(
    open_change: Any,
    people: dict[str, Any],
    prompt: Artifact,
    prompt_v1: Any,
    prompt_v2: Any,
    pair: dict[str, Any],
) -> None:
    promote_many(open_change, people, prompt_v1, pair["o1"])
    both = promote_many(open_change, people, prompt_v2, pair["o2"])
    o3 = publish(pair["other"], text="Follow up warmly with {{ customer }}.", metadata=PINS)
    promote(open_change, people, o3)
    services.rollback(artifact=prompt, actor=people["admin"], reason="bad")
    assert active(prompt) == prompt_v1
    assert active(pair["other"]) == o3
    event = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK)
    assert [i["artifact"] for i in event.payload["items"]] == [prompt.path]
    assert event.payload["left"] == [
        {"artifact": pair["other"].path, "active": {"path": o3.path, "sha256": o3.manifest_sha256}}
    ]
    both.refresh_from_db()
    assert both.status == ChangeStatus.ROLLED_BACK


# --- two open changes proposing the same version ---------------------------------------------


def test_two_changes_proposing_the_same_version(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    first = submitted_prompt_change(open_change, people, prompt_v1)
    second = submitted_prompt_change(open_change, people, prompt_v1)
    run_checks(first)  # the second change's evidence for v1 re-ran them
    services.approval_decide(change=second, actor=people["reviewer"], decision="approve")
    approve(first, people)
    services.change_promote(change=first, actor=people["admin"])
    assert stage(prompt_v1) == Stage.ACTIVE

    # the other change names the new current version; what its approvals covered changed
    (item,) = selectors.items_of(second)
    assert item.current == prompt_v1
    second.refresh_from_db()
    assert second.binding_sha256 == selectors.binding_hash(second)
    assert not second.approvals.filter(voided_at__isnull=True).exists()
    blockers = selectors.promotion_blockers(second)
    assert f"{prompt_v1.path} is already the active version" in blockers

    # approving it never touches the live version's stage
    run_checks(second)
    approve(second, people)
    assert second.status == ChangeStatus.APPROVED
    assert stage(prompt_v1) == Stage.ACTIVE

    # promoting it is refused with a clear 409, and opens no obligation
    events = Event.objects.count()
    with pytest.raises(Conflict) as exc:
        services.change_promote(change=second, actor=people["admin"])
    assert exc.value.status_code == 409
    assert exc.value.field == "proposed"
    assert f"{prompt_v1.path} is already the active version" in exc.value.message
    second.refresh_from_db()
    assert second.status == ChangeStatus.APPROVED
    assert second.postmortem_due_at is None
    assert Activation.objects.filter(change=second).count() == 0
    assert Event.objects.count() == events


def test_an_open_change_follows_the_active_version_after_another_promotion(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, prompt_v2: Any
) -> None:
    draft = open_change(prompt_v2)
    assert selectors.items_of(draft)[0].current is None
    promote(open_change, people, prompt_v1)
    (item,) = selectors.items_of(draft)
    assert item.current == prompt_v1
    draft.refresh_from_db()
    assert draft.binding_sha256 == selectors.binding_hash(draft)
    # and after a rollback (here: switching it off) it follows again
    services.artifact_deactivate(artifact=prompt, actor=people["admin"], reason="halt")
    assert selectors.items_of(draft)[0].current is None


# --- pages, API and CLI ----------------------------------------------------------------------

ARTIFACT_URL = "/registry/prompt/acme/qualify-lead/"


def signed_in(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client


def test_pages_refuse_a_deprecated_restore_then_record_the_override_and_show_the_rollback(
    v1_deprecated: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    client = signed_in(people["admin"])
    html = client.get(ARTIFACT_URL).content.decode()
    assert 'name="override_reason"' in html
    assert 'id="deactivate"' in html
    assert 'id="deactivate"' not in signed_in(people["reviewer"]).get(ARTIFACT_URL).content.decode()
    rollback_url = "/reviews/rollback/prompt/acme/qualify-lead/"
    response = client.post(rollback_url, {"reason": "errors up", "password": "pw"})
    assert response.status_code == 409
    assert "needs an administrator&#x27;s override reason" in response.content.decode()
    assert active(prompt) != prompt_v1

    response = client.post(
        rollback_url, {"reason": "errors up", "override_reason": "v2 leaks", "password": "pw"}
    )
    assert response.status_code == 302
    assert active(prompt) == prompt_v1
    html = client.get(f"/reviews/changes/{v1_deprecated.reference}/").content.decode()
    status = html.split('id="change-status"')[1].split("</p>")[0]
    assert "Rolled back" in status
    assert "Promoted" not in status
    rolled = html.split('id="rolled-back"')[1].split("</dd>")[0]
    assert "by admin" in rolled
    timeline = html.split('id="timeline"')[1]
    assert "Rollout rolled back</strong> by admin: errors up" in timeline
    assert "(override: v2 leaks)" in timeline


def test_the_safety_switch_from_the_artifact_page(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    change = promote(open_change, people, prompt_v1)
    url = "/reviews/deactivate/prompt/acme/qualify-lead/"
    assert signed_in(people["reviewer"]).post(url, {"reason": "halt"}).status_code == 403
    client = signed_in(people["admin"])
    response = client.post(url, {"reason": ""})
    assert response.status_code == 400
    assert "Why switch it off" in response.content.decode()
    assert active(prompt) == prompt_v1
    response = client.post(url, {"reason": "leaks PII", "password": "pw"})
    assert response.status_code == 302
    assert active(prompt) is None
    html = client.get(ARTIFACT_URL).content.decode()
    assert 'id="deactivate"' not in html  # nothing left to switch off
    html = client.get(f"/reviews/changes/{change.reference}/").content.decode()
    assert "Artifact deactivated (safety switch)</strong> by admin: leaks PII" in html


def test_api_rollback_override_deactivation_and_the_rolled_back_change(
    v1_deprecated: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, token_client: Any
) -> None:
    client = token_client(people["admin"])
    body = {"artifact": prompt.path, "reason": "errors up"}
    resp = client.post("/api/v1/rollbacks/", body, format="json")
    assert resp.status_code == 409, resp.json()
    assert resp.json()["error"]["field"] == "override_reason"
    assert active(prompt) != prompt_v1
    resp = client.post("/api/v1/rollbacks/", {**body, "override_reason": "v2 leaks"}, format="json")
    assert resp.status_code == 201, resp.json()
    assert resp.json()["override_reason"] == "v2 leaks"
    assert resp.json()["kind"] == "rollback"
    assert resp.json()["change"] == v1_deprecated.reference

    detail = client.get(f"/api/v1/change-requests/{v1_deprecated.reference}/").json()
    assert detail["status"] == "rolled_back"
    assert detail["rolled_back_by"] == "admin"
    assert detail["rolled_back_at"] is not None
    assert detail["timeline"][-1]["kind"] == EventKind.ROLLOUT_ROLLED_BACK
    rows = client.get("/api/v1/change-requests/?status=rolled_back").json()["results"]
    assert [(r["reference"], r["rolled_back_by"]) for r in rows] == [
        (v1_deprecated.reference, "admin")
    ]

    resp = client.post("/api/v1/deactivations/", {"artifact": prompt.path}, format="json")
    assert resp.status_code == 400
    assert resp.json()["error"]["field"] == "reason"
    resp = token_client(people["reviewer"]).post(
        "/api/v1/deactivations/", {"artifact": prompt.path, "reason": "halt"}, format="json"
    )
    assert resp.status_code == 403
    assert active(prompt) == prompt_v1
    resp = client.post(
        "/api/v1/deactivations/", {"artifact": prompt.path, "reason": "halt"}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["kind"] == "deactivation"
    assert resp.json()["to"] is None
    assert resp.json()["from"]["sha256"] == prompt_v1.manifest_sha256
    assert active(prompt) is None
    # nothing is served any more: an unversioned reference answers 404
    resp = client.get("/api/v1/resolve/", {"ref": prompt.path})
    assert resp.status_code == 404
    assert "no active version" in resp.json()["error"]["message"]


def test_api_promoting_an_active_version_is_a_409(
    open_change: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any, token_client: Any
) -> None:
    first = submitted_prompt_change(open_change, people, prompt_v1)
    second = submitted_prompt_change(open_change, people, prompt_v1)
    run_checks(first)
    approve(first, people)
    services.change_promote(change=first, actor=people["admin"])
    run_checks(second)
    approve(second, people)
    client = token_client(people["admin"])
    detail = client.get(f"/api/v1/change-requests/{second.reference}/").json()
    assert detail["items"][0]["current"]["sha256"] == prompt_v1.manifest_sha256
    assert f"{prompt_v1.path} is already the active version" in detail["promotion_blockers"]
    html = signed_in(people["admin"]).get(f"/reviews/changes/{second.reference}/").content.decode()
    current = html.split('<th scope="row">Current</th>')[1].split("</tr>")[0]
    assert prompt_v1.path in current
    assert "none: this is the first version" not in current
    assert "is already the active version" in html.split('id="blockers"')[1].split("</ul>")[0]
    resp = client.post(f"/api/v1/change-requests/{second.reference}/promote/", format="json")
    assert resp.status_code == 409
    assert resp.json()["error"]["field"] == "proposed"
    assert "is already the active version" in resp.json()["error"]["message"]


def test_cli_override_deactivate_and_changes_list(
    v1_deprecated: Any, people: dict[str, Any], prompt: Artifact, prompt_v1: Any
) -> None:
    from tests.reviews.test_changes_command import run

    code, _, err = run("registry", "rollback", prompt.path, "--reason", "errors", "--as", "admin")
    assert code == 2
    assert "override reason" in err
    assert err.count("\n") == 1
    code, out, err = run(
        "registry", "rollback", prompt.path, "--reason", "errors", "--as", "admin",
        "--override-reason", "v2 leaks",
    )  # fmt: skip
    assert code == 0, err
    assert f"(rolled back {v1_deprecated.reference})" in out
    event = Event.objects.get(kind=EventKind.ROLLOUT_ROLLED_BACK)
    assert event.payload["override_reason"] == "v2 leaks"
    assert event.via == "cli"

    code, out, _ = run("changes", "list", "--status", "rolled_back")
    (line,) = out.strip().splitlines()
    assert line.startswith(v1_deprecated.reference)
    assert "\trolled_back\t" in line
    assert line.split("\t")[-1].startswith("rolled back by admin at ")
    code, out, _ = run("changes", "show", v1_deprecated.reference)
    assert "[rolled_back]" in out
    assert "rolled back by admin at" in out

    code, out, err = run("registry", "deactivate", prompt.path, "--reason", "halt", "--as", "admin")
    assert code == 0, err
    # v1 was promoted first by another change; switching it off undoes that one too
    first = Activation.objects.get(version=prompt_v1, kind=ActivationKind.PROMOTION).change
    assert out.strip() == (
        f"{prompt.path}: no active version, was {prompt_v1.version} (rolled back {first.reference})"
    )
    assert active(prompt) is None
    assert Event.objects.get(kind=EventKind.ARTIFACT_DEACTIVATED).payload["reason"] == "halt"
