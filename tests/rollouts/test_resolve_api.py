"""The runtime API: GET /api/v1/runtime/{tenant}/{application}/ and POST /api/v1/resolve/."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import service_token_create, service_token_revoke
from governance.kernel.errors import DomainError
from registry.models import Artifact
from rollouts import runtime
from rollouts.api.views import reader_may_read
from tests.factories import UserFactory
from tests.rollouts.runtime_world import World, build_world, canary, changed, override, publish

pytestmark = pytest.mark.django_db

RUNTIME = "/api/v1/runtime/acme/sales-agent/"


@pytest.fixture
def world(db: None) -> World:
    return build_world()


@pytest.fixture
def ann(world: World, token_client: Any) -> APIClient:
    client: APIClient = token_client(world.ann)
    return client


def post(client: APIClient, **body: Any) -> Any:
    payload = {"tenant": "acme", "application": "sales-agent", "slot": "qualifyLead", **body}
    return client.post("/api/v1/resolve/", payload, format="json")


def test_resolve_answers_with_reference_content_and_reason(world: World, ann: APIClient) -> None:
    rollout = canary(world, weight=100_000, salt="s")
    got = post(ann, subject="user-7")
    assert got.status_code == 200
    data = got.json()
    v2 = world.v["v2"]
    assert data == {
        "tenant": "acme",
        "application": "sales-agent",
        "slot": "qualifyLead",
        "ref": f"qualify-lead:1.1.0#{v2.manifest_sha256}",
        "path": "prompt/platform/qualify-lead/1.1.0",
        "version": "1.1.0",
        "sha256": v2.manifest_sha256,
        "stage": "approved",
        "content_kind": "text",
        "content": "Qualify {{ customer }} politely.",
        "reason": "SPLIT",
        "variant": "canary",
        "rollout": rollout.reference,
        "rollout_id": str(rollout.pk),
        "step": 1,
        "arm": "canary",
        "bucket": data["bucket"],
        "sequence": runtime.snapshot("acme", "sales-agent").sequence,
        "warnings": [],
        "halted": None,
    }
    assert 0 <= data["bucket"] < 100_000
    pinned = post(ann, subject="user-7", pin="1.0.0").json()
    assert (pinned["reason"], pinned["version"], pinned["rollout"]) == ("STATIC", "1.0.0", None)


def test_every_reason_through_the_api(world: World, ann: APIClient) -> None:
    assert post(ann).json()["reason"] == "DEFAULT"
    override(world, world.acme, world.v["v3"])
    assert post(ann).json()["reason"] == "TARGETING_MATCH"
    canary(world, weight=100_000)
    assert post(ann, subject="s").json()["reason"] == "SPLIT"
    assert post(ann, pin="1.0.0").json()["reason"] == "STATIC"
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    off = post(ann, subject="s")
    assert off.status_code == 404
    body = off.json()
    assert (body["reason"], body["ref"], body["error"]["code"]) == ("DISABLED", None, "disabled")


@pytest.mark.parametrize("name", ["draft", "rejected", "retired", "removed"])
def test_versions_that_may_not_serve_never_resolve(world: World, ann: APIClient, name: str) -> None:
    bad = world.v[name]
    canary(world, weight=100_000, candidate=bad)
    override(world, world.acme, bad)
    refused = post(ann, pin=bad.version)
    assert refused.status_code == 404
    assert refused.json()["error"]["field"] == "pin"
    served = post(ann, subject="s").json()
    assert served["version"] == "1.0.0"
    assert served["reason"] == "DEFAULT"
    document = ann.get(RUNTIME).content.decode()
    assert bad.manifest_sha256 not in document


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slot": ""}, "slot"),
        ({"slot": "no such!"}, "slot"),
        ({"tenant": None}, "tenant"),
        ({"application": 7.5}, "application"),
        ({"subject": {"a": 1}}, "subject"),
        ({"subject": "x" * 1001}, "subject"),
        ({"pin": "qualify-lead:1.0.0#XYZ"}, "pin"),
        ({"pin": ""}, "pin"),
        ({"pin": "qualify-lead"}, "pin"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    ann: APIClient, body: dict[str, Any], field: str
) -> None:
    got = post(ann, **body)
    assert got.status_code == 400, got.content
    assert got.json()["error"]["field"] == field


def test_unknown_or_hidden_is_404_naming_what(
    world: World, ann: APIClient, token_client: Any
) -> None:
    assert post(ann, slot="nope").json()["error"]["field"] == "slot"
    assert post(ann, application="nope").json()["error"]["field"] == "application"
    gus = token_client(world.gus)
    hidden = post(gus)
    assert hidden.status_code == 404
    assert hidden.json()["error"]["field"] == "tenant"
    assert gus.get(RUNTIME).status_code == 404
    assert ann.get("/api/v1/runtime/acme/nope/").status_code == 404
    assert APIClient().post("/api/v1/resolve/", {}, format="json").status_code in (401, 403)
    assert APIClient().get(RUNTIME).status_code in (401, 403)
    not_json = ann.post("/api/v1/resolve/", "[1]", content_type="application/json")
    assert not_json.status_code == 400


def test_snapshot_etag_and_304(world: World, ann: APIClient) -> None:
    first = ann.get(RUNTIME)
    assert first.status_code == 200
    etag = first["ETag"]
    document = first.json()
    assert (
        etag
        == f'"{document["snapshot"]["sequence"]}-{runtime.snapshot("acme", "sales-agent").content_sha256[:16]}"'
    )
    again = ann.get(RUNTIME, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert ann.get(RUNTIME, HTTP_IF_NONE_MATCH=f'"x", W/{etag}').status_code == 304
    # The log grows with work that changes nothing here: the held document is still current.
    publish(world.artifact, "Unrelated draft {{ customer }}.")
    fresh = ann.get(RUNTIME)
    assert fresh["ETag"] != etag
    assert fresh.json()["snapshot"]["sequence"] > document["snapshot"]["sequence"]
    held = ann.get(RUNTIME, HTTP_IF_NONE_MATCH=etag)
    assert held.status_code == 304
    assert held.content == b""
    assert held["ETag"] == etag
    assert ann.get(RUNTIME, HTTP_IF_NONE_MATCH='"1-0000000000000000"').status_code == 200
    override(world, world.acme, world.v["v3"])
    changed_doc = ann.get(RUNTIME, HTTP_IF_NONE_MATCH=etag)
    assert changed_doc.status_code == 200
    slot = changed_doc.json()["snapshot"]["slots"]["qualifyLead"]
    assert slot["override"]["ref"] == runtime.version_ref(world.v["v3"])


def test_snapshot_signature_verifies_with_the_published_key(world: World, ann: APIClient) -> None:
    canary(world, weight=25_000)
    document = ann.get(RUNTIME).json()
    keys = {k["kid"]: k["public_key"] for k in APIClient().get("/api/v1/keys/").json()}
    signature = document["signature"]
    assert signature["algorithm"] == "ed25519"
    canonical = rfc8785.dumps(document["snapshot"])
    digest = hashlib.sha256(canonical).digest()
    assert digest.hex() == document["sha256"]
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(keys[signature["key_id"]]))
    public.verify(bytes.fromhex(signature["value"]), digest)  # raises if it does not verify
    rule = document["snapshot"]["slots"]["qualifyLead"]["rules"][0]
    assert (rule["weight"], rule["strategy"], rule["salt"]) == (25_000, "canary", "salt-1")
    # What a client does: verify, then resolve locally to the server's very answer.
    raw = ann.get(RUNTIME).content
    local = runtime.load_document(raw, keys)
    for subject in ("a", "b", "c", "d"):
        server = post(ann, subject=subject).json()
        mine = runtime.resolve(local, "qualifyLead", subject).as_json()
        assert mine == server
    forged = raw.replace(b'"weight":25000', b'"weight":99999')
    with pytest.raises(DomainError) as refused:
        runtime.load_document(forged, keys)
    assert refused.value.field == "sha256"
    tampered = json.loads(json.dumps(document["snapshot"]))
    tampered["slots"]["qualifyLead"]["rules"][0]["weight"] = 100_000
    with pytest.raises(InvalidSignature):
        public.verify(
            bytes.fromhex(signature["value"]), hashlib.sha256(rfc8785.dumps(tampered)).digest()
        )


def test_registry_resolve_by_ref_keeps_working_and_answers_the_active_version(
    world: World, token_client: Any
) -> None:
    admin = token_client(UserFactory(username="root", is_superuser=True, is_staff=True))
    canary(world, weight=100_000)  # the candidate serves every subject, but is not active
    override(world, world.acme, world.v["v3"])
    got = admin.get("/api/v1/resolve/", {"ref": "prompt/platform/qualify-lead"})
    assert got.status_code == 200
    assert got.json()["version"] == "1.0.0"
    exact = admin.get("/api/v1/resolve/", {"ref": "prompt/platform/qualify-lead/1.1.0"}).json()
    assert exact["version"] == "1.1.0"


def service_client(tenant: Any, scopes: list[str]) -> tuple[APIClient, Any]:
    token, raw = service_token_create(tenant=tenant, name="svc", scopes=scopes, actor=None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, token


def test_service_tokens_read_their_own_tenant_with_the_scope(world: World) -> None:
    machine, token = service_client(world.acme, ["runtime:read"])
    assert post(machine, subject="u").json()["version"] == "1.0.0"
    assert machine.get(RUNTIME).json()["snapshot"]["tenant"] == "acme"
    other = post(machine, tenant="globex")
    assert other.status_code == 404
    assert other.json()["error"]["field"] == "tenant"
    assert machine.get("/api/v1/runtime/globex/sales-agent/").status_code == 404
    registry_lookup = machine.get("/api/v1/resolve/", {"ref": "prompt/platform/qualify-lead"})
    assert registry_lookup.status_code == 403
    writer, _ = service_client(world.acme, ["telemetry:write"])
    refused = post(writer)
    assert refused.status_code == 403
    assert "runtime:read" in refused.json()["error"]["message"]
    service_token_revoke(token=token, actor=None, reason="leaked")
    assert post(machine).status_code == 401


def test_warm_service_token_requests_run_no_sql(
    world: World, django_assert_num_queries: Any
) -> None:
    canary(world, weight=50_000)
    machine, _ = service_client(world.acme, ["runtime:read"])
    etag = machine.get(RUNTIME)["ETag"]
    post(machine, subject="u1")
    with django_assert_num_queries(0):
        for i in range(5):
            assert post(machine, subject=f"u{i}").status_code == 200
        assert machine.get(RUNTIME).status_code == 200
        assert machine.get(RUNTIME, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_the_service_token_fast_path_answers_exactly_as_the_full_path(
    world: World, ann: APIClient
) -> None:
    """A service token's POST skips DRF's wrapping; a person's goes the full way: same answer,
    byte for byte in JSON terms, for every branch (canary, stable, no subject, pin)."""
    canary(world, weight=50_000, salt="s")
    machine, _ = service_client(world.acme, ["runtime:read"])
    bodies: list[dict[str, Any]] = [{"subject": f"user-{i}"} for i in range(20)]
    bodies += [{}, {"pin": "1.0.0"}, {"subject": "user-1", "pin": "1.0.0"}]
    reasons = set()
    for body in bodies:
        fast, full = post(machine, **body), post(ann, **body)
        assert (fast.status_code, fast["Content-Type"]) == (200, "application/json")
        assert fast.json() == full.json(), body
        reasons.add(fast.json()["reason"])
    assert reasons == {"SPLIT", "DEFAULT", "STATIC"}
    # refusals take the full path and read the same as anyone's
    bad = post(machine, slot="nope")
    assert bad.status_code == 404
    assert bad.json()["error"]["field"] == "slot"
    broken = machine.post("/api/v1/resolve/", "{not json", content_type="application/json")
    assert broken.status_code == 400


def test_people_read_the_tenants_they_may_see(world: World) -> None:
    from governance.kernel.errors import NotFound

    user: User = world.ann
    reader_may_read(user, "acme")
    with pytest.raises(NotFound):
        reader_may_read(user, "globex")


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tenant": "acme\n"}, "tenant"),
        ({"application": "Sales-Agent"}, "application"),
        ({"slot": "1slot"}, "slot"),
        ({"slot": ["qualifyLead"]}, "slot"),
        ({"pin": 1}, "pin"),
        ({"subject": 42}, "subject"),
    ],
)
def test_more_bad_input_names_the_field(ann: APIClient, body: dict[str, Any], field: str) -> None:
    got = post(ann, **body)
    assert got.status_code == 400, got.content
    assert got.json()["error"]["field"] == field


@pytest.mark.usefixtures("world")
def test_a_missing_field_is_named(ann: APIClient) -> None:
    got = ann.post("/api/v1/resolve/", {"tenant": "acme", "slot": "qualifyLead"}, format="json")
    assert got.status_code == 400
    assert got.json()["error"] == {
        "code": "invalid",
        "message": "This field is required.",
        "field": "application",
    }


def test_every_document_validates_against_the_published_schema(
    world: World, ann: APIClient
) -> None:
    from datetime import timedelta
    from pathlib import Path

    from django.utils import timezone
    from jsonschema import Draft202012Validator

    from rollouts.choices import RolloutStrategy

    schema_path = Path(runtime.__file__).parent / "spec" / "runtime-snapshot.schema.json"
    validator = Draft202012Validator(json.loads(schema_path.read_text()))
    Draft202012Validator.check_schema(validator.schema)
    documents = [ann.get(RUNTIME).json()]
    canary(world, weight=25_000)
    canary(world, target="paper", cohort=["alice"], weight=0)
    canary(
        world,
        strategy=RolloutStrategy.FLAG,
        flag_key="polite",
        flag_on=True,
        flag_expires_at=timezone.now() + timedelta(days=3),
    )
    override(world, world.acme, world.v["deprecated"])
    documents.append(ann.get(RUNTIME).json())
    canary(world, weight=100_000, candidate=world.v["retired"])  # skipped, with a warning
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    documents.append(ann.get(RUNTIME).json())
    for document in documents:
        errors = sorted(validator.iter_errors(document), key=str)
        assert not errors, errors[0]
    rules = documents[1]["snapshot"]["slots"]["qualifyLead"]["rules"]
    assert [r["strategy"] for r in rules] == ["flag", "canary", "canary"]  # newest first
    assert documents[2]["snapshot"]["slots"]["qualifyLead"]["disabled"] is True
