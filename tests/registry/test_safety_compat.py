"""Action-eligible artifacts stay compatible within a major version: a minor or patch whose
declared io_schema (every class, models too) or class interface breaks is refused, naming what
broke and asking for a major; a major is accepted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from governance.kernel.errors import DomainError
from registry import services
from registry.models import Artifact, Version
from registry.versioning import Impact, io_schema_changes
from tests.factories import make_artifact

pytestmark = pytest.mark.django_db

IO: dict[str, Any] = {
    "input": {
        "type": "object",
        "properties": {"ticket": {"type": "string"}},
        "required": ["ticket"],
    },
    "output": {
        "type": "object",
        "properties": {"refund": {"type": "number"}, "note": {"type": "string"}},
        "required": ["refund"],
    },
}


def breaking_io() -> dict[str, Any]:
    io = copy.deepcopy(IO)
    del io["output"]["properties"]["refund"]
    io["output"]["required"] = []
    return io


def compatible_io() -> dict[str, Any]:
    io = copy.deepcopy(IO)
    io["output"]["properties"]["currency"] = {"type": "string"}  # a new output field
    io["input"]["properties"]["locale"] = {"type": "string"}  # a new optional input
    return io


def publish_model(model: Artifact, io: Any, impact: str, body: bytes) -> Version:
    version, _ = services.version_publish(
        artifact=model,
        content=services.Content(file_bytes=body, file_name="model.bin"),
        impact=impact,
        reason="retrained",
        actor=None,
        metadata={"io_schema": io},
    )
    return version


@pytest.fixture
def model(acme: Any) -> Artifact:
    made = make_artifact(acme, "model", "refund-model")
    v1 = publish_model(made, IO, "major", b"weights-1")
    assert v1.version == "1.0.0"
    return services.artifact_action_eligible_set(
        artifact=made, value=True, reason="Issues refunds.", actor=None
    )


@pytest.mark.parametrize("impact", ["minor", "patch"])
def test_a_minor_or_patch_breaking_the_io_schema_is_refused(model: Artifact, impact: str) -> None:
    with pytest.raises(DomainError) as refused:
        publish_model(model, breaking_io(), impact, b"weights-2")
    assert refused.value.field == "metadata.io_schema"
    assert refused.value.message == (
        "model/acme/refund-model is action-eligible: its inputs and outputs stay compatible "
        f"within 1.x, and this {impact} version breaks them (metadata.io_schema.output: property "
        "'refund' was removed). Publish a major version (2.0.0) with a migration plan."
    )
    assert list(model.versions.values_list("version", flat=True)) == ["1.0.0"]
    with pytest.raises(DomainError, match="action-eligible") as planned:
        services.version_plan(
            artifact=model,
            content=services.Content(file_bytes=b"weights-2", file_name="model.bin"),
            impact=impact,
            metadata={"io_schema": breaking_io()},
        )
    assert planned.value.field == "metadata.io_schema"


def test_a_major_breaking_the_io_schema_is_accepted_and_records_the_change(
    model: Artifact,
) -> None:
    v2 = publish_model(model, breaking_io(), "major", b"weights-2")
    assert v2.version == "2.0.0"
    assert {
        "impact": "major",
        "change": "metadata.io_schema.output: property 'refund' was removed",
    } in v2.detected_changes


def test_a_compatible_minor_is_accepted(model: Artifact) -> None:
    v = publish_model(model, compatible_io(), "minor", b"weights-2")
    assert v.version == "1.1.0"
    assert {c["impact"] for c in v.detected_changes} == {"minor"}


def test_dropping_the_declared_contract_is_breaking(model: Artifact) -> None:
    with pytest.raises(DomainError, match=r"metadata.io_schema was removed\)") as refused:
        services.version_publish(
            artifact=model,
            content=services.Content(file_bytes=b"w", file_name="model.bin"),
            impact="minor",
            reason="no schema",
            actor=None,
        )
    assert refused.value.field == "metadata.io_schema"


def test_an_artifact_that_is_not_action_eligible_is_not_held_to_its_io_schema(acme: Any) -> None:
    plain = make_artifact(acme, "model", "draft-model")
    publish_model(plain, IO, "major", b"a")
    assert publish_model(plain, breaking_io(), "minor", b"b").version == "1.1.0"


def test_a_breaking_class_interface_change_names_the_interface(acme: Any) -> None:
    rules = make_artifact(acme, "routing-ruleset", "refund-routes")
    schema = {"type": "object", "properties": {"amount": {"type": "number"}}}
    services.version_publish(
        artifact=rules,
        content=services.Content(data={"interface": schema, "rules": []}),
        impact="major",
        reason="first",
        actor=None,
    )
    rules = services.artifact_action_eligible_set(
        artifact=rules, value=True, reason="Routes refunds.", actor=None
    )
    narrower = {"type": "object", "properties": {"amount": {"type": "integer"}}}
    with pytest.raises(DomainError, match=r"breaks them \(type of 'amount' was narrowed") as e:
        services.version_publish(
            artifact=rules,
            content=services.Content(data={"interface": narrower, "rules": []}),
            impact="minor",
            reason="ints",
            actor=None,
        )
    assert e.value.field == "impact"
    assert "Publish a major version (2.0.0)" in e.value.message


def test_output_changes_are_judged_from_the_callers_side() -> None:
    def impacts(new: dict[str, Any]) -> dict[str, Impact]:
        return {c.description: c.impact for c in io_schema_changes(IO, new)}

    widened = copy.deepcopy(IO)
    widened["output"]["properties"]["refund"] = {"type": ["number", "string"]}
    narrowed_input = copy.deepcopy(IO)
    narrowed_input["input"]["properties"]["ticket"] = {"type": "string", "enum": ["a", "b"]}
    optional = copy.deepcopy(IO)
    optional["output"]["required"] = []
    assert impacts(widened) == {
        "metadata.io_schema.output: type of 'refund' was widened from 'number' to "
        "['number', 'string']": Impact.MAJOR
    }
    assert impacts(narrowed_input) == {
        "metadata.io_schema.input: values of 'ticket' are now restricted to 'a', 'b'": Impact.MAJOR
    }
    assert impacts(optional) == {
        "metadata.io_schema.output: property 'refund' is no longer required": Impact.MAJOR
    }
    assert {i for i in impacts(compatible_io()).values()} == {Impact.MINOR}
