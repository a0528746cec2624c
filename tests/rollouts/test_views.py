"""Rollout pages: the list and its filters, a rollout and its actions, the runtime matrix,
applications and slots; who sees which buttons, refusals, other tenants, query counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Tenant
from registry import services as registry
from registry.models import Artifact, Version
from reviews import services as reviews
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import RolloutState
from rollouts.contract import AUTONOMY_PHASE_ORDER
from rollouts.models import Application, Override, PointerMove, Rollout, Slot
from tests.reviews.conftest import PINS, make_artifact, publish

pytestmark = pytest.mark.django_db
PASSWORD = "pw"  # make_user's default


def signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def get(client: Client, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (response.status_code, path)
    return response.content.decode()


def section(html: str, id_: str) -> str:
    """The HTML of the element with this id up to the next section."""
    start = html.index(f'id="{id_}"')
    end = html.find("<section", start)
    return html[start : end if end != -1 else len(html)]


def act(
    client: Client, rollout: Rollout, action: str, *, password: str | None = PASSWORD, **data: Any
) -> Any:
    form = {f"{action}-revision": data.pop("revision", rollout.revision)}
    form.update({f"{action}-{k}": v for k, v in data.items()})
    if password is not None:
        form[f"{action}-password"] = password
    return client.post(f"/rollouts/RO-{rollout.number}/{action}/", form)


@pytest.fixture
def acme_rollout(
    acme: Tenant, people: dict[str, Any], promote: Callable[..., ChangeRequest]
) -> Rollout:
    """A draft canary of acme's own application (invisible to other tenants)."""
    prompt = make_artifact(acme, "prompt", "acme-greeting", owner=people["admin"])
    v1 = publish(prompt, impact="major", text="Hello {{ name }}.", metadata=PINS)
    promote(v1, title="First greeting")
    app = services.application_create(
        tenant=acme, slug="acme-bot", name="Acme bot", actor=people["admin"]
    )
    services.slot_create(application=app, name="greet", artifact=prompt, actor=people["admin"])
    v2 = publish(prompt, text="Hello {{ name }}, welcome.", metadata=PINS)
    change = promote(v2, title="Warmer greeting")
    return services.rollout_create(change=change, actor=people["admin"], strategy="canary")


# --- the list -------------------------------------------------------------------------------


def test_list_shows_rollouts_and_filters_by_state_tenant_and_application(
    people: dict[str, Any], canary_rollout: Rollout, prompt_v1: Version, prompt_v2: Version
) -> None:
    client = signed_in(people["admin"])
    html = get(client, "/rollouts/")
    rows = section(html, "rollouts")
    assert canary_rollout.reference in rows
    assert canary_rollout.change.reference in rows
    assert f"sales-agent.qualifyLead: {prompt_v1.version} → {prompt_v2.version}" in rows
    assert "Draft" in rows
    assert 'href="/rollouts/"' in html
    assert ">Rollouts</a>" in html  # in the main nav
    assert canary_rollout.reference in get(client, "/rollouts/?state=draft")
    assert canary_rollout.reference not in section(
        get(client, "/rollouts/?state=progressing"), "rollouts"
    )
    assert canary_rollout.reference in get(client, "/rollouts/?application=sales-agent")
    assert canary_rollout.reference in get(client, "/rollouts/?tenant=platform")
    assert canary_rollout.reference not in section(
        get(client, "/rollouts/?tenant=acme"), "rollouts"
    )


def test_list_refuses_an_unknown_filter_value_naming_it(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    html = get(signed_in(people["admin"]), "/rollouts/?state=nonsense", status=400)
    assert "Select a valid choice" in section(html, "id_state")


def test_list_query_count_does_not_grow_with_rows(
    people: dict[str, Any],
    canary_rollout: Rollout,
    promoted_change: ChangeRequest,
    django_assert_num_queries: Any,
) -> None:
    client = signed_in(people["admin"])
    client.get("/rollouts/")  # warm the session and the content types
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        assert client.get("/rollouts/").status_code == 200
    for _ in range(3):  # more rollouts of the same change: abort one, create the next
        last = Rollout.objects.order_by("-number").first()
        assert last is not None
        services.rollout_abort(rollout=last, actor=people["admin"], reason="next one")
        services.rollout_create(change=promoted_change, actor=people["admin"], strategy="canary")
    assert Rollout.objects.count() == 4
    with django_assert_num_queries(len(one.captured_queries)):
        html = get(client, "/rollouts/")
    assert section(html, "rollouts").count('class="rollout-row') == 4


# --- a rollout ----------------------------------------------------------------------------


def test_rollout_page_shows_phases_steps_targets_and_actions_naming_the_change(
    people: dict[str, Any], canary_rollout: Rollout, prompt_v1: Version, prompt_v2: Version
) -> None:
    html = get(signed_in(people["admin"]), f"/rollouts/RO-{canary_rollout.number}/")
    phases = section(html, "phases")
    positions = [phases.index(f'id="phase-{name}"') for name in AUTONOMY_PHASE_ORDER]
    assert positions == sorted(positions)  # the seven phases, in the fixed order
    assert "slo_signal_count_minimum" in phases  # their gates
    steps = section(html, "steps")
    assert [s for s in ("1%", "5%", "25%", "50%", "100%") if s in steps] == [
        "1%",
        "5%",
        "25%",
        "50%",
        "100%",
    ]
    targets = section(html, "targets")
    assert prompt_v1.path in targets
    assert prompt_v2.path in targets
    actions = section(html, "actions")
    assert 'id="action-start"' in actions
    assert 'id="action-abort"' in actions
    assert 'id="action-advance"' not in actions  # a draft cannot advance
    assert (
        f"serve {prompt_v2.version} on sales-agent.qualifyLead to 1% of subjects; "
        f"the rest keep {prompt_v1.version}"
    ) in actions
    assert 'name="start-password"' in actions  # an administrator confirms the password


def test_a_non_administrator_sees_no_action_and_is_refused_on_post(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    client = signed_in(people["outsider"])  # a member of acme: sees the platform's rollout
    html = get(client, f"/rollouts/RO-{canary_rollout.number}/")
    actions = section(html, "actions")
    assert "<form" not in actions
    assert "Only an administrator can" in actions
    response = act(client, canary_rollout, "start")
    assert response.status_code == 403
    assert "Only an administrator can start a rollout" in response.content.decode()
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.DRAFT


@pytest.mark.usefixtures("people")
def test_another_tenants_rollout_application_and_slot_are_not_found(
    acme_rollout: Rollout, globex: Tenant, make_user: Any
) -> None:
    stranger = make_user("stranger", globex=["member", "administrator"])
    client = signed_in(stranger)
    get(client, f"/rollouts/RO-{acme_rollout.number}/", status=404)
    get(client, f"/rollouts/RO-{acme_rollout.number}/phase-manifest.json", status=404)
    assert act(client, acme_rollout, "start").status_code == 404
    get(client, "/rollouts/applications/acme-bot/", status=404)
    get(client, "/rollouts/applications/acme-bot/slots/greet/", status=404)
    assert acme_rollout.reference not in get(client, "/rollouts/")
    acme_rollout.refresh_from_db()
    assert acme_rollout.state == RolloutState.DRAFT


def test_start_asks_for_the_password_then_advance_raises_the_weight(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    client = signed_in(people["admin"])
    response = act(client, canary_rollout, "start", password="wrong", reason="go")
    assert response.status_code == 403
    assert "That is not your password" in response.content.decode()
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.DRAFT

    response = act(client, canary_rollout, "start", reason="go")
    assert response.status_code == 302, response.content.decode()[:3000]
    canary_rollout.refresh_from_db()
    assert (canary_rollout.state, canary_rollout.step) == (RolloutState.PROGRESSING, 1)
    html = get(client, f"/rollouts/RO-{canary_rollout.number}/")
    assert f"Started {canary_rollout.reference}: progressing at step 1 (1%)." in section(
        html, "main"
    )
    assert "1% of subjects" in html
    actions = section(html, "actions")
    assert "Raise the canary for sales-agent.qualifyLead from 1% to 5%." in actions
    assert 'name="advance-password"' not in actions  # confirmed a moment ago

    response = act(client, canary_rollout, "advance", password=None, reason="healthy")
    assert response.status_code == 302
    canary_rollout.refresh_from_db()
    assert canary_rollout.step == 2
    assert canary_rollout.weight == 5_000
    html = get(client, f"/rollouts/RO-{canary_rollout.number}/")
    assert "5% of subjects" in section(html, "main")
    moves = section(html, "moves")
    assert "admin" in moves
    assert "5%" in moves
    assert "healthy" in moves
    assert "Rollout advanced a step" in section(html, "timeline")


def test_a_stale_revision_is_refused_with_409_and_nothing_moves(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    client = signed_in(people["admin"])
    assert act(client, canary_rollout, "start").status_code == 302
    canary_rollout.refresh_from_db()
    response = act(client, canary_rollout, "advance", revision=1)  # seen before the start
    assert response.status_code == 409
    assert "changed meanwhile" in response.content.decode()
    canary_rollout.refresh_from_db()
    assert canary_rollout.step == 1


def test_rollback_needs_a_reason_and_restores_the_pointers(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    client = signed_in(people["admin"])
    assert act(client, canary_rollout, "start").status_code == 302
    canary_rollout.refresh_from_db()
    response = act(client, canary_rollout, "rollback", password=None)
    assert response.status_code == 400
    assert "This field is required" in section(response.content.decode(), "action-rollback")
    response = act(client, canary_rollout, "rollback", password=None, reason="errors up")
    assert response.status_code == 302
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.ROLLED_BACK
    html = get(client, f"/rollouts/RO-{canary_rollout.number}/")
    assert "errors up" in section(html, "rollout-finished")
    assert 'id="action-' not in html  # nothing more can happen


def test_unknown_actions_and_gets_are_refused(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    client = signed_in(people["admin"])
    assert client.post(f"/rollouts/RO-{canary_rollout.number}/explode/").status_code == 404
    response = client.get(f"/rollouts/RO-{canary_rollout.number}/start/")
    assert response["Location"] == f"/rollouts/RO-{canary_rollout.number}/"
    get(client, "/rollouts/RO-99999/", status=404)


def test_a_flag_is_switched_on_from_the_page_and_the_matrix_follows(
    people: dict[str, Any], promoted_change: ChangeRequest, prompt_v2: Version
) -> None:
    rollout = services.rollout_create(
        change=promoted_change,
        actor=people["admin"],
        strategy="flag",
        flag_key="polite-leads",
        flag_expires_at=timezone.now() + timedelta(days=7),
    )
    client = signed_in(people["admin"])
    assert act(client, rollout, "start").status_code == 302
    rollout.refresh_from_db()
    html = get(client, f"/rollouts/RO-{rollout.number}/")
    flag = section(html, "action-flag")
    assert "Switch the flag on" in flag
    assert (
        f"Switch flag &#x27;polite-leads&#x27; on: sales-agent.qualifyLead serve {prompt_v2.version}"
        in flag
    )
    assert act(client, rollout, "flag", password=None).status_code == 400  # why is required
    response = act(client, rollout, "flag", password=None, reason="go")
    assert response.status_code == 302
    rollout.refresh_from_db()
    assert rollout.flag_on
    html = get(client, "/rollouts/runtime/")
    start = html.index('id="tenant-acme"')
    acme_row = html[start : html.index("</tr>", start)]
    assert prompt_v2.version in acme_row
    assert "cell-differs" in acme_row
    assert f"flag polite-leads on → {prompt_v2.version}" in acme_row


# --- starting one from a promoted change ----------------------------------------------------


def test_start_a_rollout_from_a_promoted_change(
    people: dict[str, Any], promoted_change: ChangeRequest
) -> None:
    client = signed_in(people["admin"])
    html = get(client, f"/rollouts/new/?change={promoted_change.reference}")
    assert promoted_change.reference in section(html, "rollout-change")
    assert 'value="canary" selected' in html  # the change's strategy
    assert "1, 5, 25, 50, 100" in html
    response = client.post(
        "/rollouts/new/",
        {
            "change": promoted_change.reference,
            "strategy": "canary",
            "steps": "abc",
            "target": "live",
        },
    )
    assert response.status_code == 400
    assert "abc is not a percentage." in response.content.decode()
    assert not Rollout.objects.exists()
    response = client.post(
        "/rollouts/new/",
        {
            "change": promoted_change.reference,
            "strategy": "canary",
            "steps": "10, 50, 100",
            "target": "live",
            "reason": "carefully",
        },
    )
    assert response.status_code == 302
    rollout = Rollout.objects.get()
    assert rollout.steps == [10_000, 50_000, 100_000]
    assert rollout.state == RolloutState.DRAFT
    assert rollout.reason == "carefully"
    assert response["Location"] == f"/rollouts/RO-{rollout.number}/"


def test_starting_from_a_change_that_is_not_promoted_names_the_change_field(
    people: dict[str, Any], platform: Tenant, slot: Slot, prompt_v2: Version
) -> None:
    client = signed_in(people["admin"])
    draft = reviews.change_create(
        tenant=platform,
        actor=people["author"],
        title="Not yet",
        rollback_plan="None needed.",
        proposed=[prompt_v2],
    )
    response = client.post(
        "/rollouts/new/", {"change": draft.reference, "strategy": "canary", "target": "live"}
    )
    assert 400 <= response.status_code < 500
    assert not Rollout.objects.exists()
    response = client.post(
        "/rollouts/new/", {"change": "CR-1999-0001", "strategy": "canary", "target": "live"}
    )
    assert response.status_code == 404
    assert "No change request" in response.content.decode()


# --- the runtime matrix ---------------------------------------------------------------------


def test_matrix_shows_what_each_tenant_is_served_and_why(
    people: dict[str, Any],
    canary_rollout: Rollout,
    prompt_v1: Version,
    prompt_v2: Version,
    slot: Slot,
    acme: Tenant,
) -> None:
    client = signed_in(people["admin"])
    html = get(client, "/rollouts/runtime/")
    acme_row = section(html, "tenant-acme")
    assert prompt_v1.version in acme_row
    assert "default" in acme_row
    assert "cell-rollout" not in acme_row
    assert 'id="legend"' in html
    assert "differs from default" in section(html, "legend")

    assert act(client, canary_rollout, "start").status_code == 302
    services.override_set(
        slot=slot, tenant=acme, version=prompt_v2, reason="acme asked", actor=people["admin"]
    )
    html = get(client, "/rollouts/runtime/")
    acme_row = html[
        html.index('id="tenant-acme"') : html.index("</tr>", html.index('id="tenant-acme"'))
    ]
    assert prompt_v2.version in acme_row
    assert "override" in acme_row
    assert "cell-differs" in acme_row
    assert "differs from default" in acme_row
    assert f"canary 1% → {prompt_v2.version}" in acme_row
    assert "cell-rollout" in acme_row
    assert canary_rollout.reference in section(html, "in-progress")


# --- applications and slots -----------------------------------------------------------------


def test_slot_page_documents_the_default_overrides_and_history(
    people: dict[str, Any], slot: Slot, prompt_v1: Version, prompt_v2: Version, acme: Tenant
) -> None:
    client = signed_in(people["admin"])
    html = get(client, "/rollouts/applications/sales-agent/slots/qualifyLead/")
    assert prompt_v1.version in section(html, "default-version")
    assert "Qualifies inbound leads." in section(html, "default")
    assert 'id="override-form"' in html
    response = client.post(
        "/rollouts/applications/sales-agent/slots/qualifyLead/override/",
        {"tenant": "acme", "version": prompt_v1.version, "reason": "pin acme"},
    )
    assert response.status_code == 302
    assert Override.objects.get(slot=slot, tenant=acme).version == prompt_v1
    html = get(client, "/rollouts/applications/sales-agent/slots/qualifyLead/")
    assert "pin acme" in section(html, "override-acme")
    history = section(html, "history")
    assert "pin acme" in history
    assert "admin" in history
    assert "Tenant override" in history
    response = client.post(
        "/rollouts/applications/sales-agent/slots/qualifyLead/override/",
        {"tenant": "acme", "version": "9.9.9", "reason": "typo"},
    )
    assert response.status_code == 404
    assert "has no version 9.9.9." in response.content.decode()
    response = client.post(
        "/rollouts/applications/sales-agent/slots/qualifyLead/override/",
        {"tenant": "acme", "version": "", "reason": "back to the default"},
    )
    assert response.status_code == 302
    assert not Override.objects.filter(slot=slot, tenant=acme).exists()
    assert PointerMove.objects.filter(slot=slot, reason="back to the default").exists()


def test_a_non_administrator_gets_no_override_form_and_is_refused(
    people: dict[str, Any], slot: Slot
) -> None:
    client = signed_in(people["outsider"])
    html = get(client, "/rollouts/applications/sales-agent/slots/qualifyLead/")
    assert 'id="override-form"' not in html
    response = client.post(
        "/rollouts/applications/sales-agent/slots/qualifyLead/override/",
        {"tenant": "acme", "version": "", "reason": "x"},
    )
    assert response.status_code == 403
    assert not PointerMove.objects.filter(slot=slot, reason="x").exists()


def test_administrators_create_applications_and_slots(
    people: dict[str, Any], acme: Tenant, promote: Callable[..., ChangeRequest]
) -> None:
    client = signed_in(people["acme_admin"])
    html = get(client, "/rollouts/applications/")
    assert 'id="new-application"' in html
    response = client.post(
        "/rollouts/applications/new/",
        {"tenant": "acme", "slug": "helpdesk", "name": "Help desk", "description": "Tickets."},
    )
    assert response.status_code == 302
    app = Application.objects.get(slug="helpdesk")
    assert app.tenant == acme
    prompt: Artifact = make_artifact(acme, "prompt", "triage", owner=people["admin"])
    response = client.post(
        "/rollouts/applications/helpdesk/slots/new/",
        {"name": "triage", "artifact": "prompt/acme/triage"},
    )
    assert response.status_code == 409  # no active version yet: the service says so
    assert "has no active version" in section(response.content.decode(), "slot-form")
    assert not Slot.objects.exists()
    promote(publish(prompt, impact="major", text="Triage {{ ticket }}.", metadata=PINS))
    response = client.post(
        "/rollouts/applications/helpdesk/slots/new/",
        {"name": "triage", "artifact": "prompt/acme/triage", "description": "Sorts tickets."},
    )
    assert response.status_code == 302
    assert response["Location"] == "/rollouts/applications/helpdesk/slots/triage/"
    html = get(client, "/rollouts/applications/helpdesk/")
    assert "prompt/acme/triage" in section(html, "slots")
    assert "Sorts tickets." in html
    response = client.post(
        "/rollouts/applications/helpdesk/slots/new/",
        {"name": "other", "artifact": "prompt/globex/triage"},
    )
    assert response.status_code == 404
    assert "No artifact" in response.content.decode()


def test_a_member_cannot_create_applications_or_slots(
    people: dict[str, Any], application: Application
) -> None:
    client = signed_in(people["outsider"])
    assert 'id="new-application"' not in get(client, "/rollouts/applications/")
    response = client.post(
        "/rollouts/applications/new/", {"tenant": "acme", "slug": "x", "name": "X"}
    )
    assert response.status_code == 302  # no form for them: back to the list with the reason
    assert not Application.objects.filter(slug="x").exists()
    html = get(client, "/rollouts/applications/sales-agent/")
    assert 'id="slot-form"' not in html
    response = client.post(
        "/rollouts/applications/sales-agent/slots/new/",
        {"name": "other", "artifact": "prompt/platform/qualify-lead"},
    )
    assert response.status_code == 403
    assert not Slot.objects.filter(name="other").exists()


def test_rollout_page_query_count_does_not_grow_with_steps_moves_and_events(
    people: dict[str, Any], canary_rollout: Rollout, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = signed_in(people["admin"])
    assert act(client, canary_rollout, "start").status_code == 302
    path = f"/rollouts/RO-{canary_rollout.number}/"
    client.get(path)
    with CaptureQueriesContext(connection) as one:
        assert client.get(path).status_code == 200
    expected = len(one.captured_queries)  # read now: the next request resets the log
    for _ in range(3):
        canary_rollout.refresh_from_db()
        assert act(client, canary_rollout, "advance", password=None).status_code == 302
    assert PointerMove.objects.filter(rollout=canary_rollout).count() >= 4
    with django_assert_num_queries(expected):
        html = get(client, path)
    assert "50% of subjects" in html


def test_matrix_marks_a_deprecated_version_and_a_tenant_that_differs(
    people: dict[str, Any],
    promoted_change: ChangeRequest,
    prompt_v1: Version,
    prompt_v2: Version,
    slot: Slot,
    acme: Tenant,
) -> None:
    admin = people["admin"]
    rollout = services.rollout_create(change=promoted_change, actor=admin, strategy="global")
    services.rollout_start(rollout=rollout, actor=admin)  # the default moves to v2 at once
    services.override_set(slot=slot, tenant=acme, version=prompt_v1, reason="stay", actor=admin)
    registry.version_deprecate(
        version=prompt_v1, replacement=prompt_v2, reason="old", remove_after_days=30, actor=admin
    )
    html = get(signed_in(admin), "/rollouts/runtime/")
    start = html.index('id="tenant-acme"')
    acme_row = html[start : html.index("</tr>", start)]
    assert prompt_v1.version in acme_row
    assert "override" in acme_row
    assert "cell-deprecated" in acme_row
    assert "deprecated</span>" in acme_row
    assert "cell-differs" in acme_row
    start = html.index('id="tenant-platform"')
    platform_row = html[start : html.index("</tr>", start)]
    assert prompt_v2.version in platform_row
    assert "default" in platform_row
    assert "cell-differs" not in platform_row
    assert "cell-deprecated" not in platform_row


def test_the_phase_manifest_downloads_and_validates(
    people: dict[str, Any], canary_rollout: Rollout
) -> None:
    from rollouts.manifest import manifest_validate

    client = signed_in(people["admin"])
    assert act(client, canary_rollout, "start").status_code == 302
    response = client.get(f"/rollouts/RO-{canary_rollout.number}/phase-manifest.json")
    assert response.status_code == 200
    assert "RO-" in response["Content-Disposition"]
    body = response.json()
    manifest_validate(body)
    assert [p["name"] for p in body["phases"]] == list(AUTONOMY_PHASE_ORDER)
    html = get(client, f"/rollouts/RO-{canary_rollout.number}/")
    assert "phase-manifest.json" in section(html, "phases")
    other = signed_in(people["outsider"])  # sees the platform's rollout, and its manifest
    assert other.get(f"/rollouts/RO-{canary_rollout.number}/phase-manifest.json").status_code == 200


@pytest.mark.usefixtures("people")
def test_the_event_feed_links_rollouts_applications_and_slots_to_their_pages(
    canary_rollout: Rollout, slot: Slot, django_assert_num_queries: Any
) -> None:
    from governance.kernel.events.kinds import EventKind
    from governance.kernel.events.models import Event
    from governance.kernel.events.selectors import subject_url

    events = {
        e.kind: e
        for e in Event.objects.filter(
            kind__in=[
                EventKind.ROLLOUT_CREATED,
                EventKind.APPLICATION_CREATED,
                EventKind.SLOT_CREATED,
            ]
        )
    }
    with django_assert_num_queries(0):
        links = {kind: subject_url(event) for kind, event in events.items()}
    assert links == {
        EventKind.ROLLOUT_CREATED: canary_rollout.get_absolute_url(),
        EventKind.APPLICATION_CREATED: slot.application.get_absolute_url(),
        EventKind.SLOT_CREATED: slot.get_absolute_url(),
    }


def test_an_administrator_documents_the_slot_and_a_member_cannot(
    people: dict[str, Any], slot: Slot
) -> None:
    path = "/rollouts/applications/sales-agent/slots/qualifyLead/"
    member = signed_in(people["outsider"])
    assert 'id="description-form"' not in get(member, path)
    response = member.post(path + "edit/", {"description": "mine now"})
    assert response.status_code == 403
    admin = signed_in(people["admin"])
    assert 'id="description-form"' in get(admin, path)
    response = admin.post(path + "edit/", {"description": "Scores inbound leads 1-5."})
    assert response.status_code == 302
    slot.refresh_from_db()
    assert slot.description == "Scores inbound leads 1-5."
    assert "Scores inbound leads 1-5." in section(get(admin, path), "default")


def test_start_a_rollout_lists_promoted_changes_waiting_for_one(
    people: dict[str, Any], promoted_change: ChangeRequest
) -> None:
    client = signed_in(people["admin"])
    waiting = section(get(client, "/rollouts/new/"), "waiting")
    assert f"?change={promoted_change.reference}" in waiting
    assert "First prompt" not in waiting  # promoted before the slot: its version is the default
    services.rollout_create(change=promoted_change, actor=people["admin"], strategy="canary")
    assert 'id="waiting"' not in get(client, "/rollouts/new/")  # a rollout holds it now


def test_the_page_says_what_blocks_the_canary_and_start_is_refused(
    people: dict[str, Any], canary_rollout: Rollout, platform_prompt: Artifact, prompt_v2: Version
) -> None:
    client = signed_in(people["admin"])
    path = f"/rollouts/RO-{canary_rollout.number}/"
    assert 'id="blockers"' not in get(client, path)
    Artifact.objects.filter(pk=platform_prompt.pk).update(active_version=prompt_v2)  # drift
    html = get(client, path)
    assert "drift-gate fail" in section(html, "blockers")
    assert "phase-drift-gate" in html
    assert 'class="phase phase-fail"' in html
    response = act(client, canary_rollout, "start")
    assert response.status_code == 409
    assert "cannot start its canary" in response.content.decode()
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.DRAFT


def test_a_tenant_rollout_in_waves_from_the_form_paused_and_resumed(
    people: dict[str, Any], promoted_change: ChangeRequest, prompt_v2: Version, globex: Tenant
) -> None:
    client = signed_in(people["admin"])
    response = client.post(
        "/rollouts/new/",
        {
            "change": promoted_change.reference,
            "strategy": "tenant",
            "steps": "acme\nglobex, platform",
            "target": "live",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rollout = Rollout.objects.get()
    assert rollout.steps == [["acme"], ["globex", "platform"]]
    html = get(client, rollout.get_absolute_url())
    assert (
        f"point sales-agent.qualifyLead at {prompt_v2.version} for the tenants of wave 1 (acme)"
        in section(html, "action-start")
    )
    assert act(client, rollout, "start").status_code == 302
    rollout.refresh_from_db()
    html = get(client, "/rollouts/runtime/")
    start = html.index('id="tenant-acme"')
    acme_row = html[start : html.index("</tr>", start)]
    assert prompt_v2.version in acme_row
    assert "wave 1 of 2" in acme_row
    start = html.index('id="tenant-platform"')  # in wave 2: still the default
    platform_row = html[start : html.index("</tr>", start)]
    assert "1.0.0" in platform_row
    assert f"waits for wave 2 of 2 → {prompt_v2.version}" in platform_row
    assert "cell-differs" not in platform_row

    assert act(client, rollout, "pause", password=None, reason="weekend").status_code == 302
    rollout.refresh_from_db()
    html = get(client, rollout.get_absolute_url())
    assert "Paused" in section(html, "rollout-status")
    assert "Resume" in section(html, "actions")
    assert 'id="action-advance"' not in html
    assert act(client, rollout, "resume", password=None).status_code == 400  # why is required
    assert act(client, rollout, "resume", password=None, reason="monday").status_code == 302
    rollout.refresh_from_db()
    assert rollout.state == RolloutState.PROGRESSING
    assert rollout.step == 1
    assert (
        f"Point sales-agent.qualifyLead at {prompt_v2.version} for wave 2 (globex, platform)."
        in section(get(client, rollout.get_absolute_url()), "action-advance")
    )


def test_an_administrator_edits_the_application_and_a_member_cannot(
    people: dict[str, Any], application: Application
) -> None:
    path = "/rollouts/applications/sales-agent/"
    member = signed_in(people["outsider"])
    assert 'id="application-edit-form"' not in get(member, path)
    assert member.post(path + "edit/", {"name": "Mine"}).status_code == 403
    admin = signed_in(people["admin"])
    response = admin.post(path + "edit/", {"name": "", "description": "x"})
    assert response.status_code == 400
    assert "This field is required" in section(response.content.decode(), "application-edit-form")
    response = admin.post(path + "edit/", {"name": "Sales agent v2", "description": "Qualifies."})
    assert response.status_code == 302
    application.refresh_from_db()
    assert (application.name, application.description) == ("Sales agent v2", "Qualifies.")
    assert "Qualifies." in section(get(admin, path), "application-description")
