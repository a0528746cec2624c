"""Action-eligible artifacts: the flag, the deputy and the safety switch services (who, refusals, events)."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors, services
from registry.models import Artifact, SafetySwitch
from tests.factories import make_artifact

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(make_user: Any, acme: Any, globex: Any) -> dict[str, Any]:
    return {
        "owner": make_user("owner", acme="member"),
        "member": make_user("member", acme="member"),
        "reviewer": make_user("reviewer", acme=["member", "reviewer"]),
        "admin": make_user("admin", acme=["member", "administrator"]),
        "outsider": make_user("outsider", globex="member"),
    }


@pytest.fixture
def agent(acme: Any, people: dict[str, Any]) -> Artifact:
    return make_artifact(acme, "prompt", "refund-agent", owner=people["owner"])


def events(kind: str, artifact: Artifact) -> list[Event]:
    return list(Event.objects.filter(kind=kind, subject_id=str(artifact.pk)).order_by("seq"))


def eligible(agent: Artifact, admin: Any) -> Artifact:
    return services.artifact_action_eligible_set(
        artifact=agent, value=True, reason="Its output issues refunds.", actor=admin
    )


# --- the flag ------------------------------------------------------------------------------


def test_an_administrator_marks_an_artifact_action_eligible_with_an_event(
    agent: Artifact, people: dict[str, Any]
) -> None:
    eligible(agent, people["admin"])
    agent.refresh_from_db()
    assert agent.action_eligible is True
    (event,) = events(EventKind.ARTIFACT_ACTION_ELIGIBLE_SET, agent)
    assert event.actor == people["admin"]
    assert event.payload == {
        "path": "prompt/acme/refund-agent",
        "action_eligible": True,
        "reason": "Its output issues refunds.",
    }
    services.artifact_action_eligible_set(
        artifact=agent, value=False, reason="It only drafts now.", actor=people["admin"]
    )
    agent.refresh_from_db()
    assert agent.action_eligible is False
    assert [
        e.payload["action_eligible"] for e in events(EventKind.ARTIFACT_ACTION_ELIGIBLE_SET, agent)
    ] == [True, False]


@pytest.mark.parametrize("who", ["owner", "member", "reviewer", "outsider"])
def test_only_administrators_mark_an_artifact_action_eligible(
    agent: Artifact, people: dict[str, Any], who: str
) -> None:
    with pytest.raises(Forbidden, match="Only an administrator of acme"):
        services.artifact_action_eligible_set(
            artifact=agent, value=True, reason="Because.", actor=people[who]
        )
    agent.refresh_from_db()
    assert agent.action_eligible is False
    assert events(EventKind.ARTIFACT_ACTION_ELIGIBLE_SET, agent) == []


def test_the_flag_needs_a_reason_and_a_change(agent: Artifact, people: dict[str, Any]) -> None:
    with pytest.raises(DomainError) as missing:
        services.artifact_action_eligible_set(
            artifact=agent, value=True, reason="  ", actor=people["admin"]
        )
    assert missing.value.field == "reason"
    with pytest.raises(Conflict, match="is not action-eligible") as same:
        services.artifact_action_eligible_set(
            artifact=agent, value=False, reason="Off.", actor=people["admin"]
        )
    assert same.value.field == "value"


def test_the_flag_stays_on_while_the_switch_is_engaged(
    agent: Artifact, people: dict[str, Any]
) -> None:
    eligible(agent, people["admin"])
    services.safety_switch_engage(artifact=agent, reason="Wrong refunds.", actor=people["admin"])
    with pytest.raises(Conflict, match="release it before") as refused:
        services.artifact_action_eligible_set(
            artifact=agent, value=False, reason="Off.", actor=people["admin"]
        )
    assert refused.value.field == "value"
    agent.refresh_from_db()
    assert agent.action_eligible is True


# --- the deputy ----------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["owner", "admin"])
def test_the_owner_or_an_administrator_names_the_deputy(
    agent: Artifact, people: dict[str, Any], who: str
) -> None:
    services.artifact_deputy_set(artifact=agent, deputy=people["reviewer"], actor=people[who])
    agent.refresh_from_db()
    assert agent.deputy == people["reviewer"]
    (event,) = events(EventKind.ARTIFACT_DEPUTY_SET, agent)
    assert event.actor == people[who]
    assert event.payload == {"path": agent.path, "from": None, "to": "reviewer"}
    services.artifact_deputy_set(artifact=agent, deputy=None, actor=people[who])
    agent.refresh_from_db()
    assert agent.deputy is None
    assert events(EventKind.ARTIFACT_DEPUTY_SET, agent)[-1].payload["from"] == "reviewer"


@pytest.mark.parametrize("who", ["member", "reviewer", "outsider"])
def test_others_may_not_name_the_deputy(agent: Artifact, people: dict[str, Any], who: str) -> None:
    with pytest.raises(Forbidden, match="Only the owner or an administrator can name the deputy"):
        services.artifact_deputy_set(artifact=agent, deputy=people["member"], actor=people[who])
    assert events(EventKind.ARTIFACT_DEPUTY_SET, agent) == []


def test_the_deputy_is_an_active_member_other_than_the_owner(
    agent: Artifact, people: dict[str, Any]
) -> None:
    admin = people["admin"]
    with pytest.raises(DomainError, match="outsider is not an active member of acme") as e1:
        services.artifact_deputy_set(artifact=agent, deputy=people["outsider"], actor=admin)
    with pytest.raises(DomainError, match="owner owns prompt/acme/refund-agent") as e2:
        services.artifact_deputy_set(artifact=agent, deputy=people["owner"], actor=admin)
    people["member"].is_active = False
    people["member"].save()
    with pytest.raises(DomainError, match="member is not an active member") as e3:
        services.artifact_deputy_set(artifact=agent, deputy=people["member"], actor=admin)
    assert {e1.value.field, e2.value.field, e3.value.field} == {"deputy"}
    services.artifact_deputy_set(artifact=agent, deputy=people["reviewer"], actor=admin)
    with pytest.raises(Conflict, match="already the deputy"):
        services.artifact_deputy_set(artifact=agent, deputy=people["reviewer"], actor=admin)
    assert len(events(EventKind.ARTIFACT_DEPUTY_SET, agent)) == 1


# --- the safety switch ---------------------------------------------------------------------


def test_engage_and_release_record_rows_and_events(agent: Artifact, people: dict[str, Any]) -> None:
    admin = people["admin"]
    agent = eligible(agent, admin)
    switch = services.safety_switch_engage(artifact=agent, reason="Wrong refunds.", actor=admin)
    assert selectors.halted_reason(agent) == (
        "halted: safety switch engaged on prompt/acme/refund-agent by admin: Wrong refunds."
    )
    (engaged,) = events(EventKind.SAFETY_SWITCH_ENGAGED, agent)
    assert engaged.actor == admin
    assert engaged.payload["reason"] == "Wrong refunds."
    assert engaged.payload["switch"] == str(switch.pk)
    released = services.safety_switch_release(
        artifact=agent, reason="v1.0.1 rolled out.", actor=admin
    )
    assert released.pk == switch.pk
    switch.refresh_from_db()
    assert (switch.released_by, switch.release_reason) == (admin, "v1.0.1 rolled out.")
    assert switch.released_at is not None
    assert selectors.halted_reason(agent) is None
    (event,) = events(EventKind.SAFETY_SWITCH_RELEASED, agent)
    assert event.payload["engaged_reason"] == "Wrong refunds."
    # A second halt is a new row; history keeps both.
    services.safety_switch_engage(artifact=agent, reason="Again.", actor=admin)
    assert SafetySwitch.objects.filter(artifact=agent).count() == 2
    assert [s.reason for s in selectors.safety_switch_history(agent)] == [
        "Again.",
        "Wrong refunds.",
    ]


def test_the_switch_is_only_for_action_eligible_artifacts(
    agent: Artifact, people: dict[str, Any]
) -> None:
    with pytest.raises(Conflict, match="not action-eligible") as refused:
        services.safety_switch_engage(artifact=agent, reason="Stop.", actor=people["admin"])
    assert refused.value.field == "artifact"
    assert not SafetySwitch.objects.exists()
    assert events(EventKind.SAFETY_SWITCH_ENGAGED, agent) == []


def test_engaged_twice_or_released_unengaged_is_refused(
    agent: Artifact, people: dict[str, Any]
) -> None:
    admin = people["admin"]
    eligible(agent, admin)
    with pytest.raises(Conflict, match="is not engaged"):
        services.safety_switch_release(artifact=agent, reason="Go.", actor=admin)
    services.safety_switch_engage(artifact=agent, reason="Stop.", actor=admin)
    with pytest.raises(Conflict, match=r"already engaged \(by admin at .*: Stop.\)"):
        services.safety_switch_engage(artifact=agent, reason="Stop again.", actor=admin)
    assert len(events(EventKind.SAFETY_SWITCH_ENGAGED, agent)) == 1
    with pytest.raises(DomainError) as missing:
        services.safety_switch_release(artifact=agent, reason="", actor=admin)
    assert missing.value.field == "reason"


@pytest.mark.parametrize("who", ["owner", "member", "reviewer", "outsider"])
def test_only_administrators_flip_the_switch(
    agent: Artifact, people: dict[str, Any], who: str
) -> None:
    agent = eligible(agent, people["admin"])
    with pytest.raises(Forbidden, match="engage or release the safety switch"):
        services.safety_switch_engage(artifact=agent, reason="Stop.", actor=people[who])
    services.safety_switch_engage(artifact=agent, reason="Stop.", actor=people["admin"])
    with pytest.raises(Forbidden, match="engage or release the safety switch"):
        services.safety_switch_release(artifact=agent, reason="Go.", actor=people[who])
    assert selectors.halted_reason(agent) is not None


def test_the_system_may_act(agent: Artifact) -> None:
    agent = services.artifact_action_eligible_set(
        artifact=agent, value=True, reason="CLI.", actor=None
    )
    services.safety_switch_engage(artifact=agent, reason="Operator.", actor=None)
    assert selectors.halted_reason(agent) == (
        "halted: safety switch engaged on prompt/acme/refund-agent by the system: Operator."
    )


def test_the_services_take_the_event_logs_lock_last(
    agent: Artifact, people: dict[str, Any]
) -> None:
    from tests.governance.test_event_deferral import assert_log_locked_last

    admin = people["admin"]
    assert_log_locked_last(lambda: eligible(agent, admin))
    assert_log_locked_last(
        lambda: services.artifact_deputy_set(artifact=agent, deputy=people["member"], actor=admin)
    )
    assert_log_locked_last(
        lambda: services.safety_switch_engage(artifact=agent, reason="Stop.", actor=admin)
    )
    assert_log_locked_last(
        lambda: services.safety_switch_release(artifact=agent, reason="Go.", actor=admin)
    )
