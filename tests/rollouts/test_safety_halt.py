"""The safety switch halts resolution (fail closed): snapshot, resolve, the resolve API and OFREP
answer "halted" with no version while it is engaged, at once (the cached answers are keyed by
the generation every event bumps), and the active version serves again on release."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services as registry
from registry.models import Artifact
from rollouts import runtime
from tests.rollouts.runtime_world import World, build_world, canary, override

pytestmark = pytest.mark.django_db

FLAG = "sales-agent.qualifyLead"
HALT = (
    "halted: safety switch engaged on prompt/platform/qualify-lead by boss: Refunds issued twice."
)


@pytest.fixture
def world(db: None, make_user: Any) -> World:
    built = build_world()
    boss = make_user("boss", platform=["member", "administrator"])
    built.extra["boss"] = boss
    built.artifact = registry.artifact_action_eligible_set(
        artifact=built.artifact, value=True, reason="It issues refunds.", actor=boss
    )
    return built


def engage(world: World) -> None:
    registry.safety_switch_engage(
        artifact=world.artifact, reason="Refunds issued twice.", actor=world.extra["boss"]
    )


def release(world: World) -> None:
    registry.safety_switch_release(
        artifact=world.artifact, reason="1.0.1 is out.", actor=world.extra["boss"]
    )


def answer(subject: str | None = None, pin: str | None = None) -> runtime.Answer:
    return runtime.answer("acme", "sales-agent", "qualifyLead", subject=subject, pin=pin)


def test_engaged_the_snapshot_names_no_version_and_says_who_halted_it(world: World) -> None:
    before = runtime.snapshot("acme", "sales-agent")  # warm the cache first
    assert before.body["slots"]["qualifyLead"]["default"] is not None
    engage(world)
    slot = runtime.snapshot("acme", "sales-agent").body["slots"]["qualifyLead"]
    assert slot == {
        "artifact": "prompt/platform/qualify-lead",
        "disabled": True,
        "default": None,
        "override": None,
        "rules": [],
        "warnings": [HALT],
        "halted": HALT,
    }
    assert runtime.snapshot("acme", "sales-agent").body["versions"] == {}
    # The active version is kept: a release serves it again, from the next answer on.
    world.artifact.refresh_from_db()
    assert world.artifact.active_version == world.v["v1"]
    release(world)
    again = runtime.snapshot("acme", "sales-agent").body["slots"]["qualifyLead"]
    assert again["default"] == runtime.version_ref(world.v["v1"])
    assert "halted" not in again


def test_resolve_is_halted_for_every_branch_pins_included(world: World) -> None:
    canary(world, weight=100_000)
    override(world, world.acme, world.v["v3"])
    assert answer("user-1").version == "1.1.0"  # the canary, warm in the cache
    engage(world)
    for got in (answer(), answer("user-1"), answer(pin="1.0.0"), answer(pin="1.2.0")):
        assert (got.reason, got.variant, got.ref, got.version) == ("DISABLED", "halted", None, None)
        assert got.halted == HALT
        assert got.warnings == (HALT,)
    release(world)
    assert answer("user-1").version == "1.1.0"
    assert answer().halted is None


def test_engaging_and_releasing_are_logged(world: World) -> None:
    engage(world)
    release(world)
    kinds = list(
        Event.objects.filter(subject_id=str(world.artifact.pk))
        .order_by("seq")
        .values_list("kind", flat=True)
    )
    assert kinds[-2:] == [EventKind.SAFETY_SWITCH_ENGAGED, EventKind.SAFETY_SWITCH_RELEASED]


def test_a_warm_cache_changes_at_once(world: World, django_assert_num_queries: Any) -> None:
    first = runtime.snapshot("acme", "sales-agent")
    with django_assert_num_queries(0):
        assert runtime.snapshot("acme", "sales-agent") is first
    engage(world)
    halted = runtime.snapshot("acme", "sales-agent")
    assert halted is not first
    assert halted.generation != first.generation
    assert answer().variant == "halted"
    release(world)
    assert answer().version == "1.0.0"


def test_the_snapshot_costs_no_query_more_without_action_eligible_artifacts(world: World) -> None:
    """The switch rows are read only when a slot's artifact is action-eligible."""
    runtime.cache_clear()
    with CaptureQueriesContext(connection) as eligible:
        runtime.snapshot("acme", "sales-agent")
    assert any("safetyswitch" in q["sql"] for q in eligible.captured_queries)
    registry.artifact_action_eligible_set(
        artifact=world.artifact, value=False, reason="Drafts only.", actor=world.extra["boss"]
    )
    runtime.cache_clear()
    with CaptureQueriesContext(connection) as plain:
        runtime.snapshot("acme", "sales-agent")
    assert not any("safetyswitch" in q["sql"] for q in plain.captured_queries)


# --- the API and OFREP ---------------------------------------------------------------------


@pytest.fixture
def ann(world: World, token_client: Any) -> APIClient:
    client: APIClient = token_client(world.ann)
    return client


@pytest.fixture
def machine(world: World) -> APIClient:
    _, raw = accounts.service_token_create(
        tenant=world.acme, name="sales-agent", scopes=["runtime:read"], actor=None
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def post(client: APIClient, **body: Any) -> Any:
    payload = {"tenant": "acme", "application": "sales-agent", "slot": "qualifyLead", **body}
    return client.post("/api/v1/resolve/", payload, format="json")


@pytest.mark.parametrize("who", ["ann", "machine"])
def test_the_resolve_api_answers_409_halted(world: World, who: str, request: Any) -> None:
    client = request.getfixturevalue(who)
    assert post(client).json()["version"] == "1.0.0"
    engage(world)
    got = post(client, subject="user-1")
    assert got.status_code == 409
    data = got.json()
    assert data["error"] == {"code": "halted", "message": HALT, "field": "slot"}
    assert (data["reason"], data["variant"], data["ref"], data["halted"]) == (
        "DISABLED",
        "halted",
        None,
        HALT,
    )
    release(world)
    assert post(client).json()["version"] == "1.0.0"


def test_the_runtime_document_is_halted(world: World, machine: APIClient) -> None:
    first = machine.get("/api/v1/runtime/acme/sales-agent/")
    engage(world)
    got = machine.get("/api/v1/runtime/acme/sales-agent/", HTTP_IF_NONE_MATCH=first.headers["ETag"])
    assert got.status_code == 200  # not 304: the configuration changed
    assert got.json()["snapshot"]["slots"]["qualifyLead"]["halted"] == HALT


def test_ofrep_answers_halted_without_a_value(world: World, machine: APIClient) -> None:
    single = f"/ofrep/v1/evaluate/flags/{FLAG}"
    assert machine.post(single, {"context": {}}, format="json").json()["value"]
    engage(world)
    flag = machine.post(single, {"context": {"targetingKey": "u"}}, format="json").json()
    assert "value" not in flag
    assert (flag["reason"], flag["variant"]) == ("DISABLED", "halted")
    assert flag["metadata"]["halted"] == HALT
    bulk = machine.post("/ofrep/v1/evaluate/flags", {"context": {}}, format="json").json()
    (only,) = [f for f in bulk["flags"] if f["key"] == FLAG]
    assert "value" not in only
    assert only["metadata"]["halted"] == HALT
    release(world)
    flag = machine.post(single, {"context": {}}, format="json").json()
    assert flag["value"] == runtime.version_ref(world.v["v1"])


def test_the_artifact_row_is_unchanged_by_a_halt(world: World) -> None:
    engage(world)
    row = Artifact.objects.get(pk=world.artifact.pk)
    assert row.active_version_id == world.v["v1"].pk
