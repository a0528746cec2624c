"""OFREP: an OpenFeature client with the OFREP provider gets what POST /api/v1/resolve/ answers.

The provider (``openfeature-provider-ofrep``) is pointed at a live server; the plain API client
checks the protocol's error codes, the bulk endpoint and its ETag, and that a warm answer runs
no SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openfeature import api as openfeature
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import Tenant
from registry.models import Artifact
from rollouts import runtime
from rollouts.models import Application, Slot
from tests.rollouts.runtime_world import (
    World,
    build_world,
    canary,
    changed,
    make_active,
    make_artifact,
    override,
    promoted_change,
    publish,
)

FLAG = "sales-agent.qualifyLead"
SINGLE = f"/ofrep/v1/evaluate/flags/{FLAG}"
BULK = "/ofrep/v1/evaluate/flags"


def service_token(tenant: Tenant, scopes: list[str] | None = None) -> str:
    _, raw = accounts.service_token_create(
        tenant=tenant, name="sales-agent", scopes=scopes or ["runtime:read"], actor=None
    )
    return raw


def bearer(raw: str | None) -> APIClient:
    client = APIClient()
    if raw is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def evaluate(client: APIClient, key: str = FLAG, **context: Any) -> Any:
    return client.post(f"/ofrep/v1/evaluate/flags/{key}", {"context": context}, format="json")


def resolve(client: APIClient, subject: str | None = None, pin: str | None = None) -> Any:
    body: dict[str, Any] = {"tenant": "acme", "application": "sales-agent", "slot": "qualifyLead"}
    if subject is not None:
        body["subject"] = subject
    if pin is not None:
        body["pin"] = pin
    return client.post("/api/v1/resolve/", body, format="json").json()


def same_answer(flag: dict[str, Any], resolved: dict[str, Any]) -> None:
    """The OFREP evaluation says what the resolve API said, field for field."""
    assert flag["reason"] == resolved["reason"]
    if resolved["reason"] == "DISABLED":
        assert "value" not in flag
        assert flag["variant"] == "disabled"
    else:
        assert flag["value"] == resolved["ref"]
        assert flag["variant"] == resolved["version"]
    meta = flag["metadata"]
    for name in ("ref", "version", "sha256", "rollout", "rollout_id", "step", "arm", "bucket"):
        assert meta.get(name) == resolved[name], name
    assert meta["sequence"] == resolved["sequence"]
    assert meta["branch"] == resolved["variant"]
    assert meta.get("warnings", "") == "\n".join(resolved["warnings"])
    if resolved["content"] is not None:
        assert meta["content"] == resolved["content"]


# --- the plain API ------------------------------------------------------------------------


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.fixture
def ofrep(world: World) -> APIClient:
    return bearer(service_token(world.acme))


@pytest.fixture
def ann(world: World, token_client: Any) -> APIClient:
    client: APIClient = token_client(world.ann)
    return client


@pytest.mark.django_db
def test_every_reason_answers_as_resolve_does(
    world: World, ofrep: APIClient, ann: APIClient
) -> None:
    got = evaluate(ofrep, targetingKey="user-7")
    assert got.status_code == 200
    v1 = world.v["v1"]
    assert got.json() == {
        "key": FLAG,
        "value": f"qualify-lead:1.0.0#{v1.manifest_sha256}",
        "reason": "DEFAULT",
        "variant": "1.0.0",
        "metadata": {
            "tenant": "acme",
            "application": "sales-agent",
            "slot": "qualifyLead",
            "ref": f"qualify-lead:1.0.0#{v1.manifest_sha256}",
            "path": "prompt/platform/qualify-lead/1.0.0",
            "version": "1.0.0",
            "sha256": v1.manifest_sha256,
            "stage": "active",
            "sequence": runtime.snapshot("acme", "sales-agent").sequence,
            "branch": "default",
            "content_kind": "text",
            "content": "Qualify {{ customer }}.",
        },
    }
    same_answer(got.json(), resolve(ann, "user-7"))
    # STATIC: a pin in the context.
    pinned = evaluate(ofrep, targetingKey="user-7", pin="1.1.0").json()
    assert (pinned["reason"], pinned["variant"]) == ("STATIC", "1.1.0")
    same_answer(pinned, resolve(ann, "user-7", pin="1.1.0"))
    # TARGETING_MATCH: the tenant's override.
    override(world, world.acme, world.v["v3"])
    matched = evaluate(ofrep, targetingKey="user-7").json()
    assert matched["reason"] == "TARGETING_MATCH"
    assert matched["variant"] == world.v["v3"].version
    same_answer(matched, resolve(ann, "user-7"))
    # SPLIT: a 50% canary; every subject gets the arm resolve gives it, the bucket included.
    rollout = canary(world, weight=50_000, salt="ofrep")
    arms = set()
    for n in range(40):
        subject = f"user-{n}"
        flag = evaluate(ofrep, targetingKey=subject).json()
        resolved = resolve(ann, subject)
        same_answer(flag, resolved)
        assert flag["reason"] == "SPLIT"
        assert flag["metadata"]["rollout"] == rollout.reference
        arms.add(flag["metadata"]["arm"])
    assert arms == {"canary", "stable"}
    # No subject: the stable arm's rule is skipped, never a random pick.
    same_answer(evaluate(ofrep).json(), resolve(ann))
    # DISABLED: the slot is switched off; no value, so the provider serves the code's default.
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    off = evaluate(ofrep, targetingKey="user-7")
    assert off.status_code == 200
    assert (off.json()["reason"], off.json()["variant"]) == ("DISABLED", "disabled")
    assert "value" not in off.json()
    same_answer(off.json(), resolve(ann, "user-7"))


@pytest.mark.django_db
def test_a_flag_rollout_and_a_deprecated_version_answer_as_resolve_does(
    world: World, ofrep: APIClient, ann: APIClient
) -> None:
    override(world, world.acme, world.v["deprecated"])
    warned = evaluate(ofrep, targetingKey="s").json()
    assert "is deprecated" in warned["metadata"]["warnings"]
    same_answer(warned, resolve(ann, "s"))
    canary(world, strategy="flag", flag_key="polite", flag_on=True)
    on = evaluate(ofrep, targetingKey="s").json()
    assert (on["reason"], on["variant"], on["metadata"]["branch"]) == (
        "TARGETING_MATCH",
        "1.1.0",
        "on",
    )
    same_answer(on, resolve(ann, "s"))


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["draft", "rejected", "retired", "removed"])
def test_versions_that_may_not_serve_never_resolve(
    world: World, ofrep: APIClient, name: str
) -> None:
    bad = world.v[name]
    canary(world, weight=100_000, candidate=bad)
    override(world, world.acme, bad)
    refused = evaluate(ofrep, targetingKey="s", pin=bad.version)
    assert refused.status_code == 400
    assert refused.json()["errorCode"] == "INVALID_CONTEXT"
    assert refused.json()["errorDetails"].startswith("context.pin:")
    served = evaluate(ofrep, targetingKey="s").json()
    assert (served["variant"], served["reason"]) == ("1.0.0", "DEFAULT")
    bulk = ofrep.post(BULK, {"context": {"targetingKey": "s"}}, format="json").content.decode()
    assert bad.manifest_sha256 not in bulk


@pytest.mark.usefixtures("world")
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        ("[1]", 400, "PARSE_ERROR", "JSON object"),
        ("{not json", 400, "PARSE_ERROR", "not JSON"),
        ('{"context": [1]}', 400, "INVALID_CONTEXT", "'context'"),
        ('{"context": {"targetingKey": 7}}', 400, "INVALID_CONTEXT", "context.targetingKey"),
        ('{"context": {"targetingKey": "' + "x" * 1001 + '"}}', 400, "INVALID_CONTEXT", "longer"),
        ('{"context": {"pin": "qualify-lead"}}', 400, "INVALID_CONTEXT", "context.pin"),
        ('{"context": {"pin": "9.9.9"}}', 400, "INVALID_CONTEXT", "context.pin"),
        ('{"context": {"tenant": "globex"}}', 404, "FLAG_NOT_FOUND", "globex"),
    ],
)
def test_bad_input_answers_as_the_protocol_says(
    ofrep: APIClient, body: str, status: int, code: str, details: str
) -> None:
    got = ofrep.post(SINGLE, body, content_type="application/json")
    assert got.status_code == status, got.content
    data = got.json()
    assert (data["key"], data["errorCode"]) == (FLAG, code)
    assert details in data["errorDetails"]


@pytest.mark.django_db
def test_unknown_flags_and_bad_credentials(world: World, ofrep: APIClient, ann: APIClient) -> None:
    for key, what in [
        ("sales-agent.nope", "No slot 'nope'"),
        ("nope.qualifyLead", "No application 'nope'"),
        ("qualifyLead", "'<application>.<slot>'"),
    ]:
        got = evaluate(ofrep, key)
        assert got.status_code == 404
        assert got.json()["errorCode"] == "FLAG_NOT_FOUND"
        assert what in got.json()["errorDetails"]
    anonymous = evaluate(bearer(None))
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["errorCode"] == "GENERAL"
    personal = evaluate(ann)
    assert personal.status_code == 401
    assert "service token" in personal.json()["errorDetails"]
    wrong = evaluate(bearer("gsv_" + "x" * 40))
    assert wrong.status_code == 401
    no_scope = evaluate(bearer(service_token(world.acme, ["telemetry:write"])))
    assert no_scope.status_code == 403
    assert "runtime:read" in no_scope.json()["errorDetails"]
    revoked_token, raw = accounts.service_token_create(
        tenant=world.acme, name="old", scopes=["runtime:read"], actor=None
    )
    assert evaluate(bearer(raw)).status_code == 200
    accounts.service_token_revoke(token=revoked_token, actor=None, reason="leaked")
    revoked = evaluate(bearer(raw))
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["errorDetails"]
    assert ofrep.get(SINGLE).status_code == 405


@pytest.mark.django_db
def test_another_tenants_application_answers_as_a_missing_one(world: World) -> None:
    secret = make_artifact(world.globex, "prompt", "globex-secret", title="globex-secret")
    version = publish(secret, "GLOBEX-SECRET {{ x }}")
    promoted_change(version, world.author)
    make_active(version)
    app = Application.objects.create(tenant=world.globex, slug="globex-app", name="Globex app")
    Slot.objects.create(application=app, name="qualifyLead", artifact=secret)
    changed()
    acme = bearer(service_token(world.acme))
    foreign = evaluate(acme, "globex-app.qualifyLead", targetingKey="s")
    missing = evaluate(acme, "no-such-app.qualifyLead", targetingKey="s")
    assert foreign.status_code == missing.status_code == 404
    text = foreign.content.decode()
    assert text.replace("globex-app", "no-such-app") == missing.content.decode()
    assert "GLOBEX-SECRET" not in text
    assert version.manifest_sha256 not in text
    # globex's own token reads it; acme's bulk evaluation does not list it.
    own = evaluate(bearer(service_token(world.globex)), "globex-app.qualifyLead").json()
    assert own["metadata"]["content"] == "GLOBEX-SECRET {{ x }}"
    keys = [f["key"] for f in acme.post(BULK, {"context": {}}, format="json").json()["flags"]]
    assert keys == [FLAG]


@pytest.mark.django_db
def test_bulk_evaluates_every_flag_with_an_etag(
    world: World, ofrep: APIClient, ann: APIClient
) -> None:
    canary(world, weight=50_000, salt="bulk")
    got = ofrep.post(BULK, {"context": {"targetingKey": "user-3"}}, format="json")
    assert got.status_code == 200
    data = got.json()
    assert [f["key"] for f in data["flags"]] == [FLAG]
    assert data["metadata"] == {
        "tenant": "acme",
        "sequence": data["flags"][0]["metadata"]["sequence"],
    }
    same_answer(data["flags"][0], resolve(ann, "user-3"))
    etag = got["ETag"]
    assert etag.startswith('W/"')
    again = ofrep.post(
        BULK, {"context": {"targetingKey": "user-3"}}, format="json", HTTP_IF_NONE_MATCH=etag
    )
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    # Another subject is another answer (the bucket at least), so another ETag.
    other = ofrep.post(BULK, {"context": {"targetingKey": "user-4"}}, format="json")
    assert other["ETag"] != etag
    # An event that changes no answer leaves the ETag valid; a pointer move does not.
    accounts.token_create(user=world.author, name="unrelated", actor=None)
    unrelated = ofrep.post(
        BULK, {"context": {"targetingKey": "user-3"}}, format="json", HTTP_IF_NONE_MATCH=etag
    )
    assert unrelated.status_code == 304
    override(world, world.acme, world.v["v3"])
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    moved = ofrep.post(
        BULK, {"context": {"targetingKey": "user-3"}}, format="json", HTTP_IF_NONE_MATCH=etag
    )
    assert moved.status_code == 200
    assert moved["ETag"] != etag
    assert moved.json()["flags"][0]["reason"] == "DISABLED"
    # Narrowed to one application; a pin or an unknown application is refused.
    narrowed = ofrep.post(BULK, {"context": {"application": "sales-agent"}}, format="json")
    assert [f["key"] for f in narrowed.json()["flags"]] == [FLAG]
    for context, details in [
        ({"application": "nope"}, "context.application"),
        ({"pin": "1.0.0"}, "context.pin"),
    ]:
        refused = ofrep.post(BULK, {"context": context}, format="json")
        assert refused.status_code == 400
        assert refused.json()["errorCode"] == "INVALID_CONTEXT"
        assert details in refused.json()["errorDetails"]
    assert bearer(None).post(BULK, {"context": {}}, format="json").status_code == 401


@pytest.mark.django_db
def test_a_warm_answer_runs_no_sql(
    world: World, ofrep: APIClient, django_assert_num_queries: Any
) -> None:
    canary(world, weight=50_000)
    evaluate(ofrep, targetingKey="warm")
    ofrep.post(BULK, {"context": {"targetingKey": "warm"}}, format="json")
    with django_assert_num_queries(0):
        assert evaluate(ofrep, targetingKey="warm").status_code == 200
        assert evaluate(ofrep, targetingKey="other").status_code == 200
        bulk = ofrep.post(BULK, {"context": {"targetingKey": "warm"}}, format="json")
        assert bulk.status_code == 200


# --- an OpenFeature client with the OFREP provider, against a live server ------------------


@pytest.fixture
def openfeature_client(
    live_server: Any,
) -> Iterator[Callable[[str], Any]]:
    """An OpenFeature client (its own domain) using the OFREP provider with a service token."""
    domains: list[str] = []

    def make(raw: str) -> Any:
        domain = f"ofrep-test-{len(domains)}"
        domains.append(domain)
        provider = OFREPProvider(
            live_server.url, headers_factory=lambda: {"Authorization": f"Bearer {raw}"}
        )
        openfeature.set_provider(provider, domain=domain)
        return openfeature.get_client(domain=domain)

    yield make
    openfeature.clear_providers()


@pytest.mark.django_db(transaction=True)
def test_an_openfeature_client_gets_what_resolve_answers(
    openfeature_client: Callable[[str], Any], token_client: Any
) -> None:
    world = build_world()
    client = openfeature_client(service_token(world.acme))
    ann: APIClient = token_client(world.ann)

    def check(subject: str | None) -> Any:
        context = EvaluationContext(targeting_key=subject)
        details = client.get_string_details(FLAG, "code-default", context)
        resolved = resolve(ann, subject)
        assert details.error_code is None, details.error_message
        assert details.reason == resolved["reason"]
        if resolved["reason"] == "DISABLED":
            assert details.value == "code-default"
            assert details.variant == "disabled"
        else:
            assert details.value == resolved["ref"]
            assert details.variant == resolved["version"]
        meta = details.flag_metadata
        for name in ("rollout", "step", "arm", "bucket", "sha256", "sequence"):
            assert meta.get(name) == resolved[name], name
        return details

    # Default.
    default = check("user-1")
    assert (default.reason, default.variant) == ("DEFAULT", "1.0.0")
    # Override for the tenant.
    override(world, world.acme, world.v["v3"])
    assert check("user-1").reason == "TARGETING_MATCH"
    # A canary split: both arms among a few subjects, each as resolve says.
    rollout = canary(world, weight=50_000, salt="live")
    arms = {check(f"user-{n}").flag_metadata["arm"] for n in range(12)}
    assert arms == {"canary", "stable"}
    assert check("user-1").flag_metadata["rollout"] == rollout.reference
    # A pin, as a context attribute.
    pinned = client.get_string_details(
        FLAG, "code-default", EvaluationContext(targeting_key="u", attributes={"pin": "1.1.0"})
    )
    assert (pinned.reason, pinned.variant) == ("STATIC", "1.1.0")
    # A pin that may not serve: the code's default with INVALID_CONTEXT.
    bad = client.get_string_details(
        FLAG, "code-default", EvaluationContext(attributes={"pin": "9.9.9"})
    )
    assert (bad.value, bad.error_code) == ("code-default", ErrorCode.INVALID_CONTEXT)
    # Disabled: the code's default, reason DISABLED.
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    disabled = check("user-1")
    assert disabled.reason == "DISABLED"
    # Errors surface as OpenFeature error codes, with the code's default.
    missing = client.get_string_details("sales-agent.nope", "code-default")
    assert (missing.value, missing.error_code) == ("code-default", ErrorCode.FLAG_NOT_FOUND)
    unauthorised = openfeature_client("gsv_" + "x" * 40).get_string_details(FLAG, "code-default")
    assert (unauthorised.value, unauthorised.error_code) == ("code-default", ErrorCode.GENERAL)
    assert unauthorised.error_message == "unauthorized"
