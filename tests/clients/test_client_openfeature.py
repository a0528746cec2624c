"""The client's OpenFeature provider against a live server: an OpenFeature client backed by
RegistryClient's local evaluation returns the version and reason `POST /api/v1/resolve/`
answers for the same subject (default, override, canary split, pin, disabled), with the
metadata the server's OFREP endpoint gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api as openfeature
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from registry_client import RegistryClient
from registry_client.openfeature import RegistryProvider, flag_key
from rest_framework.test import APIClient

from accounts import services as accounts
from registry.models import Artifact
from tests.rollouts.runtime_world import World, build_world, canary, changed, override

FLAG = flag_key("sales-agent", "qualifyLead")


def public_keys() -> dict[str, str]:
    return {k["kid"]: k["public_key"] for k in APIClient().get("/api/v1/keys/").json()}


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def registry(live_server: Any, world: World) -> Iterator[RegistryClient]:
    _, raw = accounts.service_token_create(
        tenant=world.acme, name="sales-agent", scopes=["runtime:read"], actor=None
    )
    client = RegistryClient(
        live_server.url,
        raw,
        application="sales-agent",
        tenant="acme",
        public_keys=public_keys(),
        background=False,
    )
    yield client
    client.close()


@pytest.fixture
def feature(registry: RegistryClient) -> Iterator[Any]:
    openfeature.set_provider(RegistryProvider(registry), domain="registry-client-test")
    yield openfeature.get_client(domain="registry-client-test")
    openfeature.clear_providers()


def server_resolve(token_client: Any, world: World, subject: str, pin: str | None = None) -> Any:
    body: dict[str, Any] = {
        "tenant": "acme",
        "application": "sales-agent",
        "slot": "qualifyLead",
        "subject": subject,
    }
    if pin is not None:
        body["pin"] = pin
    return token_client(world.ann).post("/api/v1/resolve/", body, format="json").json()


@pytest.mark.django_db(transaction=True)
def test_the_provider_answers_as_the_server_resolves(
    world: World, registry: RegistryClient, feature: Any, token_client: Any
) -> None:
    def check(subject: str, pin: str | None = None) -> Any:
        attributes = {"pin": pin} if pin else {}
        context = EvaluationContext(targeting_key=subject, attributes=attributes)
        details = feature.get_string_details(FLAG, "code-default", context)
        resolved = server_resolve(token_client, world, subject, pin)
        assert details.error_code is None, details.error_message
        assert details.reason == resolved["reason"]
        if resolved["reason"] == "DISABLED":
            assert (details.value, details.variant) == ("code-default", "disabled")
        else:
            assert details.value == resolved["ref"]
            assert details.variant == resolved["version"]
        meta = details.flag_metadata
        for name in ("ref", "version", "sha256", "rollout", "rollout_id", "step", "arm", "bucket"):
            assert meta.get(name) == resolved[name], name
        assert meta["sequence"] == registry.sequence
        assert meta["freshness"] == "LIVE"
        return details

    assert registry.refresh() or registry.sequence is not None
    default = check("user-1")
    assert (default.reason, default.variant) == ("DEFAULT", world.v["v1"].version)

    override(world, world.acme, world.v["v3"])
    registry.refresh()
    assert check("user-1").reason == "TARGETING_MATCH"

    rollout = canary(world, weight=50_000, salt="live")
    registry.refresh()
    answers = [check(f"user-{n}") for n in range(16)]
    assert {a.flag_metadata["arm"] for a in answers} == {"canary", "stable"}
    assert {a.reason for a in answers} == {"SPLIT"}
    assert {a.flag_metadata["rollout"] for a in answers} == {rollout.reference}

    pinned = check("user-1", pin=world.v["v3"].version)
    assert (pinned.reason, pinned.variant) == ("STATIC", world.v["v3"].version)

    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    registry.refresh()
    assert check("user-1").reason == "DISABLED"


@pytest.mark.django_db(transaction=True)
def test_errors_answer_the_code_default(registry: RegistryClient, feature: Any) -> None:
    registry.refresh()
    missing_app = feature.get_string_details("support-bot.reply", "code-default")
    assert (missing_app.value, missing_app.error_code) == ("code-default", ErrorCode.FLAG_NOT_FOUND)
    not_a_bool = feature.get_boolean_details(FLAG, False)
    assert (not_a_bool.value, not_a_bool.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    whole = feature.get_object_details(FLAG, {}, EvaluationContext(targeting_key="u"))
    assert whole.error_code is None
    assert whole.value["version"] == whole.variant
    assert whole.value["ref"]
    bad_pin = feature.get_string_details(
        FLAG, "code-default", EvaluationContext(attributes={"pin": 3})
    )
    assert (bad_pin.value, bad_pin.error_code) == ("code-default", ErrorCode.INVALID_CONTEXT)
