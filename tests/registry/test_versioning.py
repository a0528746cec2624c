"""Semantic versioning: bumps, explicit versions, variable and schema contract changes, impact checks."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest

from registry.versioning import (
    ContractChange,
    Impact,
    SemanticVersioner,
    Variable,
    VersioningError,
    highest,
    schema_changes,
    template_variables,
    variable_changes,
)


# The package conftest installs built-in classes in the database for every test; these modules
# are pure and must not need (or contend for) a database, so the fixture is overridden here.
@pytest.fixture(autouse=True)
def _builtin_classes() -> None:
    return None


PATCH, MINOR, MAJOR = Impact.PATCH, Impact.MINOR, Impact.MAJOR
versioner = SemanticVersioner()

# Deliberately ill-typed calls go through these untyped aliases: run-time guards are what is
# tested, which the type checker cannot promise.
any_next: Callable[..., str] = versioner.next_version
any_parse_impact: Callable[..., Impact] = Impact.parse


def pairs(changes: list[ContractChange]) -> list[tuple[Impact, str]]:
    return [(change.impact, change.description) for change in changes]


# ---------------------------------------------------------------------------------- Impact


def test_impact_order_and_labels() -> None:
    assert PATCH < MINOR < MAJOR
    assert [impact.label for impact in Impact] == ["patch", "minor", "major"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("patch", PATCH), ("minor", MINOR), ("major", MAJOR), (" Major ", MAJOR), ("PATCH", PATCH)],
)
def test_impact_parse(text: str, expected: Impact) -> None:
    assert Impact.parse(text) is expected


@pytest.mark.parametrize("text", ["", "huge", "1", "maj", "breaking", None, 3])
def test_impact_parse_rejects(text: Any) -> None:
    with pytest.raises(VersioningError) as caught:
        any_parse_impact(text)
    assert caught.value.field == "impact"
    assert "is not one of 'patch', 'minor', 'major'" in str(caught.value)


def test_error_survives_pickling() -> None:
    error = VersioningError("version x is bad", field="version")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (type(copy), copy.field, str(copy)) == (VersioningError, "version", "version x is bad")
    assert isinstance(copy, ValueError)


# ---------------------------------------------------------------------------- next_version


@pytest.mark.parametrize(
    ("previous", "impact", "expected"),
    [
        (None, PATCH, "1.0.0"),
        (None, MINOR, "1.0.0"),
        (None, MAJOR, "1.0.0"),
        ("1.0.0", PATCH, "1.0.1"),
        ("1.0.0", MINOR, "1.1.0"),
        ("1.0.0", MAJOR, "2.0.0"),
        ("1.2.3", PATCH, "1.2.4"),
        ("1.2.3", MINOR, "1.3.0"),
        ("1.2.3", MAJOR, "2.0.0"),
        ("0.9.9", MINOR, "0.10.0"),
        ("0.0.0", PATCH, "0.0.1"),
        ("9.99.999", PATCH, "9.99.1000"),
        ("1.2.3-rc.1", PATCH, "1.2.4"),
        ("1.2.3-rc.1", MINOR, "1.3.0"),
        ("2.0.0-beta+build.7", MAJOR, "3.0.0"),
        ("1.2.3+build.9", PATCH, "1.2.4"),
    ],
)
def test_next_version(previous: str | None, impact: Impact, expected: str) -> None:
    assert versioner.next_version(previous, impact) == expected


def test_first_version_can_be_overridden() -> None:
    class ZeroBased(SemanticVersioner):
        first_version = "0.1.0"

    assert ZeroBased().next_version(None, MAJOR) == "0.1.0"


@pytest.mark.parametrize("previous", ["1.0", "v1.0.0", "", "01.2.3", "latest"])
def test_next_version_rejects_invalid_previous(previous: str) -> None:
    with pytest.raises(VersioningError) as caught:
        versioner.next_version(previous, PATCH)
    assert caught.value.field == "version"


def test_next_version_rejects_non_impact() -> None:
    with pytest.raises(VersioningError) as caught:
        any_next("1.0.0", "major")
    assert caught.value.field == "impact"


# ---------------------------------------------------------------------------------- accept


@pytest.mark.parametrize(
    ("previous", "impact", "explicit", "expected"),
    [
        (None, MAJOR, None, "1.0.0"),
        ("1.0.3", MINOR, None, "1.1.0"),
        (None, PATCH, "0.1.0", "0.1.0"),
        (None, MAJOR, "3.0.0-rc.1", "3.0.0-rc.1"),
        ("1.0.3", MAJOR, "2.0.0", "2.0.0"),
        ("1.0.3", MAJOR, "5.0.0", "5.0.0"),
        ("1.0.3", MAJOR, "2.3.4", "2.3.4"),
        ("1.0.3", MAJOR, "2.0.0-rc.1", "2.0.0-rc.1"),
        ("1.0.3", MINOR, "1.1.0", "1.1.0"),
        ("1.0.3", MINOR, "1.4.2", "1.4.2"),
        ("1.0.3", MINOR, "1.1.0-beta", "1.1.0-beta"),
        ("1.0.3", PATCH, "1.0.4", "1.0.4"),
        ("1.0.3", PATCH, "1.0.9+build.1", "1.0.9+build.1"),
        ("1.0.3-rc.1", PATCH, "1.0.4", "1.0.4"),
        ("0.9.0", MINOR, "0.10.0", "0.10.0"),
    ],
)
def test_accept(previous: str | None, impact: Impact, explicit: str | None, expected: str) -> None:
    assert versioner.accept(previous, impact, explicit) == expected


@pytest.mark.parametrize(
    ("previous", "impact", "explicit", "message"),
    [
        (
            "1.0.3",
            MAJOR,
            "1.1.0",
            "version 1.1.0 does not match a major change from 1.0.3 (expected 2.0.0 or later major)",
        ),
        ("1.0.3", MAJOR, "1.0.4", "does not match a major change from 1.0.3"),
        ("1.0.3", PATCH, "1.0.0", "version 1.0.0 does not move forward from 1.0.3"),
        ("1.0.3", MAJOR, "1.0.3", "version 1.0.3 does not move forward from 1.0.3"),
        ("1.0.3", PATCH, "1.0.3+build.2", "does not move forward from 1.0.3"),
        ("1.0.3", PATCH, "1.0.3-rc.1", "does not move forward from 1.0.3"),
        ("2.0.0", MAJOR, "1.9.9", "does not move forward from 2.0.0"),
        (
            "1.0.3",
            MINOR,
            "1.0.4",
            "version 1.0.4 does not match a minor change from 1.0.3 (expected 1.1.0 or later"
            " minor of 1.x)",
        ),
        ("1.0.3", MINOR, "2.0.0", "does not match a minor change from 1.0.3"),
        (
            "1.0.3",
            PATCH,
            "1.1.0",
            "version 1.1.0 does not match a patch change from 1.0.3 (expected 1.0.4 or later"
            " patch of 1.0.x)",
        ),
        ("1.0.3", PATCH, "2.0.0", "does not match a patch change"),
        # A release after its own pre-release keeps MAJOR.MINOR.PATCH, so it moves no part.
        ("1.0.4-rc.1", PATCH, "1.0.4", "does not match a patch change from 1.0.4-rc.1"),
        ("1.0.3", PATCH, "1.0", "version '1.0' is not a semantic version (MAJOR.MINOR.PATCH)"),
        ("1.0.3", PATCH, "v1.0.4", "must not start with 'v'"),
        ("1.0.3", PATCH, "1.0.04", "leading zero in PATCH"),
        ("1.0.3", PATCH, " 1.0.4", "is not a semantic version"),
        (None, PATCH, "1.0", "is not a semantic version"),
        ("1.0", PATCH, "1.0.4", "version '1.0' is not a semantic version"),
    ],
)
def test_accept_rejects(previous: str | None, impact: Impact, explicit: str, message: str) -> None:
    with pytest.raises(VersioningError) as caught:
        versioner.accept(previous, impact, explicit)
    assert caught.value.field == "version"
    assert message in str(caught.value)


def test_accepted_default_always_matches_its_impact() -> None:
    for previous in ["0.0.1", "1.0.3", "1.9.9", "2.0.0-rc.1", "10.4.0+b"]:
        for impact in Impact:
            chosen = versioner.next_version(previous, impact)
            assert versioner.accept(previous, impact, chosen) == chosen


# -------------------------------------------------------------------------- template variables


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("no variables here", []),
        ("Hello {{ name }}!", ["name"]),
        ("Hello {{name}}!", ["name"]),
        ("{{ name | upper }} and {{name|default('x')}}", ["name"]),
        ("{{ b }} {{ a }} {{ b }} {{ c }}", ["b", "a", "c"]),
        ("{{ customer.name }} {{ customer }}", ["customer.name", "customer"]),
        ("{{ _private }} {{ x1 }}", ["_private", "x1"]),
        ("{{- trimmed -}} {{ spaced   }}", ["trimmed", "spaced"]),
        ("{{\n  multi_line\n}}", ["multi_line"]),
        ("{{ 1abc }} {{ 'literal' }} {{ }} {{ a b }}", []),
        ("{ single } {{ ok }} }} {{", ["ok"]),
        ("{% if x %}{{ y }}{% endif %}", ["y"]),
        ("{{ a.b.c }}", ["a.b.c"]),
        ("{{ a..b }} {{ a. }}", []),
        ("{{ Name }} {{ name }}", ["Name", "name"]),
    ],
)
def test_template_variables(text: str, expected: list[str]) -> None:
    assert template_variables(text) == expected


# ---------------------------------------------------------------------------- variable changes

V = Variable


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ([], [], []),
        ([V("a")], [V("a")], []),
        ([V("a", False)], [V("a", False)], []),
        ([V("a"), V("b")], [V("b"), V("a")], []),
        ([V("customer")], [], [(MAJOR, "input variable 'customer' was removed")]),
        (
            [V("customer")],
            [V("client")],
            [
                (MAJOR, "input variable 'customer' was removed (or renamed to 'client')"),
                (MAJOR, "required input variable 'client' was added"),
            ],
        ),
        (
            [V("customer")],
            [V("client", False)],
            [
                (MAJOR, "input variable 'customer' was removed (or renamed to 'client')"),
                (MINOR, "optional input variable 'client' was added"),
            ],
        ),
        (
            [V("a"), V("b")],
            [V("x", False), V("y", False), V("z", False)],
            [
                (MAJOR, "input variable 'a' was removed (or renamed to 'x', 'y' or 'z')"),
                (MAJOR, "input variable 'b' was removed (or renamed to 'x', 'y' or 'z')"),
                (MINOR, "optional input variable 'x' was added"),
                (MINOR, "optional input variable 'y' was added"),
                (MINOR, "optional input variable 'z' was added"),
            ],
        ),
        ([], [V("tone")], [(MAJOR, "required input variable 'tone' was added")]),
        ([], [V("tone", False)], [(MINOR, "optional input variable 'tone' was added")]),
        ([V("tone", False)], [V("tone")], [(MAJOR, "input variable 'tone' became required")]),
        ([V("tone")], [V("tone", False)], [(MINOR, "input variable 'tone' became optional")]),
        (
            [V("a"), V("b", False), V("gone")],
            [V("a", False), V("b"), V("new", False)],
            [
                (MAJOR, "input variable 'gone' was removed (or renamed to 'new')"),
                (MINOR, "input variable 'a' became optional"),
                (MAJOR, "input variable 'b' became required"),
                (MINOR, "optional input variable 'new' was added"),
            ],
        ),
        # Declared twice: required wins, and a duplicate is no change.
        ([V("a", False), V("a")], [V("a")], []),
        ([V("a")], [V("a", False), V("a", True)], []),
    ],
)
def test_variable_changes(
    old: list[Variable], new: list[Variable], expected: list[tuple[Impact, str]]
) -> None:
    assert pairs(variable_changes(old, new)) == expected


def test_variable_changes_accept_tuples() -> None:
    assert pairs(variable_changes((V("a"),), (V("a"), V("b", False)))) == [
        (MINOR, "optional input variable 'b' was added")
    ]


# ------------------------------------------------------------------------------ schema changes

OBJ: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tier": {"type": "string", "enum": ["free", "pro"]},
        "routes": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"target": {"type": "string"}, "weight": {"type": "number"}},
                "required": ["target"],
            },
        },
    },
    "required": ["name"],
}


def edited(**changes: Any) -> dict[str, Any]:
    """A deep copy of OBJ with the top-level keys replaced."""
    import copy

    schema = copy.deepcopy(OBJ)
    schema.update(changes)
    return schema


def with_property(name: str, value: Any) -> dict[str, Any]:
    schema = edited()
    if value is None:
        del schema["properties"][name]
    else:
        schema["properties"][name] = value
    return schema


ROUTES_ITEMS = OBJ["properties"]["routes"]["items"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, None, []),
        (OBJ, OBJ, []),
        (None, OBJ, [(MINOR, "interface declared")]),
        (OBJ, None, [(MAJOR, "interface removed")]),
        ({}, {}, []),
        # Properties.
        (OBJ, with_property("age", None), [(MAJOR, "property 'age' was removed")]),
        (OBJ, with_property("name", None), [(MAJOR, "property 'name' was removed")]),
        (
            OBJ,
            with_property("email", {"type": "string"}),
            [(MINOR, "optional property 'email' was added")],
        ),
        (
            OBJ,
            {
                **with_property("email", {"type": "string"}),
                "required": ["name", "email"],
            },
            [(MAJOR, "required property 'email' was added")],
        ),
        (OBJ, edited(required=["name", "age"]), [(MAJOR, "property 'age' is now required")]),
        (OBJ, edited(required=[]), [(MINOR, "property 'name' is no longer required")]),
        (
            OBJ,
            {key: value for key, value in OBJ.items() if key != "required"},
            [(MINOR, "property 'name' is no longer required")],
        ),
        (
            OBJ,
            edited(required=["age"]),
            [
                (MINOR, "property 'name' is no longer required"),
                (MAJOR, "property 'age' is now required"),
            ],
        ),
        # Required but undefined before: a definition narrows "anything".
        (
            {"type": "object", "required": ["x"]},
            {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
            [(MAJOR, "type of 'x' is now restricted to 'string'")],
        ),
        # Types.
        (
            OBJ,
            with_property("age", {"type": "string"}),
            [(MAJOR, "type of 'age' changed from 'integer' to 'string'")],
        ),
        (
            OBJ,
            with_property("age", {"type": ["integer", "null"]}),
            [(MINOR, "type of 'age' was widened from 'integer' to ['integer', 'null']")],
        ),
        (
            OBJ,
            with_property("age", {"type": "number"}),
            [(MINOR, "type of 'age' was widened from 'integer' to 'number'")],
        ),
        (
            with_property("age", {"type": "number"}),
            OBJ,
            [(MAJOR, "type of 'age' was narrowed from 'number' to 'integer'")],
        ),
        (
            with_property("age", {"type": ["integer", "null"]}),
            OBJ,
            [(MAJOR, "type of 'age' was narrowed from ['integer', 'null'] to 'integer'")],
        ),
        (
            with_property("age", {"type": ["integer", "string"]}),
            with_property("age", {"type": ["string", "integer"]}),
            [],
        ),
        (
            with_property("age", {"type": ["integer", "number"]}),
            with_property("age", {"type": "number"}),
            [],
        ),
        (
            OBJ,
            with_property("age", {}),
            [(MINOR, "type of 'age' is no longer restricted (was 'integer')")],
        ),
        (
            with_property("age", {}),
            OBJ,
            [(MAJOR, "type of 'age' is now restricted to 'integer'")],
        ),
        (
            {"type": "object"},
            {"type": "array"},
            [(MAJOR, "type of the interface changed from 'object' to 'array'")],
        ),
        (
            {"type": ["string", "null"]},
            {"type": ["integer", "null"]},
            [
                (
                    MAJOR,
                    "type of the interface changed from ['string', 'null'] to ['integer', 'null']",
                )
            ],
        ),
        # Enums.
        (
            OBJ,
            with_property("tier", {"type": "string", "enum": ["free"]}),
            [(MAJOR, "enum value 'pro' of 'tier' was removed")],
        ),
        (
            OBJ,
            with_property("tier", {"type": "string", "enum": ["free", "pro", "team"]}),
            [(MINOR, "enum value 'team' was added to 'tier'")],
        ),
        (
            OBJ,
            with_property("tier", {"type": "string", "enum": ["pro", "free"]}),
            [],
        ),
        (
            OBJ,
            with_property("tier", {"type": "string", "enum": ["free", "team"]}),
            [
                (MAJOR, "enum value 'pro' of 'tier' was removed"),
                (MINOR, "enum value 'team' was added to 'tier'"),
            ],
        ),
        (
            OBJ,
            with_property("tier", {"type": "string"}),
            [(MINOR, "values of 'tier' are no longer restricted")],
        ),
        (
            with_property("tier", {"type": "string"}),
            OBJ,
            [(MAJOR, "values of 'tier' are now restricted to 'free', 'pro'")],
        ),
        # JSON keeps true and 1 apart, and objects compare by content.
        (
            {"enum": [1, {"a": 1, "b": 2}]},
            {"enum": [True, {"b": 2, "a": 1}]},
            [
                (MAJOR, "enum value 1 of the interface was removed"),
                (MINOR, "enum value true was added to the interface"),
            ],
        ),
        # Nested objects inside arrays.
        (
            OBJ,
            with_property(
                "routes",
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"weight": {"type": "number"}},
                        "required": [],
                    },
                },
            ),
            [(MAJOR, "property 'routes.items.target' was removed")],
        ),
        (
            OBJ,
            with_property(
                "routes",
                {
                    "type": "array",
                    "items": {**ROUTES_ITEMS, "required": ["target", "weight"]},
                },
            ),
            [(MAJOR, "property 'routes.items.weight' is now required")],
        ),
        (
            OBJ,
            with_property(
                "routes",
                {
                    "type": "array",
                    "items": {
                        **ROUTES_ITEMS,
                        "properties": {
                            "target": {"type": "string", "enum": ["a", "b"]},
                            "weight": {"type": ["number", "null"]},
                        },
                    },
                },
            ),
            [
                (MAJOR, "values of 'routes.items.target' are now restricted to 'a', 'b'"),
                (
                    MINOR,
                    "type of 'routes.items.weight' was widened from 'number' to ['number', 'null']",
                ),
            ],
        ),
        (
            OBJ,
            with_property("routes", {"type": "array", "items": {"type": "string"}}),
            [(MAJOR, "type of 'routes.items' changed from 'object' to 'string'")],
        ),
        (
            OBJ,
            with_property("routes", {"type": "array"}),
            # Consumers relied on the item properties, so losing them is still breaking.
            [
                (MINOR, "type of 'routes.items' is no longer restricted (was 'object')"),
                (MAJOR, "property 'routes.items.target' was removed"),
                (MAJOR, "property 'routes.items.weight' was removed"),
            ],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"type": "string", "properties": {}, "additionalProperties": False},
            [(MAJOR, "type of the interface changed from 'object' to 'string'")],
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "items": {"type": "integer"}},
            [(MAJOR, "type of the interface changed from 'array' to 'object'")],
        ),
        (
            {"type": "object", "properties": {"a": {}}},
            {"type": ["object", "null"], "properties": {}},
            [
                (MINOR, "type of the interface was widened from 'object' to ['object', 'null']"),
                (MAJOR, "property 'a' was removed"),
            ],
        ),
        (
            {"type": "array"},
            {"type": "array", "items": {"type": "string"}},
            [(MAJOR, "type of 'items' is now restricted to 'string'")],
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": False},
            [(MAJOR, "items are no longer allowed in the interface")],
        ),
        (
            {"type": "array", "items": False},
            {"type": "array", "items": True},
            [(MINOR, "items are now allowed in the interface")],
        ),
        (
            {"type": "object", "properties": {"a": {"type": "object", "properties": {"b": {}}}}},
            {"type": "object", "properties": {"a": {"type": "object", "properties": {}}}},
            [(MAJOR, "property 'a.b' was removed")],
        ),
        (
            {"properties": {"a": True}},
            {"properties": {"a": False}},
            [(MAJOR, "property 'a' is no longer allowed")],
        ),
        (
            {"properties": {"a": False}},
            {"properties": {"a": {"type": "string"}}},
            [(MINOR, "property 'a' is now allowed")],
        ),
        # additionalProperties.
        (
            OBJ,
            edited(additionalProperties=False),
            [(MAJOR, "additional properties are no longer allowed in the interface")],
        ),
        (
            edited(additionalProperties=True),
            edited(additionalProperties=False),
            [(MAJOR, "additional properties are no longer allowed in the interface")],
        ),
        (
            edited(additionalProperties=False),
            OBJ,
            [(MINOR, "additional properties are now allowed in the interface")],
        ),
        (edited(additionalProperties=True), OBJ, []),
        (
            edited(additionalProperties={"type": "string"}),
            edited(additionalProperties={"type": "integer"}),
            [(MAJOR, "type of 'additionalProperties' changed from 'string' to 'integer'")],
        ),
        (
            {"properties": {"meta": {"type": "object"}}},
            {"properties": {"meta": {"type": "object", "additionalProperties": False}}},
            [(MAJOR, "additional properties are no longer allowed in 'meta'")],
        ),
    ],
)
def test_schema_changes(
    old: dict[str, Any] | None, new: dict[str, Any] | None, expected: list[tuple[Impact, str]]
) -> None:
    assert pairs(schema_changes(old, new)) == expected


def test_schema_changes_with_a_path_prefix() -> None:
    assert pairs(schema_changes({"type": "string"}, {"type": "integer"}, "input")) == [
        (MAJOR, "type of 'input' changed from 'string' to 'integer'")
    ]
    assert pairs(schema_changes(None, {}, "input")) == [(MINOR, "interface declared for 'input'")]
    assert pairs(schema_changes({}, None, "input")) == [(MAJOR, "interface removed for 'input'")]


def test_schema_changes_several_at_once_keep_order() -> None:
    new = edited(
        type=["object", "null"],
        properties={
            "name": {"type": "string"},
            "tier": {"type": "string", "enum": ["free"]},
            "routes": OBJ["properties"]["routes"],
            "note": {"type": "string"},
        },
        required=["name", "tier"],
        additionalProperties=False,
    )
    assert pairs(schema_changes(OBJ, new)) == [
        (MINOR, "type of the interface was widened from 'object' to ['object', 'null']"),
        (MAJOR, "property 'age' was removed"),
        (MAJOR, "property 'tier' is now required"),
        (MAJOR, "enum value 'pro' of 'tier' was removed"),
        (MINOR, "optional property 'note' was added"),
        (MAJOR, "additional properties are no longer allowed in the interface"),
    ]
    assert highest(schema_changes(OBJ, new)) is MAJOR


def test_schema_changes_ignore_what_they_do_not_compare() -> None:
    old = {"type": "string", "description": "a name", "minLength": 1, "title": "Name"}
    new = {"type": "string", "description": "the name", "minLength": 3}
    assert schema_changes(old, new) == []


def test_schema_changes_tolerate_malformed_parts() -> None:
    old = {"properties": ["not", "a", "mapping"], "required": "name", "items": [{"type": "string"}]}
    new = {"properties": None, "required": None, "items": None}
    assert schema_changes(old, new) == []


# ---------------------------------------------------------------------------- highest, impact


@pytest.mark.parametrize(
    ("impacts", "expected"),
    [([], None), ([PATCH], PATCH), ([MINOR, PATCH], MINOR), ([PATCH, MAJOR, MINOR], MAJOR)],
)
def test_highest(impacts: list[Impact], expected: Impact | None) -> None:
    changes = [ContractChange(impact, f"change {index}") for index, impact in enumerate(impacts)]
    assert highest(changes) is expected
    assert highest(iter(changes)) is expected


REMOVED = ContractChange(MAJOR, "input variable 'customer' was removed")
ADDED = ContractChange(MINOR, "optional input variable 'tone' was added")
TYPO = ContractChange(PATCH, "wording")


@pytest.mark.parametrize(
    ("declared", "changes"),
    [
        (PATCH, []),
        (PATCH, [TYPO]),
        (MINOR, [ADDED, TYPO]),
        (MAJOR, [REMOVED, ADDED]),
        (MAJOR, []),
        (MINOR, []),
    ],
)
def test_check_impact_accepts_enough(declared: Impact, changes: list[ContractChange]) -> None:
    versioner.check_impact(declared, changes)


@pytest.mark.parametrize(
    ("declared", "changes", "message"),
    [
        (
            MINOR,
            [ADDED, REMOVED],
            "declared impact 'minor' is too low: input variable 'customer' was removed"
            " requires 'major'",
        ),
        (
            PATCH,
            [TYPO, ADDED, REMOVED],
            "declared impact 'patch' is too low: optional input variable 'tone' was added"
            " requires 'minor'",
        ),
        (
            PATCH,
            [REMOVED, ADDED],
            "declared impact 'patch' is too low: input variable 'customer' was removed"
            " requires 'major'",
        ),
    ],
)
def test_check_impact_names_the_first_change_that_requires_more(
    declared: Impact, changes: list[ContractChange], message: str
) -> None:
    with pytest.raises(VersioningError) as caught:
        versioner.check_impact(declared, changes)
    assert caught.value.field == "impact"
    assert str(caught.value) == message


def test_check_impact_with_real_changes() -> None:
    changes = variable_changes([V("customer")], [V("client")])
    with pytest.raises(VersioningError) as caught:
        versioner.check_impact(MINOR, changes)
    assert "input variable 'customer' was removed (or renamed to 'client') requires 'major'" in str(
        caught.value
    )
