"""Lifecycle evidence a version carries in its signed metadata: each key checked by the
publish service and refused naming ``metadata.<key>``, through the service, the API, the
publish form and the CLI (issue 17, SPEC-lifecycle.md)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from governance.kernel.errors import DomainError
from registry.models import Version
from tests.factories import make_artifact
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."
IO = {"input": {"type": "object"}, "output": {"type": "string"}}
EVIDENCE: dict[str, Any] = {
    "determinism": "probabilistic",
    "evaluation_plan": "Run eval-suite:2.0.0 on the golden corpus.",
    "risk_note": "May over-qualify small leads.",
    "pr_url": "https://git.example.com/acme/prompts/pull/42",
    "io_schema": IO,
}

#: (metadata, field, words the refusal says)
REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"determinism": "sometimes"}, "metadata.determinism", "deterministic, probabilistic"),
    ({"determinism": 1}, "metadata.determinism", "one of"),
    ({"evaluation_plan": ["a"]}, "metadata.evaluation_plan", "is text"),
    ({"evaluation_plan": "   "}, "metadata.evaluation_plan", "is empty"),
    ({"evaluation_plan": "x" * 4001}, "metadata.evaluation_plan", "limit is 4000"),
    ({"risk_note": "x" * 4001}, "metadata.risk_note", "limit is 4000"),
    ({"risk_note": 3}, "metadata.risk_note", "is text"),
    ({"no_datasets": "x" * 2001}, "metadata.no_datasets", "limit is 2000"),
    ({"pr_url": "ftp://example.com/pr/1"}, "metadata.pr_url", "http(s)"),
    ({"pr_url": "javascript:alert(1)"}, "metadata.pr_url", "http(s)"),
    ({"pr_url": "https://" + "a" * 500 + ".com"}, "metadata.pr_url", "at most 500"),
    ({"io_schema": "[]"}, "metadata.io_schema", '"input" and "output"'),
    ({"io_schema": {"input": {}}}, "metadata.io_schema", '"input" and "output"'),
    ({"io_schema": {**IO, "extra": {}}}, "metadata.io_schema", '"input" and "output"'),
    ({"io_schema": {"input": [], "output": {}}}, "metadata.io_schema", "io_schema.input"),
    (
        {"io_schema": {"input": {"type": "nonsense"}, "output": {}}},
        "metadata.io_schema",
        "not a valid JSON Schema",
    ),
]


@pytest.fixture
def dataset(acme):
    return publish(
        make_artifact(acme, "dataset", "leads-2026"),
        data={"uri": "s3://data/leads.parquet", "sha256": "a" * 64, "rows": 1200},
        impact="major",
    )


def test_evidence_is_stored_signed_and_in_the_manifest(prompt):
    v = publish(prompt, V1, "major", metadata=EVIDENCE)
    assert v.metadata == EVIDENCE
    manifest = json.loads(bytes(v.manifest))
    for key, value in EVIDENCE.items():
        assert manifest[key] == value


@pytest.mark.parametrize(("metadata", "field", "words"), REFUSALS)
def test_service_refuses_bad_evidence_naming_the_field(prompt, metadata, field, words):
    with pytest.raises(DomainError) as err:
        publish(prompt, V1, "major", metadata=metadata)
    assert err.value.field == field
    assert words in err.value.message
    assert not Version.objects.filter(artifact=prompt).exists()


def test_no_datasets_with_a_dataset_dependency_is_refused(prompt, dataset):
    with pytest.raises(DomainError) as err:
        publish(
            prompt,
            V1,
            "major",
            metadata={"no_datasets": "Rules only."},
            dependencies=[dataset.pinned],
        )
    assert err.value.field == "metadata.no_datasets"
    assert dataset.pinned in err.value.message
    # each alone is fine
    assert publish(prompt, V1, "major", dependencies=[dataset.pinned]).dependencies.count() == 1
    assert publish(prompt, V1 + "!", "minor", metadata={"no_datasets": "Rules only."})


def test_api_refuses_bad_evidence_with_400_naming_the_field(author, token_client, prompt):
    client = token_client(author)
    for metadata, field, words in REFUSALS:
        resp = client.post(
            "/api/v1/artifacts/prompt/acme/qualify-lead/versions/",
            {"content": V1, "impact": "major", "reason": "x", "metadata": metadata},
            format="json",
        )
        assert resp.status_code == 400, (metadata, resp.content)
        error = resp.json()["error"]
        assert error["field"] == field, (metadata, error)
        assert words in error["message"]
    ok = client.post(
        "/api/v1/artifacts/prompt/acme/qualify-lead/versions/",
        {"content": V1, "impact": "major", "reason": "x", "metadata": EVIDENCE},
        format="json",
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["metadata"] == EVIDENCE
    assert Version.objects.get(artifact=prompt).metadata == EVIDENCE


def test_openapi_documents_the_evidence_keys(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    props = schema["components"]["schemas"]["PublishMetadata"]["properties"]
    for key in EVIDENCE:
        assert key in props
    ref = json.dumps(props["determinism"])
    assert "DeterminismEnum" in ref, ref
    enum = schema["components"]["schemas"]["DeterminismEnum"]["enum"]
    assert enum == ["deterministic", "probabilistic"]


FORM_URL = "/registry/prompt/acme/qualify-lead/publish/"


def _post(client: Any, **fields: str) -> Any:
    body = {"content": V1, "impact": "major", "reason": "first", "variables": ""}
    body.update(fields)
    return client.post(FORM_URL, body)


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"determinism": "sometimes"}, "determinism", "Select a valid choice"),
        ({"evaluation_plan": "x" * 4001}, "evaluation_plan", "at most 4000"),
        ({"pr_url": "ftp://example.com/1"}, "pr_url", "http(s)"),
        ({"io_schema": "{not json"}, "io_schema", "Not valid JSON"),
        ({"io_schema": '{"input": {}}'}, "io_schema", "&quot;input&quot; and &quot;output&quot;"),
        ({"io_schema": "{}"}, "io_schema", "&quot;input&quot; and &quot;output&quot;"),
    ],
)
def test_form_shows_the_refusal_on_its_field(client, author, prompt, fields, field, words):
    client.force_login(author)
    resp = _post(client, **fields)
    assert resp.status_code == 400
    where = resp.content.decode().split(f'id="field-{field}"')[1].split("</p>")[0]
    assert words in where, where
    assert not Version.objects.filter(artifact=prompt).exists()


def test_form_no_datasets_with_dataset_dependency_is_shown_on_its_field(
    client, author, prompt, dataset
):
    client.force_login(author)
    resp = _post(client, no_datasets="Rules only.", dependencies=dataset.pinned)
    assert resp.status_code == 400
    where = resp.content.decode().split('id="field-no_datasets"')[1].split("</p>")[0]
    assert "no_datasets says this version uses no dataset" in where


def test_form_publishes_evidence_and_starts_from_the_active_versions(client, author, prompt):
    client.force_login(author)
    resp = _post(
        client,
        determinism="probabilistic",
        evaluation_plan=EVIDENCE["evaluation_plan"],
        risk_note=EVIDENCE["risk_note"],
        pr_url=EVIDENCE["pr_url"],
        io_schema=json.dumps(IO),
    )
    assert resp.status_code == 302, resp.content.decode()
    stored = Version.objects.get(artifact=prompt)
    assert stored.metadata == EVIDENCE
    type(prompt).objects.filter(pk=prompt.pk).update(active_version=stored)
    form = client.get(FORM_URL).context["form"]
    assert form.initial["determinism"] == "probabilistic"
    assert form.initial["evaluation_plan"] == EVIDENCE["evaluation_plan"]
    assert form.initial["risk_note"] == EVIDENCE["risk_note"]
    assert json.loads(form.initial["io_schema"]) == IO
    assert "pr_url" not in form.initial  # a new version's pull request is its own


def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("registry", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.usefixtures("prompt")
def test_cli_publishes_evidence_flags(tmp_path):
    f = tmp_path / "p.md"
    f.write_text(V1)
    schema = tmp_path / "io.json"
    schema.write_text(json.dumps(IO))
    code, _out, err = _cli(
        "publish",
        "prompt/acme/qualify-lead",
        "--file",
        str(f),
        "--impact",
        "major",
        "--reason",
        "first",
        "--determinism",
        "probabilistic",
        "--evaluation-plan",
        EVIDENCE["evaluation_plan"],
        "--risk-note",
        EVIDENCE["risk_note"],
        "--pr-url",
        EVIDENCE["pr_url"],
        "--io-schema",
        str(schema),
    )
    assert code == 0, err
    assert Version.objects.get().metadata == EVIDENCE


@pytest.mark.usefixtures("prompt")
@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--pr-url", "ftp://x/1"], "pr_url is the http(s) address"),
        (["--evaluation-plan", "x" * 4001], "limit is 4000"),
        (["--io-schema", "IO"], "io_schema is an object"),
        (["--io-schema", "MISSING"], "No file"),
        (["--determinism", "sometimes"], "determinism is one of deterministic, probabilistic"),
    ],
)
def test_cli_refuses_bad_evidence_with_one_line_and_exit_2(tmp_path, flags, words):
    f = tmp_path / "p.md"
    f.write_text(V1)
    bad = tmp_path / "io.json"
    bad.write_text('{"input": {}}')
    flags = [
        str(bad) if x == "IO" else str(tmp_path / "none.json") if x == "MISSING" else x
        for x in flags
    ]
    code, _, err = _cli(
        "publish",
        "prompt/acme/qualify-lead",
        "--file",
        str(f),
        "--impact",
        "major",
        "--reason",
        "x",
        *flags,
    )
    assert code == 2, err
    assert words in err, err
    assert err.count("\n") == 1, err
    assert not Version.objects.exists()
