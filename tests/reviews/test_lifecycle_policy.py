"""Stage criteria as data: which policy is in force, saving a new version (service, page, API,
CLI), refusals naming the part at fault, and the version page's checklist query count."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.choices import Stage
from reviews import lifecycle, services
from reviews.lifecycle.policy import DEFAULT_CRITERIA
from reviews.models import LifecyclePolicy
from tests.cli import refused
from tests.reviews import lifecycle_world

DRAFT_ONLY_RISK = {"*": {"draft": ["risk_note"]}, "model": {"draft": ["classification"]}}


def save(tenant: Any, actor: Any, **kw: Any) -> LifecyclePolicy:
    kw.setdefault("criteria", DRAFT_ONLY_RISK)
    kw.setdefault("enforced", True)
    kw.setdefault("reproducibility_tolerance", 0.05)
    kw.setdefault("recertify_within_days", 10)
    kw.setdefault("reason", "fewer criteria while we start")
    return services.lifecycle_policy_set(tenant=tenant, actor=actor, **kw)


def test_the_built_in_table_then_the_platform_default_then_the_tenants_own(
    acme: Any, people: dict[str, Any], settings: Any
) -> None:
    settings.LIFECYCLE_ENFORCED_DEFAULT = False
    built_in = lifecycle.policy_for(acme, "prompt")
    assert (built_in.scope, built_in.enforced) == ("built-in", False)
    assert built_in.criteria == DEFAULT_CRITERIA["*"]
    services.lifecycle_policy_set(
        tenant=None,
        criteria={"*": {"approved": ["governance_review"]}},
        enforced=True,
        reproducibility_tolerance=0.02,
        recertify_within_days=7,
        reason="platform",
        actor=None,
    )
    default = lifecycle.policy_for(acme, "prompt")
    assert (default.scope, default.enforced, default.reproducibility_tolerance) == (
        "default",
        True,
        0.02,
    )
    assert default.criteria["approved"] == ["governance_review"]
    assert default.criteria["draft"] == DEFAULT_CRITERIA["*"]["draft"]  # not named: the table's
    save(acme, people["admin"], enforced=False)
    own = lifecycle.policy_for(acme, "prompt")
    assert (own.scope, own.enforced, own.recertify_within_days) == ("tenant", False, 10)
    assert own.criteria["draft"] == ["risk_note"]
    # A class's own entry wins over "*", stage by stage.
    assert lifecycle.policy_for(acme, "model").criteria["draft"] == ["classification"]


def test_saving_makes_a_numbered_version_and_its_event(acme: Any, people: dict[str, Any]) -> None:
    first = save(acme, people["admin"])
    second = save(acme, people["admin"], enforced=False, reason="advisory for the pilot")
    assert (first.number, second.number) == (1, 2)
    assert LifecyclePolicy.objects.filter(tenant=acme).count() == 2
    event = Event.objects.filter(kind=EventKind.LIFECYCLE_POLICY_UPDATED).order_by("-seq").first()
    assert event is not None
    assert event.payload["number"] == 2
    assert event.payload["enforced"] is False
    assert event.payload["criteria"] == DRAFT_ONLY_RISK
    assert event.payload["reason"] == "advisory for the pilot"
    assert event.actor == people["admin"]


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"criteria": {"*": {"drafty": ["risk_note"]}}},
            "criteria.*.drafty",
            "'drafty' is not a stage",
        ),
        (
            {"criteria": {"*": {"draft": ["risk_notes"]}}},
            "criteria.*.draft",
            "'risk_notes' is not a criterion",
        ),
        (
            {"criteria": {"no-such-class": {"draft": []}}},
            "criteria.no-such-class",
            "not an artifact class",
        ),
        ({"criteria": []}, "criteria", "JSON object"),
        ({"reproducibility_tolerance": -1}, "reproducibility_tolerance", "from 0 up"),
        ({"recertify_within_days": 0}, "recertify_within_days", "1 to 365"),
        ({"reason": ""}, "reason", ""),
    ],
)
def test_a_bad_policy_is_refused_naming_the_part(
    acme: Any, people: dict[str, Any], changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(DomainError) as bad:
        save(acme, people["admin"], **changes)
    assert bad.value.field == field
    assert words in bad.value.message
    assert not LifecyclePolicy.objects.exists()


def test_active_criteria_may_be_named(acme: Any, people: dict[str, Any]) -> None:
    row = save(acme, people["admin"], criteria={"*": {"active": ["monitoring", "alert_routing"]}})
    assert row.criteria == {"*": {"active": ["monitoring", "alert_routing"]}}


def test_only_an_administrator_changes_the_criteria(acme: Any, people: dict[str, Any]) -> None:
    with pytest.raises(Forbidden) as refused_:
        save(acme, people["reviewer"])
    assert "administrator" in refused_.value.message
    with pytest.raises(Forbidden):
        save(None, people["admin"])  # the platform default: platform administrators only


def test_a_saved_advisory_policy_refuses_nothing(
    lifecycle_enforced: None, acme: Any, people: dict[str, Any]
) -> None:
    save(acme, people["admin"], criteria=DEFAULT_CRITERIA, enforced=False)
    change = lifecycle_world.build(people, acme, "risk_note")
    version = change.items.get().proposed
    services.change_promote(change=change, actor=people["admin"])
    assert version.artifact.__class__.objects.get(pk=version.artifact_id).active_version == version


def test_a_saved_enforced_policy_asks_only_its_criteria(acme: Any, people: dict[str, Any]) -> None:
    # Advisory by default in the suite: the tenant's own enforced row decides.
    save(
        acme,
        people["admin"],
        criteria={"*": {s: [] for s in lifecycle.STAGES} | {"draft": ["risk_note"]}},
    )
    change = lifecycle_world.build(people, acme, "risk_note")
    version = change.items.get().proposed
    with pytest.raises(DomainError) as refused_:
        services.change_promote(change=change, actor=people["admin"])
    assert [j.criterion.key for j in lifecycle.unmet(version, Stage.ACTIVE, change)] == [
        "risk_note"
    ]
    assert "Risk note" in refused_.value.message


# --- the page ---------------------------------------------------------------------------------


def test_the_page_shows_the_criteria_and_saves_a_version(
    client: Any, acme: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["admin"])
    body = client.get("/reviews/policy/acme/stages/").content.decode()
    assert "The built-in criteria, the seed's table" in body
    assert "Reproducibility confirmed" in body
    response = client.post(
        "/reviews/policy/acme/stages/",
        {
            "criteria": json.dumps(DRAFT_ONLY_RISK),
            "enforced": "on",
            "reproducibility_tolerance": "0.05",
            "recertify_within_days": "10",
            "reason": "fewer",
        },
    )
    assert response.status_code == 302
    row = LifecyclePolicy.objects.get(tenant=acme)
    assert (row.number, row.criteria, row.enforced) == (1, DRAFT_ONLY_RISK, True)
    body = client.get("/reviews/policy/acme/stages/").content.decode()
    assert "Version 1 of acme's own criteria" in body


def test_the_page_names_a_bad_key_on_the_criteria_field(
    client: Any, acme: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["admin"])
    response = client.post(
        "/reviews/policy/acme/stages/",
        {
            "criteria": json.dumps({"*": {"draft": ["nope"]}}),
            "reproducibility_tolerance": "0.01",
            "recertify_within_days": "14",
            "reason": "typo",
        },
    )
    assert response.status_code == 400
    assert response.context["form"].errors["criteria"] == [
        "'nope' is not a criterion (in criteria.*.draft)."
    ]
    assert not LifecyclePolicy.objects.exists()


def test_the_page_refuses_a_member_with_the_reason(
    client: Any, acme: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["author"])
    page = client.get("/reviews/policy/acme/stages/")
    assert page.context["form"] is None
    response = client.post("/reviews/policy/acme/stages/", {"reason": "x"})
    assert response.status_code == 403
    assert "Only an administrator can change the stage criteria." in response.content.decode()
    assert not LifecyclePolicy.objects.exists()


# --- the API ----------------------------------------------------------------------------------


def test_the_api_reads_and_saves_the_criteria(
    token_client: Any, acme: Any, people: dict[str, Any]
) -> None:
    client = token_client(people["admin"])
    got = client.get("/api/v1/lifecycle-policies/acme/").json()
    assert (got["number"], got["scope"], got["enforced"]) == ("built-in", "built-in", False)
    assert got["criteria"] == DEFAULT_CRITERIA
    put = client.put(
        "/api/v1/lifecycle-policies/acme/",
        {"criteria": DRAFT_ONLY_RISK, "enforced": False, "reason": "pilot"},
        format="json",
    )
    assert put.status_code == 200, put.json()
    body = put.json()
    assert (body["number"], body["scope"], body["enforced"]) == (1, "tenant", False)
    assert body["reproducibility_tolerance"] == 0.01  # not sent: as in force
    assert [h["number"] for h in body["history"]] == [1]
    assert LifecyclePolicy.objects.get(tenant=acme).criteria == DRAFT_ONLY_RISK


def test_the_api_refuses_a_bad_key_naming_the_field_and_a_member(
    token_client: Any, acme: Any, people: dict[str, Any]
) -> None:
    bad = token_client(people["admin"]).put(
        "/api/v1/lifecycle-policies/acme/",
        {"criteria": {"*": {"evaluated": ["vibes"]}}, "reason": "x"},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "criteria.*.evaluated"
    assert "'vibes' is not a criterion" in bad.json()["error"]["message"]
    member = token_client(people["author"]).put(
        "/api/v1/lifecycle-policies/acme/",
        {"criteria": DRAFT_ONLY_RISK, "reason": "x"},
        format="json",
    )
    assert member.status_code == 403
    assert not LifecyclePolicy.objects.exists()


# --- the CLI ----------------------------------------------------------------------------------


def test_the_cli_shows_and_saves_the_criteria(
    acme: Any, people: dict[str, Any], tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("changes", "stage-criteria", "acme", stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("acme: built-in criteria, version built-in, ")
    file = tmp_path / "criteria.json"
    file.write_text(json.dumps(DRAFT_ONLY_RISK))
    out = io.StringIO()
    call_command(
        "changes",
        "stage-criteria",
        "acme",
        "--set",
        str(file),
        "--advisory",
        "--reason",
        "pilot",
        "--as",
        "admin",
        stdout=out,
        stderr=io.StringIO(),
    )
    assert "acme: tenant criteria, version 1, advisory" in out.getvalue()
    row = LifecyclePolicy.objects.get(tenant=acme)
    assert (row.criteria, row.enforced, row.created_by) == (DRAFT_ONLY_RISK, False, people["admin"])


def test_the_cli_refuses_a_bad_key_in_one_line(
    acme: Any, people: dict[str, Any], tmp_path: Path
) -> None:
    file = tmp_path / "criteria.json"
    file.write_text(json.dumps({"*": {"approved": ["vibes"]}}))
    line = refused(
        "changes", "stage-criteria", "acme", "--set", str(file), "--reason", "x", "--as", "admin"
    )
    assert line == "criteria.*.approved: 'vibes' is not a criterion (in criteria.*.approved)."
    assert not LifecyclePolicy.objects.exists()


# --- the checklist ----------------------------------------------------------------------------


def test_the_checklist_s_queries_do_not_grow_with_evidence(
    client: Any,
    acme: Any,
    people: dict[str, Any],
    django_assert_num_queries: Any,
    lifecycle_enforced: None,
) -> None:
    change = lifecycle_world.build(people, acme)
    version = change.items.get().proposed
    client.force_login(people["author"])
    url = version.get_absolute_url()
    client.get(url)  # sessions, caches
    with CaptureQueriesContext(connection) as first:
        body = client.get(url).content.decode()
    assert 'data-criterion="deployment_checklist" data-met="yes"' in body
    assert "Now: Approved" in body
    for _ in range(3):  # more reports, more approvals voided, more checks: the same queries
        lifecycle_world.attach_reports(change, version)
    change.refresh_from_db()
    lifecycle_world.run_pending_checks(change)
    for who in ("reviewer", "admin"):
        services.approval_decide(change=change, actor=people[who], decision="approve")
    with django_assert_num_queries(len(first.captured_queries)):
        body = client.get(url).content.decode()
    assert "Now: Approved" in body
