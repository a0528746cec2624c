"""Approval policy with artifact-level roles (owner, deputy, promotion by the accountable owner)
and the review rules of action-eligible artifacts (reviewer always; breaking changes need a
migration plan and simulation evidence)."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.services import artifact_action_eligible_set, artifact_deputy_set
from reviews import policy as approval_policy
from reviews import selectors, services
from reviews.choices import ChangeStatus
from reviews.models import EvaluationReport
from tests.factories import EVIDENCE_METRICS, promoted_change
from tests.reviews.conftest import PINS, make_artifact, publish
from tests.reviews.test_services import evaluation, run_checks

pytestmark = pytest.mark.django_db

OWNER_AND_DEPUTY = {
    "rules": [
        {
            "name": "Owner and deputy; the owner promotes",
            "require": ["owner", "deputy"],
            "promoted_by": "owner",
        }
    ],
    "postmortem_days": 5,
}


def set_policy(tenant: Any, rules: dict[str, Any]) -> None:
    services.approval_policy_update(tenant=tenant, rules=rules, reason="test", actor=None)


@pytest.fixture
def olivia(make_user: Any) -> Any:
    return make_user("olivia", acme="member")


@pytest.fixture
def dora(make_user: Any) -> Any:
    return make_user("dora", acme="member")


@pytest.fixture
def model(acme: Any, olivia: Any) -> Any:
    """A model owned by olivia (a plain member, not an administrator)."""
    return make_artifact(acme, "prompt", "route-ticket", owner=olivia)


def _submitted(open_change: Any, people: dict[str, Any], version: Any, **kw: Any) -> Any:
    change = open_change(version, **kw)
    evaluation(change, version)
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    return change


def test_owner_and_deputy_sign_off_and_only_the_owner_promotes(
    open_change: Any, people: dict[str, Any], acme: Any, olivia: Any, dora: Any, model: Any
) -> None:
    set_policy(acme, OWNER_AND_DEPUTY)
    v1 = publish(model, text="Route {{ ticket }}.", impact="major", metadata=PINS)
    change = open_change(v1)
    evaluation(change, v1)
    with pytest.raises(DomainError, match="needs its deputy owner's approval") as no_deputy:
        services.change_submit(change=change, actor=people["author"])
    assert no_deputy.value.field == "proposed"
    artifact_deputy_set(artifact=model, deputy=dora, actor=None)
    change = services.change_submit(change=change, actor=people["author"])
    assert change.requirements == ["owner", "deputy"]
    run_checks(change)
    assert selectors.waiting_for(dora)[0][1] == ["deputy"]
    with pytest.raises(Forbidden):
        services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    assert services.approval_decide(change=change, actor=dora, decision="approve").requirement == (
        "deputy"
    )
    services.approval_decide(change=change, actor=olivia, decision="approve")
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    assert selectors.filled_slots([change])[change.pk] == {"owner", "deputy"}
    for actor in (people["admin"], None):
        with pytest.raises(Forbidden, match="only the accountable owner promote"):
            services.change_promote(change=change, actor=actor)
    assert services.change_promote(change=change, actor=olivia).status == ChangeStatus.PROMOTED


def test_the_change_page_offers_promotion_to_the_owner_only(
    client: Any,
    open_change: Any,
    people: dict[str, Any],
    acme: Any,
    olivia: Any,
    dora: Any,
    model: Any,
) -> None:
    set_policy(acme, OWNER_AND_DEPUTY)
    artifact_deputy_set(artifact=model, deputy=dora, actor=None)
    change = _submitted(
        open_change, people, publish(model, text="Route.", impact="major", metadata=PINS)
    )
    services.approval_decide(change=change, actor=dora, decision="approve")
    services.approval_decide(change=change, actor=olivia, decision="approve")
    client.force_login(people["admin"])
    assert 'id="promote-form"' not in client.get(change.get_absolute_url()).content.decode()
    client.force_login(olivia)
    assert 'id="promote-form"' in client.get(change.get_absolute_url()).content.decode()


def test_a_policy_names_only_known_promoters() -> None:
    bad = {"rules": [{"require": ["owner"], "promoted_by": "anyone"}]}
    with pytest.raises(approval_policy.PolicyError, match="promoted_by") as refusal:
        approval_policy.validate(bad)
    assert refusal.value.field == "rules[0]"
    good = approval_policy.validate(
        {"rules": [{"when": {"action_eligible": True}, "require": ["deputy"]}]}
    )
    facts = approval_policy.ChangeFacts(classes=frozenset({"prompt"}), action_eligible=True)
    assert approval_policy.requirements_for(good, facts) == ["deputy", "reviewer"]


def test_an_action_eligible_artifact_always_needs_a_reviewer(
    open_change: Any, people: dict[str, Any], acme: Any, prompt: Any, prompt_v1: Any
) -> None:
    set_policy(acme, {"rules": [{"name": "Admins only", "require": ["administrator"]}]})
    plain = services.change_submit(change=open_change(prompt_v1), actor=people["author"])
    assert plain.requirements == ["administrator"]
    services.change_withdraw(change=plain, actor=people["author"])
    artifact_action_eligible_set(artifact=prompt, value=True, reason="acts", actor=None)
    change = services.change_submit(change=open_change(prompt_v1), actor=people["author"])
    assert change.requirements == ["administrator", "reviewer"]
    submitted = Event.objects.filter(kind=EventKind.CHANGE_REQUEST_SUBMITTED).order_by("seq").last()
    assert submitted is not None
    assert approval_policy.ACTION_ELIGIBLE_RULE in submitted.payload["policy_rules"]


# --- breaking changes of action-eligible artifacts -------------------------------------------


@pytest.fixture
def breaking(open_change: Any, people: dict[str, Any], prompt: Any, prompt_v1: Any) -> Any:
    """prompt v1 active; the prompt is action-eligible; a major v2 submitted without a plan."""
    promoted_change(people, prompt_v1)
    artifact_action_eligible_set(artifact=prompt, value=True, reason="acts", actor=None)
    v2 = publish(
        prompt, text="Route {{ customer }} now.", impact="major", metadata=prompt_v1.metadata
    )
    return _submitted(open_change, people, v2)


def test_a_breaking_change_is_not_approved_without_a_migration_plan_and_simulation(
    breaking: Any, people: dict[str, Any]
) -> None:
    v2 = selectors.items_of(breaking)[0].proposed
    with pytest.raises(Conflict) as refusal:
        services.approval_decide(change=breaking, actor=people["reviewer"], decision="approve")
    message = refusal.value.message
    assert "breaking change of an action-eligible artifact" in message
    assert "a migration plan" in message
    assert f"simulation evidence for {v2.path}" in message
    assert not breaking.approvals.exists()
    assert any("migration plan" in b for b in selectors.promotion_blockers(breaking))


def test_with_both_it_is_approved(breaking: Any, people: dict[str, Any]) -> None:
    v2 = selectors.items_of(breaking)[0].proposed
    change = services.change_revise(
        change=breaking,
        actor=people["author"],
        reason="add the plan",
        migration_plan="Callers switch to the v2 schema behind the flag; v1 stays for 30 days.",
    )
    change = services.change_submit(change=change, actor=people["author"])
    run_checks(change)
    with pytest.raises(Conflict, match="simulation evidence") as refusal:
        services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    assert "migration plan" not in refusal.value.message
    report = services.evidence_attach(
        change=change, actor=None, version=v2, metrics=EVIDENCE_METRICS, simulation=True
    )
    assert report.simulation is True
    run_checks(change)
    services.approval_decide(change=change, actor=people["reviewer"], decision="approve")
    services.approval_decide(change=change, actor=people["admin"], decision="approve")
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    assert selectors.breaking_change_gaps(change) == []


def test_a_minor_change_or_a_first_version_is_not_breaking(
    open_change: Any, people: dict[str, Any], prompt: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    artifact_action_eligible_set(artifact=prompt, value=True, reason="acts", actor=None)
    first = open_change(prompt_v1)  # major, but nothing is active: nothing to migrate from
    assert selectors.breaking_change_gaps(first) == []
    services.change_withdraw(change=first, actor=people["author"])
    promoted_change(people, prompt_v1)
    assert selectors.breaking_change_gaps(open_change(prompt_v2)) == []


def test_migration_plan_and_simulation_through_the_api(
    token_client: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    client = token_client(people["author"])
    created = client.post(
        "/api/v1/change-requests/",
        {
            "tenant": "acme",
            "title": "Break it",
            "rollback_plan": "Back.",
            "migration_plan": "Move callers.",
            "proposed": [prompt_v1.path],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    reference = created.json()["reference"]
    evidence = client.post(
        f"/api/v1/change-requests/{reference}/evidence/",
        {"version": prompt_v1.path, "metrics": {"accuracy": 0.9}, "simulation": True},
        format="json",
    )
    assert evidence.status_code == 201, evidence.json()
    assert EvaluationReport.objects.get().simulation is True
    change = selectors.change_by_reference_unscoped(reference)
    assert change.migration_plan == "Move callers."


def test_the_page_shows_the_migration_plan_and_the_simulation_badge(
    client: Any, open_change: Any, people: dict[str, Any], prompt_v1: Any
) -> None:
    change = open_change(prompt_v1, migration_plan="Move callers first.")
    services.evidence_attach(
        change=change, actor=None, version=prompt_v1, metrics={"a": 1.0}, simulation=True
    )
    client.force_login(people["author"])
    html = client.get(change.get_absolute_url()).content.decode()
    assert 'id="migration-plan">Move callers first.' in html
    assert '<span class="badge">simulation</span>' in html


def test_the_policy_page_says_who_promotes(client: Any, people: dict[str, Any], acme: Any) -> None:
    set_policy(acme, OWNER_AND_DEPUTY)
    client.force_login(people["reviewer"])
    html = client.get("/reviews/policy/acme/").content.decode()
    assert "promoted only by the accountable owner" in html
    assert "Deputy owner" in html
