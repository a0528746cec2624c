"""REST API of applications, slots, overrides and rollouts: data, refusals with fields, 409s.

Every write goes through ``rollouts.services``; refusals are 4xx naming the field; another
tenant's rollout reads as missing; ``allowed`` follows ``rollouts.permissions``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Tenant
from registry.models import Artifact, Version
from reviews.models import ChangeRequest
from rollouts import services
from rollouts.choices import CANARY_DEFAULT_STEPS
from rollouts.models import Application, Override, PointerMove, Rollout, Slot
from tests.reviews.conftest import PINS, make_artifact, publish

APPS = "/api/v1/applications/"
ROLLOUTS = "/api/v1/rollouts/"
SLOT = "/api/v1/applications/sales-agent/slots/qualifyLead/"


def error(resp: Any) -> tuple[int, str | None]:
    return resp.status_code, resp.json()["error"]["field"]


@pytest.fixture
def admin(token_client: Callable[..., APIClient], people: dict[str, Any]) -> APIClient:
    return token_client(people["admin"])


@pytest.fixture
def acme_admin(token_client: Callable[..., APIClient], people: dict[str, Any]) -> APIClient:
    return token_client(people["acme_admin"])


@pytest.fixture
def outsider(token_client: Callable[..., APIClient], people: dict[str, Any]) -> APIClient:
    return token_client(people["outsider"])


# --- applications and slots -------------------------------------------------------------------


@pytest.mark.usefixtures("admin")
def test_applications_list_create_update_and_refusals(
    acme_admin: APIClient, outsider: APIClient, application: Application
) -> None:
    shared = outsider.get(APPS).json()
    assert [(a["slug"], a["tenant"], a["shared"]) for a in shared] == [
        ("sales-agent", "platform", True)
    ]
    resp = acme_admin.post(
        APPS, {"tenant": "acme", "slug": "support-bot", "name": "Support bot"}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert (body["slug"], body["tenant"], body["shared"], body["created_by"]) == (
        "support-bot",
        "acme",
        False,
        "acme_admin",
    )
    assert Application.objects.get(slug="support-bot").tenant.slug == "acme"
    assert [a["slug"] for a in outsider.get(APPS).json()] == ["sales-agent", "support-bot"]
    # refusals name the field
    assert (
        error(acme_admin.post(APPS, {"tenant": "acme", "slug": "Bad Slug", "name": "x"}))[1]
        == "slug"
    )
    dup = acme_admin.post(
        APPS, {"tenant": "acme", "slug": "support-bot", "name": "x"}, format="json"
    )
    assert error(dup) == (409, "slug")
    assert error(acme_admin.post(APPS, {"tenant": "acme", "slug": "x"}, format="json")) == (
        400,
        "name",
    )
    assert (
        error(outsider.post(APPS, {"tenant": "acme", "slug": "mine", "name": "x"}, format="json"))[
            0
        ]
        == 403
    )
    assert error(
        acme_admin.post(APPS, {"tenant": "globex", "slug": "x", "name": "x"}, format="json")
    ) == (404, "tenant")
    # update
    resp = acme_admin.patch(f"{APPS}support-bot/", {"name": "Support assistant"}, format="json")
    assert resp.json()["name"] == "Support assistant"
    assert error(outsider.patch(f"{APPS}sales-agent/", {"name": "x"}, format="json"))[0] == 403
    assert error(outsider.get(f"{APPS}no-such-app/")) == (404, "application")


@pytest.mark.usefixtures("admin")
def test_slots_create_list_detail_with_default_and_history(
    acme_admin: APIClient,
    outsider: APIClient,
    slot: Slot,
    prompt_v1: Version,
    platform_prompt: Artifact,
    acme: Tenant,
    people: dict[str, Any],
    promote: Callable[..., Any],
) -> None:
    rows = outsider.get(f"{APPS}sales-agent/slots/").json()
    assert [(s["name"], s["artifact"], s["default"]["version"]) for s in rows] == [
        ("qualifyLead", platform_prompt.path, prompt_v1.version)
    ]
    detail = outsider.get(SLOT).json()
    assert detail["default"] == {
        "path": prompt_v1.path,
        "version": prompt_v1.version,
        "sha256": prompt_v1.manifest_sha256,
    }
    assert detail["description"] == "Qualifies inbound leads."
    assert (detail["overrides"], detail["rollouts"], detail["history"]) == ([], [], [])
    # an acme application may bind an acme artifact or a platform one, with an active version
    services.application_create(tenant=acme, slug="acme-bot", name="Acme bot", actor=None)
    own = make_artifact(acme, "prompt", "greet", owner=people["acme_admin"])
    unpublished = make_artifact(acme, "prompt", "empty", owner=people["acme_admin"])
    v = publish(own, impact="major", text="Hello {{ customer }}.", metadata=PINS)
    promote(v, tenant=acme)
    url = f"{APPS}acme-bot/slots/"
    resp = acme_admin.post(
        url, {"name": "greet", "artifact": own.path, "description": "Greets."}, format="json"
    )
    assert resp.status_code == 201, resp.json()
    assert (resp.json()["name"], resp.json()["default"]["version"]) == ("greet", v.version)
    resp = acme_admin.post(url, {"name": "shared", "artifact": platform_prompt.path})
    assert resp.status_code == 201
    assert resp.json()["artifact"] == platform_prompt.path
    assert error(acme_admin.post(url, {"name": "greet", "artifact": own.path})) == (409, "name")
    assert error(acme_admin.post(url, {"name": "x", "artifact": unpublished.path})) == (
        409,
        "artifact",
    )
    assert error(acme_admin.post(url, {"name": "x", "artifact": "prompt/acme/ghost"})) == (
        404,
        "artifact",
    )
    assert error(acme_admin.post(url, {"name": "x", "artifact": "nonsense"}))[1] == "artifact"
    assert error(acme_admin.post(url, {"name": "9lives", "artifact": own.path})) == (400, "name")
    assert error(outsider.post(url, {"name": "y", "artifact": own.path}))[0] == 403
    assert error(outsider.get(f"{APPS}acme-bot/slots/nope/")) == (404, "name")
    resp = acme_admin.patch(f"{url}greet/", {"description": "Says hello."}, format="json")
    assert resp.json()["description"] == "Says hello."


def test_overrides_set_and_clear_with_reason_and_fail_closed(
    acme_admin: APIClient,
    outsider: APIClient,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    promoted_change: ChangeRequest,
    platform_prompt: Artifact,
    globex: Tenant,
    make_user: Any,
    token_client: Callable[..., APIClient],
) -> None:
    url = f"{SLOT}overrides/acme/"
    assert error(acme_admin.get(url)) == (404, "tenant")
    resp = acme_admin.put(url, {"version": prompt_v2.version, "reason": "try it"}, format="json")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert (body["tenant"], body["version"]["path"], body["reason"], body["set_by"]) == (
        "acme",
        prompt_v2.path,
        "try it",
        "acme_admin",
    )
    assert Override.objects.get(slot=slot).version == prompt_v2
    assert acme_admin.get(url).json()["version"]["version"] == prompt_v2.version
    detail = outsider.get(SLOT).json()
    assert [(o["tenant"], o["version"]["version"]) for o in detail["overrides"]] == [
        ("acme", prompt_v2.version)
    ]
    (move,) = detail["history"]
    assert (move["kind"], move["tenant"], move["from"], move["to"]["version"], move["actor"]) == (
        "override",
        "acme",
        None,
        prompt_v2.version,
        "acme_admin",
    )
    # a globex member sees neither acme's override nor its move on the shared slot
    stranger = token_client(make_user("stranger", globex="member"))
    assert stranger.get(SLOT).json()["overrides"] == []
    assert stranger.get(SLOT).json()["history"] == []
    # refusals: a draft never becomes a pointer; the reason is required; members cannot
    draft = publish(platform_prompt, text="Draft {{ customer }}.", metadata=PINS)
    resp = acme_admin.put(url, {"version": draft.version, "reason": "x"}, format="json")
    assert error(resp) == (409, "version")
    assert "draft" in resp.json()["error"]["message"]
    assert error(acme_admin.put(url, {"version": "9.9.9", "reason": "x"}, format="json")) == (
        404,
        "version",
    )
    assert error(acme_admin.put(url, {"version": prompt_v1.version}, format="json")) == (
        400,
        "reason",
    )
    assert error(outsider.put(url, {"version": prompt_v1.version, "reason": "x"}))[0] == 403
    assert error(acme_admin.put(f"{SLOT}overrides/globex/", {"version": "1", "reason": "x"})) == (
        404,
        "tenant",
    )
    assert Override.objects.get(slot=slot).version == prompt_v2
    # clear: the reason is required (body or ?reason=)
    assert error(acme_admin.delete(url)) == (400, "reason")
    assert acme_admin.delete(url, {"reason": "enough"}, format="json").status_code == 204
    assert not Override.objects.exists()
    assert error(acme_admin.delete(f"{url}?reason=again")) == (409, "tenant")
    moves = PointerMove.objects.filter(slot=slot).order_by("id")
    assert [(m.from_version, m.to_version, m.reason) for m in moves] == [
        (None, prompt_v2, "try it"),
        (prompt_v2, None, "enough"),
    ]


# --- rollouts ----------------------------------------------------------------------------------


def test_start_a_canary_from_a_promoted_change_and_walk_it(
    admin: APIClient,
    outsider: APIClient,
    promoted_change: ChangeRequest,
    slot: Slot,
    prompt_v1: Version,
    prompt_v2: Version,
    platform_prompt: Artifact,
) -> None:
    resp = admin.post(
        ROLLOUTS,
        {"change": promoted_change.reference, "strategy": "canary", "reason": "go", "start": True},
        format="json",
    )
    assert resp.status_code == 201, resp.json()
    body = resp.json()
    assert (body["reference"], body["state"], body["step"], body["revision"]) == (
        "RO-1",
        "progressing",
        1,
        2,
    )
    assert (body["weight"], body["weight_percent"], body["steps"]) == (
        1_000,
        1.0,
        CANARY_DEFAULT_STEPS,
    )
    assert (body["change"], body["tenant"], body["strategy"], body["target"]) == (
        promoted_change.reference,
        "platform",
        "canary",
        "live",
    )
    (target,) = body["targets"]
    assert (target["slot"], target["baseline"]["version"], target["candidate"]["version"]) == (
        "sales-agent.qualifyLead",
        prompt_v1.version,
        prompt_v2.version,
    )
    assert [(m["kind"], m["weight"], m["to"]["version"]) for m in body["moves"]] == [
        ("canary", 1_000, prompt_v2.version)
    ]
    assert body["manifest"] is None or body["manifest"]["status"] in {"pass", "fail"}
    assert body["canary_blockers"] == []  # phases 1-4 pass: it could start
    assert body["allowed"] == {
        "start": False,
        "advance": True,
        "pause": True,
        "resume": False,
        "abort": True,
        "rollback": True,
        "flag": False,
    }
    assert set(outsider.get(f"{ROLLOUTS}RO-1/").json()["allowed"].values()) == {False}
    assert outsider.get(SLOT).json()["rollouts"] == ["RO-1"]
    # a stale revision is a 409 naming it, and changes nothing
    resp = admin.post(f"{ROLLOUTS}RO-1/advance/", {"revision": 1}, format="json")
    assert error(resp) == (409, "revision")
    assert "RO-1 changed meanwhile" in resp.json()["error"]["message"]
    assert Rollout.objects.get().revision == 2
    body = admin.post(f"{ROLLOUTS}1/advance/", {"revision": 2}, format="json").json()
    assert (body["step"], body["weight"], body["revision"]) == (2, 5_000, 3)
    # pause and resume need a reason; a member may not act
    assert error(admin.post(f"{ROLLOUTS}RO-1/pause/", {}, format="json")) == (400, "reason")
    assert error(outsider.post(f"{ROLLOUTS}RO-1/pause/", {"reason": "x"}))[0] == 403
    body = admin.post(f"{ROLLOUTS}RO-1/pause/", {"reason": "watch"}, format="json").json()
    assert (body["state"], body["weight"]) == ("paused", 5_000)
    assert body["allowed"]["resume"]
    assert not body["allowed"]["advance"]
    resp = admin.post(f"{ROLLOUTS}RO-1/advance/", {}, format="json")
    assert error(resp) == (409, "state")
    assert "resume it first" in resp.json()["error"]["message"]
    body = admin.post(f"{ROLLOUTS}RO-1/resume/", {"reason": "fine"}, format="json").json()
    assert body["state"] == "progressing"
    # the flag action of a canary is refused naming the field
    assert error(admin.post(f"{ROLLOUTS}RO-1/flag/", {"on": True, "reason": "x"}))[1] == "on"
    # roll back: the exact previous pointers, no approvals
    body = admin.post(f"{ROLLOUTS}RO-1/rollback/", {"reason": "regression"}, format="json").json()
    assert (body["state"], body["finished_by"], body["finish_reason"]) == (
        "rolled_back",
        "admin",
        "regression",
    )
    assert not any(body["allowed"].values())
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v1
    assert outsider.get(SLOT).json()["rollouts"] == []


def test_walk_to_success_moves_the_default(
    admin: APIClient, canary_rollout: Rollout, platform_prompt: Artifact, prompt_v2: Version
) -> None:
    body = admin.post(f"{ROLLOUTS}RO-1/start/", {"revision": 1}, format="json").json()
    while body["state"] == "progressing":
        body = admin.post(f"{ROLLOUTS}RO-1/advance/", {"reason": "ok"}, format="json").json()
    assert (body["state"], body["step"], body["weight"]) == ("succeeded", 5, 100_000)
    assert [m["kind"] for m in body["moves"]][-1] == "default"
    assert body["allowed"]["rollback"]
    assert not body["allowed"]["advance"]
    platform_prompt.refresh_from_db()
    assert platform_prompt.active_version == prompt_v2
    slot = admin.get(SLOT).json()
    assert slot["default"]["version"] == prompt_v2.version
    assert slot["history"][0]["kind"] == "default"
    assert slot["history"][0]["slot"] is None


def test_list_filters_by_state_tenant_and_application(
    admin: APIClient, outsider: APIClient, canary_rollout: Rollout, people: dict[str, Any]
) -> None:
    services.rollout_start(rollout=canary_rollout, actor=people["admin"])
    rows = outsider.get(ROLLOUTS).json()["results"]
    assert [(r["reference"], r["state"], r["weight"]) for r in rows] == [
        ("RO-1", "progressing", 1_000)
    ]
    for query, expected in (
        ({"state": "progressing"}, ["RO-1"]),
        ({"state": "draft"}, []),
        ({"tenant": "platform"}, ["RO-1"]),
        ({"application": "sales-agent"}, ["RO-1"]),
    ):
        found = admin.get(ROLLOUTS, query).json()["results"]
        assert [r["reference"] for r in found] == expected, query
    assert error(admin.get(ROLLOUTS, {"state": "sideways"})) == (400, "state")
    assert error(admin.get(ROLLOUTS, {"application": "ghost"})) == (400, "application")


def test_create_refusals_name_the_field(
    admin: APIClient,
    outsider: APIClient,
    promoted_change: ChangeRequest,
    platform_prompt: Artifact,
    promote: Callable[..., Any],
    people: dict[str, Any],
) -> None:
    def create(**body: Any) -> Any:
        return admin.post(ROLLOUTS, {"change": promoted_change.reference, **body}, format="json")

    assert error(create(strategy="sideways")) == (400, "strategy")
    assert error(create(steps=[0, 100_000])) == (400, "steps")
    assert error(create(steps=[5_000, 1_000, 100_000])) == (400, "steps")
    assert error(create(target="paper")) == (400, "cohort")
    assert error(create(strategy="flag")) == (400, "flag_key")
    assert error(create(strategy="flag", flag_key="new-tone")) == (400, "flag_expires_at")
    assert error(create(flag_expires_at="not a date")) == (400, "flag_expires_at")
    assert error(admin.post(ROLLOUTS, {"change": "CR-2099-9999"}, format="json")) == (
        404,
        "change",
    )
    assert error(admin.post(ROLLOUTS, {}, format="json")) == (400, "change")
    assert error(outsider.post(ROLLOUTS, {"change": promoted_change.reference}))[0] in {403, 404}
    assert not Rollout.objects.exists()
    # a major version may not go global: the refusal names the allowed strategies
    major = publish(platform_prompt, impact="major", text="New {{ customer }}!", metadata=PINS)
    change = promote(major, title="Major")
    resp = admin.post(ROLLOUTS, {"change": change.reference, "strategy": "global"}, format="json")
    assert error(resp) == (400, "strategy")
    assert "Use a tenant, flag or canary rollout" in resp.json()["error"]["message"]
    # a change that is not promoted cannot be rolled out
    from reviews import services as reviews

    draft = reviews.change_create(
        tenant=promoted_change.tenant,
        actor=people["author"],
        title="Not yet",
        rollback_plan="Back.",
        proposed=[publish(platform_prompt, text="Later {{ customer }}.", metadata=PINS)],
    )
    assert error(admin.post(ROLLOUTS, {"change": draft.reference}, format="json")) == (
        409,
        "change",
    )


def test_another_tenants_rollout_is_missing_and_unknown_actions_are_named(
    acme: Tenant,
    globex: Tenant,
    people: dict[str, Any],
    make_user: Any,
    token_client: Callable[..., APIClient],
    promote: Callable[..., Any],
    admin: APIClient,
) -> None:
    # an acme-owned application, slot and rollout (not the platform's: not shared)
    own = make_artifact(acme, "prompt", "greet", owner=people["acme_admin"])
    v1 = publish(own, impact="major", text="Hello {{ customer }}.", metadata=PINS)
    promote(v1, tenant=acme)
    app = services.application_create(tenant=acme, slug="acme-bot", name="Acme", actor=None)
    services.slot_create(application=app, name="greet", artifact=own, actor=None)
    v2 = publish(own, text="Hello, {{ customer }}.", metadata=PINS)
    rollout = services.rollout_create(change=promote(v2, tenant=acme), actor=None)
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    for ref in (rollout.reference, str(rollout.number), "RO-999", "nonsense"):
        assert error(stranger.get(f"{ROLLOUTS}{ref}/")) == (404, "rollout"), ref
        assert error(stranger.post(f"{ROLLOUTS}{ref}/start/", {}, format="json")) == (
            404,
            "rollout",
        )
    assert stranger.get(ROLLOUTS).json()["results"] == []
    assert error(stranger.get(f"{APPS}acme-bot/")) == (404, "application")
    assert error(stranger.get(f"{APPS}acme-bot/slots/greet/")) == (404, "application")
    assert Rollout.objects.get().state == "draft"
    resp = admin.post(f"{ROLLOUTS}{rollout.reference}/frobnicate/", {}, format="json")
    assert error(resp) == (404, "action")
    assert "advance" in resp.json()["error"]["message"]


def test_openapi_documents_the_rollout_endpoints(api: APIClient) -> None:
    schema = json.loads(
        api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    paths = schema["paths"]
    assert {
        "/api/v1/applications/",
        "/api/v1/applications/{slug}/",
        "/api/v1/applications/{slug}/slots/",
        "/api/v1/applications/{slug}/slots/{name}/",
        "/api/v1/applications/{slug}/slots/{name}/overrides/{tenant}/",
        "/api/v1/rollouts/",
        "/api/v1/rollouts/{number}/",
        *(
            f"/api/v1/rollouts/{{number}}/{action}/"
            for action in ("start", "advance", "pause", "resume", "abort", "rollback", "flag")
        ),
    } <= set(paths)
    assert {"put", "delete", "get"} <= set(
        paths["/api/v1/applications/{slug}/slots/{name}/overrides/{tenant}/"]
    )
    components = schema["components"]["schemas"]
    assert {"targets", "moves", "manifest", "allowed", "revision", "weight"} <= set(
        components["RolloutDetail"]["properties"]
    )
    advance = paths["/api/v1/rollouts/{number}/advance/"]["post"]
    ref = advance["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert "revision" in components[ref.rsplit("/", 1)[1]]["properties"]
    params = {p["name"] for p in paths["/api/v1/rollouts/"]["get"]["parameters"]}
    assert {"state", "tenant", "application"} <= params


def test_the_list_and_the_detail_cost_the_same_queries_however_many_rows(
    admin: APIClient,
    canary_rollout: Rollout,
    promoted_change: ChangeRequest,
    people: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    services.rollout_start(rollout=canary_rollout, actor=people["admin"])
    admin.get(ROLLOUTS)  # warm the token's last_used_at
    with django_assert_max_num_queries(20) as few:
        assert len(admin.get(ROLLOUTS).json()["results"]) == 1
    with django_assert_max_num_queries(40) as detail:
        admin.get(f"{ROLLOUTS}RO-1/")
    for _ in range(3):  # more rollouts, and more moves on the newest
        rollout = Rollout.objects.order_by("-number").first()
        assert rollout is not None
        services.rollout_abort(rollout=rollout, actor=None, reason="again")
        again = services.rollout_create(change=promoted_change, actor=None)
        services.rollout_start(rollout=again, actor=None)
        services.rollout_advance(rollout=again, actor=None)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(admin.get(ROLLOUTS).json()["results"]) == 4
    with django_assert_max_num_queries(len(detail.captured_queries)):
        assert len(admin.get(f"{ROLLOUTS}RO-4/").json()["moves"]) == 2
