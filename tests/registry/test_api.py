"""Registry API: tenant-scoped, publish over JSON and multipart, 405 on edits, clear 4xx errors."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from registry.models import Version
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
BASE = "/api/v1/artifacts/prompt/acme/qualify-lead/"
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."


def test_create_publish_and_read(author, token_client, acme):
    client = token_client(author)
    made = client.post(
        "/api/v1/artifacts/",
        {
            "artifact_class": "prompt",
            "tenant": "acme",
            "slug": "qualify-lead",
            "title": "Qualify lead",
            "summary": "Sales",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    assert made.json()["path"] == "prompt/acme/qualify-lead"
    assert made.json()["owner"] == "author"
    first = client.post(
        BASE + "versions/", {"content": V1, "impact": "major", "reason": "first"}, format="json"
    )
    assert first.status_code == 201, first.json()
    body = first.json()
    assert body["version"] == "1.0.0"
    assert body["verified"] == {
        "ok": True,
        "detail": "hash, signature, columns and content verify",
    }
    assert json.loads(body["manifest"])["artifact"] == "prompt/acme/qualify-lead"
    again = client.post(
        BASE + "versions/",
        {"content": V1, "impact": "major", "reason": "first", "version": "1.0.0"},
        format="json",
    )
    assert again.status_code == 200
    assert again.json()["sha256"] == body["sha256"]
    listing = client.get(BASE + "versions/").json()
    assert [v["version"] for v in listing["results"]] == ["1.0.0"]
    detail = client.get(BASE + "versions/1.0.0/").json()
    assert detail["content"] == V1
    assert detail["sha256"] == body["sha256"]
    artifact = client.get(BASE).json()
    assert artifact["recommended_version"] == "1.0.0"
    resolved = client.get(
        "/api/v1/resolve/", {"ref": "qualify-lead@1.0.0", "tenant": "acme"}
    ).json()
    assert resolved["sha256"] == body["sha256"]


def test_versions_cannot_be_edited_or_deleted(author, token_client, prompt):
    publish(prompt, V1, "major")
    client = token_client(author)
    for method in ("put", "patch", "delete"):
        resp = getattr(client, method)(BASE + "versions/1.0.0/", {"content": "x"}, format="json")
        assert resp.status_code == 405, method
    assert Version.objects.get().content_text == V1


def test_bad_input_names_the_field(author, token_client, prompt):
    client = token_client(author)
    publish(prompt, V1, "major")
    cases = [
        ({"content": V1, "impact": "huge", "reason": "x"}, "impact"),
        ({"content": V1, "impact": "minor"}, "reason"),
        ({"content": V1, "impact": "minor", "reason": "x", "version": "1.2"}, "version"),
        ({"content": V1, "impact": "patch", "reason": "x", "version": "0.1.0"}, "version"),
        ({"content": "{{ product }} only", "impact": "minor", "reason": "x"}, "impact"),
        (
            {"content": V1 + "!", "impact": "minor", "reason": "x", "dependencies": ["nope@1.0.0"]},
            "dependencies",
        ),
        (
            {"content": V1 + "!", "impact": "minor", "reason": "x", "metadata": {"colour": "red"}},
            "metadata",
        ),
    ]
    for payload, field in cases:
        resp = client.post(BASE + "versions/", payload, format="json")
        assert resp.status_code == 400, (payload, resp.json())
        assert resp.json()["error"]["field"] == field, (payload, resp.json())
    assert Version.objects.count() == 1
    conflict = client.post(
        BASE + "versions/",
        {"content": "other", "impact": "major", "reason": "x", "version": "1.0.0"},
        format="json",
    )
    assert conflict.status_code == 409
    unknown = client.post(
        "/api/v1/artifacts/",
        {"artifact_class": "nope", "tenant": "acme", "slug": "x", "title": "X"},
        format="json",
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "class"


@pytest.mark.usefixtures("globex")
def test_file_upload_over_multipart(make_user, token_client, settings, tmp_path):
    settings.REGISTRY_BLOB_DIR = tmp_path
    client = token_client(make_user("g", globex="member"))
    client.post(
        "/api/v1/artifacts/",
        {"artifact_class": "model", "tenant": "globex", "slug": "clf", "title": "Clf"},
        format="json",
    )
    resp = client.post(
        "/api/v1/artifacts/model/globex/clf/versions/",
        {"file": SimpleUploadedFile("w.bin", b"weights"), "impact": "major", "reason": "first"},
        format="multipart",
    )
    assert resp.status_code == 201, resp.json()
    assert resp.json()["content_name"] == "w.bin"
    assert resp.json()["content_size"] == 7


def test_other_tenants_are_invisible(prompt, make_user, token_client, globex):
    publish(prompt, V1, "major")
    client = token_client(make_user("g", globex="administrator"))
    assert client.get("/api/v1/artifacts/").json()["results"] == []
    for path in [
        BASE,
        BASE + "versions/",
        BASE + "versions/1.0.0/",
        BASE + "versions/1.0.0/diff/?against=1.0.0",
    ]:
        assert client.get(path).status_code == 404, path
    assert (
        client.post(
            BASE + "versions/", {"content": "x", "impact": "major", "reason": "x"}, format="json"
        ).status_code
        == 404
    )
    create = client.post(
        "/api/v1/artifacts/",
        {"artifact_class": "prompt", "tenant": "acme", "slug": "x", "title": "X"},
        format="json",
    )
    assert create.status_code == 404


def test_diff_endpoint_reports_contract_changes(prompt, author, token_client):
    publish(prompt, V1, "major")
    publish(prompt, "Qualify leads for {{ product }}.", "major")
    body = token_client(author).get(BASE + "versions/2.0.0/diff/?against=1.0.0").json()
    assert body["contract_changes"][0]["impact"] == "major"
    assert "customer" in body["contract_changes"][0]["change"]
    assert any(line["kind"] == "replace" for line in body["lines"])


@pytest.mark.usefixtures("prompt")
def test_artifact_list_filters_and_query_count(
    author, token_client, django_assert_max_num_queries, prompt_class, acme
):
    from registry import services

    client = token_client(author)
    client.get("/api/v1/artifacts/")
    with django_assert_max_num_queries(10) as few:
        assert len(client.get("/api/v1/artifacts/").json()["results"]) == 1
    for i in range(10):
        services.artifact_create(
            artifact_class=prompt_class, tenant=acme, slug=f"p{i}", title=f"P {i}", actor=author
        )
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get("/api/v1/artifacts/").json()["results"]) == 11
    assert [a["slug"] for a in client.get("/api/v1/artifacts/?q=qualify").json()["results"]] == [
        "qualify-lead"
    ]
    assert client.get("/api/v1/artifacts/?artifact_class=model").json()["results"] == []


def test_an_empty_prompt_or_a_bogus_template_ref_is_a_400_naming_the_field(
    author, token_client, prompt
):
    client = token_client(author)
    empty = client.post(
        BASE + "versions/",
        {
            "content": "",
            "impact": "major",
            "reason": "first",
            "input_variables": [{"name": "customer"}],
        },
        format="json",
    )
    assert empty.status_code == 400, empty.content
    assert "content" in json.dumps(empty.json())
    assert "required" in json.dumps(empty.json())
    unused = client.post(
        BASE + "versions/",
        {
            "content": "Hello {{ product }}.",
            "impact": "major",
            "reason": "first",
            "input_variables": [{"name": "product"}, {"name": "customer"}],
        },
        format="json",
    )
    assert unused.status_code == 400
    assert "'customer'" in json.dumps(unused.json())
    bogus = client.post(
        BASE + "versions/",
        {
            "content": "Hello {{ product }}.",
            "impact": "major",
            "reason": "first",
            "metadata": {"template_refs": ["bogus"], "policy_pack_hash": "not-a-hash"},
        },
        format="json",
    )
    assert bogus.status_code == 400
    assert "template_refs" in json.dumps(bogus.json())
    assert Version.objects.count() == 0


def test_a_dependency_on_another_tenants_version_answers_as_a_missing_one(
    author, token_client, prompt, globex, prompt_class
):
    from registry import services

    theirs = services.artifact_create(
        artifact_class=prompt_class, tenant=globex, slug="x", title="Theirs", actor=None
    )
    their_v1 = publish(theirs, "Globex secret {{ a }}.", "major")
    client = token_client(author)
    bodies = {}
    for slug in ("x", "ghost"):
        resp = client.post(
            BASE + "versions/",
            {
                "content": V1,
                "impact": "major",
                "reason": "x",
                "dependencies": [f"prompt/globex/{slug}:1.0.0#{'0' * 64}"],
            },
            format="json",
        )
        assert resp.status_code == 400
        bodies[slug] = resp.content.decode().replace(f"/{slug}", "/SLUG")
    assert bodies["x"] == bodies["ghost"]
    assert their_v1.manifest_sha256[:12] not in bodies["x"]
    assert json.loads(bodies["x"])["error"]["field"] == "dependencies"
    assert not Version.objects.filter(artifact=prompt).exists()
