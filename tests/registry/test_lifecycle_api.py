"""Registry API lifecycle: deprecate, retire, hand over ownership; every version shown says so."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services
from registry.models import Artifact, Deprecation, Retirement, VersionDependency
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
ART = "/api/v1/artifacts/prompt/acme/qualify-lead/"
V1 = "Qualify leads for {{ product }}."
V2 = "Qualify leads for {{ product }}, politely."


def error(resp: Any) -> tuple[int, str | None]:
    body = resp.json()
    assert "error" in body, body
    return resp.status_code, body["error"]["field"]


def deprecate_body(**kw: Any) -> dict[str, Any]:
    return {
        "replacement": "1.1.0",
        "reason": "Politer wording replaces it.",
        "remove_after_days": 30,
        **kw,
    }


@pytest.fixture
def admin(make_user: Any, acme: Any) -> Any:
    return make_user("admin", acme=["member", "administrator"])


@pytest.fixture
def client(admin: Any, token_client: Any) -> APIClient:
    return token_client(admin)


@pytest.fixture
def versions(prompt: Artifact) -> tuple[Any, Any]:
    return publish(prompt, V1, "major"), publish(prompt, V2)


def events(kind: str) -> int:
    return Event.objects.filter(kind=kind).count()


# --- deprecation ----------------------------------------------------------------------------


def test_deprecate_answers_the_version_with_its_replacement_and_dates(
    client: APIClient, versions: Any
) -> None:
    v1, v2 = versions
    resp = client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert (body["version"], body["stage"], body["retirement"]) == ("1.0.0", "deprecated", None)
    dep = body["deprecation"]
    assert dep["replacement"] == {"path": v2.path, "pinned": v2.pinned}
    assert dep["reason"] == "Politer wording replaces it."
    assert dep["deprecated_by"] == "admin"
    assert dep["removed_at"] is None
    assert dep["override_reason"] is None
    assert dep["dependents"] == []
    stored = Deprecation.objects.get(version=v1)
    assert stored.remove_after - stored.deprecated_at == timedelta(days=30)
    assert dep["remove_after"] == stored.remove_after.isoformat().replace("+00:00", "Z")
    assert events(EventKind.VERSION_DEPRECATED) == 1

    # every answer that shows v1 says so, and v2 says nothing
    listing = client.get(ART + "versions/").json()["results"]
    rows = {row["version"]: row for row in listing}
    assert rows["1.0.0"]["deprecation"]["replacement"]["path"] == v2.path
    assert rows["1.1.0"]["deprecation"] is None
    assert rows["1.1.0"]["retirement"] is None
    assert client.get(ART + "versions/1.0.0/").json()["deprecation"] == dep
    resolved = client.get("/api/v1/resolve/", {"ref": "qualify-lead@1.0.0", "tenant": "acme"})
    assert resolved.json()["deprecation"]["replacement"]["pinned"] == v2.pinned
    artifact = client.get(ART).json()
    # 1.0.0 was recommended (the first version): a deprecated version never is.
    assert artifact["recommended_version"] is None
    assert artifact["recommended"] is None
    assert artifact["active"] is None
    listed = client.get("/api/v1/artifacts/").json()["results"][0]
    assert listed["recommended"] is None
    assert listed["recommended_version"] is None


@pytest.mark.parametrize(
    "replacement",
    ["1.1.0", "prompt/acme/qualify-lead/1.1.0", "qualify-lead@1.1.0", "pinned"],
)
def test_the_replacement_may_be_named_in_any_reference_form(
    client: APIClient, versions: Any, replacement: str
) -> None:
    _, v2 = versions
    ref = v2.pinned if replacement == "pinned" else replacement
    resp = client.post(
        ART + "versions/1.0.0/deprecate/", deprecate_body(replacement=ref), format="json"
    )
    assert resp.status_code == 200, resp.json()
    assert resp.json()["deprecation"]["replacement"]["pinned"] == v2.pinned


@pytest.mark.usefixtures("versions")
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": "nul\x00"}, "reason"),
        ({"remove_after_days": 1}, "remove_after_days"),
        ({"remove_after_days": "soon"}, "remove_after_days"),
        ({"remove_after_days": 99999}, "remove_after_days"),
        ({"remove_after_days": None}, "remove_after_days"),
        ({"replacement": "9.9.9"}, "replacement"),
        ({"replacement": "1.0.0"}, "replacement"),
        ({"replacement": "prompt/globex/other/1.0.0"}, "replacement"),
        ({"replacement": "!!"}, "replacement"),
        ({"replacement": ""}, "replacement"),
        ({"replacement": "qualify-lead:1.1.0#" + "0" * 64}, "replacement"),
    ],
)
def test_bad_deprecations_name_the_field_and_write_nothing(
    client: APIClient, changes: Any, field: str
) -> None:
    payload = {k: v for k, v in deprecate_body(**changes).items() if v is not None}
    before = Event.objects.count()
    resp = client.post(ART + "versions/1.0.0/deprecate/", payload, format="json")
    assert error(resp) == (400, field), resp.json()
    assert not Deprecation.objects.exists()
    assert Event.objects.count() == before


def test_a_replacement_in_another_tenant_is_refused(
    client: APIClient, admin: Any, versions: Any, globex: Any, prompt_class: Any
) -> None:
    from accounts import services as accounts

    accounts.membership_add(user=admin, tenant=globex, actor=None)
    other = services.artifact_create(
        artifact_class=prompt_class, tenant=globex, slug="qualify-lead", title="x", actor=None
    )
    foreign = publish(other, V2)
    resp = client.post(
        ART + "versions/1.0.0/deprecate/",
        deprecate_body(replacement=foreign.path),
        format="json",
    )
    assert error(resp) == (400, "replacement")
    assert not Deprecation.objects.exists()


def test_deprecating_twice_or_the_active_version_is_a_conflict(
    client: APIClient, versions: Any, prompt: Artifact
) -> None:
    _, v2 = versions
    ok = client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert ok.status_code == 200
    again = client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert error(again) == (409, "version")
    Artifact.objects.filter(pk=prompt.pk).update(active_version=v2)
    active = client.post(
        ART + "versions/1.1.0/deprecate/", deprecate_body(replacement="1.0.0"), format="json"
    )
    assert error(active) == (409, "version")
    assert Deprecation.objects.count() == 1


def test_a_version_active_versions_depend_on_needs_an_override_reason(
    client: APIClient, versions: Any, acme: Any, prompt_class: Any
) -> None:
    v1, _ = versions
    router = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="router", title="Router", actor=None
    )
    uses = publish(router, "Route {{ x }}.", "major", dependencies=[v1.pinned])
    Artifact.objects.filter(pk=router.pk).update(active_version=uses)
    assert VersionDependency.objects.filter(upstream=v1).exists()
    refused = client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert error(refused) == (409, "override_reason")
    assert uses.path in refused.json()["error"]["message"]
    assert not Deprecation.objects.exists()
    resp = client.post(
        ART + "versions/1.0.0/deprecate/",
        deprecate_body(override_reason="The router moves next week."),
        format="json",
    )
    assert resp.status_code == 200, resp.json()
    dep = resp.json()["deprecation"]
    assert dep["dependents"] == [uses.path]
    assert dep["override_reason"] == "The router moves next week."


@pytest.mark.usefixtures("versions")
def test_a_removed_version_says_when_it_was_removed(client: APIClient) -> None:
    client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    removed = services.deprecations_remove_due(now=timezone.now() + timedelta(days=31))
    assert len(removed) == 1
    body = client.get(ART + "versions/1.0.0/").json()  # the record stays
    assert body["deprecation"]["removed_at"] is not None
    listing = client.get(ART + "versions/").json()["results"]
    assert [v["version"] for v in listing] == ["1.1.0", "1.0.0"]


# --- retirement -----------------------------------------------------------------------------


@pytest.mark.usefixtures("versions")
def test_retire_moves_a_version_to_simulation_only(client: APIClient) -> None:
    resp = client.post(
        ART + "versions/1.0.0/retire/", {"rationale": "Below the safety gate."}, format="json"
    )
    assert resp.status_code == 200, resp.json()
    body = resp.json()
    assert body["stage"] == "simulation_only"
    assert body["deprecation"] is None
    ret = body["retirement"]
    assert (ret["rationale"], ret["retired_by"]) == ("Below the safety gate.", "admin")
    stored = Retirement.objects.get()
    assert stored.retain_until > stored.retired_at + timedelta(days=365)
    rows = {r["version"]: r for r in client.get(ART + "versions/").json()["results"]}
    assert rows["1.0.0"]["retirement"]["rationale"] == "Below the safety gate."
    assert rows["1.1.0"]["retirement"] is None
    assert events(EventKind.VERSION_RETIRED) == 1
    again = client.post(ART + "versions/1.0.0/retire/", {"rationale": "again"}, format="json")
    assert error(again) == (409, "version")
    deprecate = client.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert error(deprecate) == (409, "version")


@pytest.mark.usefixtures("versions")
@pytest.mark.parametrize("payload", [{}, {"rationale": ""}, {"rationale": " \n "}])
def test_retire_needs_a_rationale(client: APIClient, payload: Any) -> None:
    assert error(client.post(ART + "versions/1.0.0/retire/", payload, format="json")) == (
        400,
        "rationale",
    )
    assert not Retirement.objects.exists()
    assert events(EventKind.VERSION_RETIRED) == 0


def test_only_administrators_deprecate_or_retire(
    author: Any, token_client: Any, versions: Any
) -> None:
    member = token_client(author)
    resp = member.post(ART + "versions/1.0.0/deprecate/", deprecate_body(), format="json")
    assert resp.status_code == 403
    assert resp.json()["error"]["code"] == "permission_denied"
    resp = member.post(ART + "versions/1.0.0/retire/", {"rationale": "x"}, format="json")
    assert resp.status_code == 403
    assert not Deprecation.objects.exists()
    assert not Retirement.objects.exists()


# --- ownership ------------------------------------------------------------------------------


def test_owner_handover_is_logged(
    client: APIClient, make_user: Any, prompt: Artifact, author: Any
) -> None:
    make_user("newbie", acme="member")
    resp = client.post(ART + "owner/", {"owner": "newbie", "reason": "Team move"}, format="json")
    assert resp.status_code == 200, resp.json()
    assert resp.json()["owner"] == "newbie"
    assert resp.json()["path"] == prompt.path
    event = Event.objects.get(kind=EventKind.OWNERSHIP_CHANGED)
    assert event.payload["from"] == "author"
    assert event.payload["to"] == "newbie"
    same = client.post(ART + "owner/", {"owner": "newbie", "reason": "again"}, format="json")
    assert error(same) == (409, "owner")


@pytest.mark.usefixtures("globex")
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"owner": "ghost", "reason": "x"}, "owner"),
        ({"owner": "outsider", "reason": "x"}, "owner"),
        ({"owner": "", "reason": "x"}, "owner"),
        ({"owner": "newbie"}, "reason"),
        ({"owner": "newbie", "reason": "  "}, "reason"),
    ],
)
def test_bad_owner_changes_name_the_field(
    client: APIClient, make_user: Any, prompt: Artifact, payload: Any, field: str
) -> None:
    make_user("newbie", acme="member")
    make_user("outsider", globex="member")
    assert error(client.post(ART + "owner/", payload, format="json")) == (400, field)
    assert Artifact.objects.get(pk=prompt.pk).owner.username == "author"
    assert events(EventKind.OWNERSHIP_CHANGED) == 0


def test_only_the_owner_or_an_administrator_hands_over(
    make_user: Any, token_client: Any, prompt: Artifact
) -> None:
    make_user("newbie", acme="member")
    bystander = token_client(make_user("bystander", acme="member"))
    resp = bystander.post(ART + "owner/", {"owner": "newbie", "reason": "mine"}, format="json")
    assert resp.status_code == 403
    assert Artifact.objects.get(pk=prompt.pk).owner.username == "author"


# --- tenants, queries, schema ---------------------------------------------------------------


@pytest.mark.usefixtures("globex", "versions")
def test_other_tenants_artifacts_are_not_found(make_user: Any, token_client: Any) -> None:
    stranger = token_client(make_user("stranger", globex=["member", "administrator"]))
    for path, payload in (
        (ART + "versions/1.0.0/deprecate/", deprecate_body()),
        (ART + "versions/1.0.0/retire/", {"rationale": "x"}),
        (ART + "owner/", {"owner": "stranger", "reason": "x"}),
    ):
        resp = stranger.post(path, payload, format="json")
        assert resp.status_code == 404, (path, resp.json())
        assert resp.json()["error"]["code"] == "not_found"
    assert not Deprecation.objects.exists()
    assert not Retirement.objects.exists()


def test_lists_cost_the_same_queries_for_more_deprecated_rows(
    client: APIClient, admin: Any, prompt: Artifact, acme: Any, prompt_class: Any
) -> None:
    def deprecate_all_but_last(artifact: Artifact, count: int) -> None:
        made = [
            publish(artifact, f"{V1} {i}", "major" if i == 0 else "patch") for i in range(count)
        ]
        for old in made[:-1]:
            services.version_deprecate(
                version=old, replacement=made[-1], reason="old", remove_after_days=30, actor=admin
            )

    deprecate_all_but_last(prompt, 2)
    client.get(ART)  # the token's last-used stamp is written on the first request only
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(ART + "versions/").json()["results"]) == 2
    with CaptureQueriesContext(connection) as few_artifacts:
        client.get("/api/v1/artifacts/")
    other = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="other", title="Other", actor=None
    )
    deprecate_all_but_last(other, 3)
    extra = publish(prompt, V2 + " more")
    services.version_retire(version=extra, rationale="superseded", actor=admin)
    publish(prompt, V2 + " again")
    with CaptureQueriesContext(connection) as many:
        rows = client.get(ART + "versions/").json()["results"]
    assert len(rows) == 4
    assert rows[1]["retirement"]["rationale"] == "superseded"
    assert len(many.captured_queries) == len(few.captured_queries)
    with CaptureQueriesContext(connection) as many_artifacts:
        assert len(client.get("/api/v1/artifacts/").json()["results"]) == 2
    assert len(many_artifacts.captured_queries) == len(few_artifacts.captured_queries)


def test_the_schema_documents_the_lifecycle_actions(client: APIClient) -> None:
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    base = "/api/v1/artifacts/{cls}/{tenant}/{slug}/"
    for path in ("versions/{version}/deprecate/", "versions/{version}/retire/", "owner/"):
        assert "post" in schema["paths"][base + path]
    summary = schema["components"]["schemas"]["VersionSummary"]["properties"]
    assert {"deprecation", "retirement"} <= set(summary)
