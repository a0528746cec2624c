"""The artifact page's action-eligible panel: who is offered which form, the switch asks for the
password, refusals come back on the form or above the page, and the services' events are written."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors, services
from registry.models import Artifact
from tests.registry.test_lifecycle_views import field_errors, page, signed_in

pytestmark = pytest.mark.django_db
BASE = "/registry/prompt/acme/qualify-lead/"
ENGAGE, RELEASE = BASE + "safety-switch/engage/", BASE + "safety-switch/release/"


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def reviewer(make_user: Any, acme: Any) -> Any:
    return make_user("reviewer", acme=["member", "reviewer"])


def section(html: str, anchor: str) -> str:
    """The ``<details id=anchor>`` part of a page."""
    return html.split(f'id="{anchor}"', 1)[1].split("</details>", 1)[0]


def kinds(artifact: Artifact) -> list[str]:
    return list(
        Event.objects.filter(subject_id=str(artifact.pk))
        .order_by("seq")
        .values_list("kind", flat=True)
    )


def test_a_member_sees_the_flag_and_no_form(author: Any, prompt: Artifact, admin: Any) -> None:
    html = page(signed_in(author), BASE)
    assert 'id="action-eligible-flag">no<' in html
    # The author owns the prompt: they may name a deputy, nothing else.
    assert 'id="deputy-set"' in html
    assert 'id="action-eligible-set"' not in html
    assert 'id="safety-switch"' not in html


def test_an_administrator_marks_it_action_eligible_then_halts_and_releases_it(
    admin: Any, prompt: Artifact, author: Any
) -> None:
    client = signed_in(admin)
    html = page(client, BASE)
    assert 'id="action-eligible-set"' in html
    assert 'id="safety-switch"' not in html  # not action-eligible yet
    response = client.post(BASE + "action-eligible/", {"value": "on", "reason": "Refunds."})
    assert response.status_code == 302
    prompt.refresh_from_db()
    assert prompt.action_eligible
    html = page(client, BASE)
    assert "Action-eligible</span>" in html
    assert '<span class="badge badge-ok">released</span>' in html
    assert f'action="{ENGAGE}"' in html
    response = client.post(ENGAGE, {"reason": "Refunds issued twice."})
    assert response.status_code == 302
    html = page(client, BASE)
    assert (
        "halted: safety switch engaged on prompt/acme/qualify-lead by admin: Refunds issued twice."
        in html
    )
    assert f'action="{RELEASE}"' in html
    assert client.post(RELEASE, {"reason": "Fixed."}).status_code == 302
    assert selectors.halted_reason(Artifact.objects.get(pk=prompt.pk)) is None
    assert kinds(prompt)[-3:] == [
        EventKind.ARTIFACT_ACTION_ELIGIBLE_SET,
        EventKind.SAFETY_SWITCH_ENGAGED,
        EventKind.SAFETY_SWITCH_RELEASED,
    ]


def test_the_switch_is_a_deliberate_act(admin: Any, prompt: Artifact) -> None:
    services.artifact_action_eligible_set(artifact=prompt, value=True, reason="R.", actor=None)
    client = signed_in(admin, confirmed=False)
    html = page(client, BASE)
    assert 'name="password"' in section(html, "safety-switch")
    response = client.post(ENGAGE, {"reason": "Stop."})
    assert response.status_code == 400
    assert "Confirm your password" in " ".join(field_errors(response.content.decode(), "password"))
    response = client.post(ENGAGE, {"reason": "Stop.", "password": "wrong"})
    assert response.status_code == 403
    assert "That is not your password. Nothing changed." in response.content.decode()
    assert selectors.engaged_switch(Artifact.objects.get(pk=prompt.pk)) is None
    assert client.post(ENGAGE, {"reason": "Stop.", "password": "pw"}).status_code == 302
    assert selectors.engaged_switch(Artifact.objects.get(pk=prompt.pk)) is not None


def test_refusals_are_said_with_their_status(
    admin: Any, reviewer: Any, prompt: Artifact, author: Any
) -> None:
    # Someone who is not offered the form: the reason above the page, 403, nothing written.
    response = signed_in(reviewer).post(BASE + "action-eligible/", {"value": "on", "reason": "R"})
    assert response.status_code == 403
    assert "Only an administrator of acme can mark an artifact action-eligible." in (
        response.content.decode()
    )
    response = signed_in(reviewer).post(ENGAGE, {"reason": "Stop."})
    assert response.status_code == 403
    # The service's conflict on the form: not action-eligible.
    response = signed_in(admin).post(ENGAGE, {"reason": "Stop."})
    assert response.status_code == 409
    assert "is not action-eligible" in response.content.decode()
    # A missing reason on its field.
    response = signed_in(admin).post(BASE + "action-eligible/", {"value": "on", "reason": ""})
    assert response.status_code == 400
    assert field_errors(section(response.content.decode(), "action-eligible-set"), "reason")
    assert EventKind.ARTIFACT_ACTION_ELIGIBLE_SET not in kinds(prompt)


def test_the_owner_names_a_deputy_and_a_wrong_one_is_said_on_the_field(
    author: Any, reviewer: Any, prompt: Artifact
) -> None:
    client = signed_in(author)
    response = client.post(BASE + "deputy/", {"deputy": "author"})
    assert response.status_code == 400
    errors = field_errors(section(response.content.decode(), "deputy-set"), "deputy")
    assert any("owns" in e for e in errors)
    assert client.post(BASE + "deputy/", {"deputy": "reviewer"}).status_code == 302
    assert 'id="deputy">reviewer<' in page(client, BASE)
    assert kinds(prompt)[-1] == EventKind.ARTIFACT_DEPUTY_SET
    assert client.post(BASE + "deputy/", {"deputy": ""}).status_code == 302
    assert Artifact.objects.get(pk=prompt.pk).deputy is None


def test_the_page_costs_no_more_queries_with_the_panel(
    admin: Any, prompt: Artifact, django_assert_max_num_queries: Any
) -> None:
    client = signed_in(admin)
    page(client, BASE)
    with django_assert_max_num_queries(40) as plain:
        page(client, BASE)
    services.artifact_action_eligible_set(artifact=prompt, value=True, reason="R.", actor=None)
    services.safety_switch_engage(artifact=prompt, reason="Stop.", actor=None)
    # one more: the engaged switch (only for action-eligible artifacts)
    with django_assert_max_num_queries(len(plain.captured_queries) + 1):
        html = page(client, BASE)
    assert "by the system: Stop." in html
