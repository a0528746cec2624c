"""The publish page edits everything a version carries, as the publish API does."""

from __future__ import annotations

import pytest

from registry.models import Artifact, Version
from reviews.policy_scan import DEFAULT_POLICY_PACK
from tests.factories import make_artifact
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
URL = "/registry/prompt/acme/qualify-lead/publish/"
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."


@pytest.fixture
def template(acme):
    return publish(make_artifact(acme, "prompt-template", "greeting"), "Hello {{ name }}.", "major")


@pytest.fixture
def pack(acme):
    return publish(make_artifact(acme, "policy-pack", "pack"), data=DEFAULT_POLICY_PACK)


def _post(client, **fields):
    body = {"content": V1, "impact": "major", "reason": "first", "variables": ""}
    body.update(fields)
    return client.post(URL, body)


def test_publish_stores_pinned_models_dependencies_and_references(
    client, author, prompt, template, pack
):
    client.force_login(author)
    resp = _post(
        client,
        pinned_models="gpt-4o-2024-08-06\nclaude-3-5-sonnet, gpt-4o-2024-08-06",
        template_refs=template.pinned,
        dependencies=template.pinned,
        policy_pack_hash=pack.manifest_sha256.upper(),
        environment_fingerprint="py3.11 eval-harness 2.3",
        labels="group=sales\nowner = growth",
    )
    assert resp.status_code == 302, resp.content.decode()
    stored = Version.objects.get(artifact=prompt)
    assert stored.metadata == {
        "pinned_models": ["gpt-4o-2024-08-06", "claude-3-5-sonnet"],
        "template_refs": [template.pinned],
        "policy_pack_hash": pack.manifest_sha256,
        "environment_fingerprint": "py3.11 eval-harness 2.3",
        "labels": {"group": "sales", "owner": "growth"},
    }
    assert [d.upstream_id for d in stored.dependencies.all()] == [template.pk]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"template_refs": "greeting:1.0.0"}, "template_refs", "has no '#sha256'"),
        ({"template_refs": "greeting:9.0.0#" + "0" * 64}, "template_refs", "No version"),
        ({"policy_pack_hash": "abc"}, "policy_pack_hash", "64 lowercase hex"),
        ({"policy_pack_hash": "0" * 64}, "policy_pack_hash", "No policy-pack version"),
        ({"labels": "group"}, "labels", "is not name=value"),
        ({"pinned_models": "gpt 4o"}, "pinned_models", "is not a model identifier"),
        ({"dependencies": "nothing:1.0.0#" + "0" * 64}, "dependencies", "Dependency"),
    ],
)
def test_bad_metadata_is_a_400_on_its_field_and_nothing_is_written(
    client, author, prompt, fields, field, message
):
    client.force_login(author)
    resp = _post(client, **fields)
    assert resp.status_code == 400
    html = resp.content.decode()
    where = html.split(f'id="field-{field}"')[1].split("</p>")[0]
    assert message in where.replace("&#x27;", "'")
    assert not Version.objects.filter(artifact=prompt).exists()


def test_the_form_starts_from_the_active_version_not_the_latest(client, author, prompt, template):
    active = publish(
        prompt,
        V1,
        "major",
        metadata={"pinned_models": ["model-a"], "labels": {"group": "sales"}},
        dependencies=[template.pinned],
    )
    publish(prompt, V1 + " Draft.", "patch", metadata={"pinned_models": ["model-b"]})
    Artifact.objects.filter(pk=prompt.pk).update(active_version=active)
    client.force_login(author)
    html = client.get(URL).content.decode()
    assert "the active version" in html
    assert "the latest is 1.0.1" in html
    assert "model-a</textarea>" in html
    assert "model-b" not in html
    assert "group=sales" in html
    assert template.pinned in html.split('id="field-dependencies"')[1].split("</p>")[0]


def test_with_nothing_active_the_form_starts_from_the_latest(client, author, prompt):
    publish(prompt, V1, "major", metadata={"pinned_models": ["model-a"]})
    publish(prompt, V1 + " Draft.", "patch", metadata={"pinned_models": ["model-b"]})
    client.force_login(author)
    html = client.get(URL).content.decode()
    assert "nothing is active" in html
    assert "model-b</textarea>" in html
