"""Reference grammar: every accepted form round-trips, every bad input names its field."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest
import semver

from registry.references import (
    FIELDS,
    BrokenReference,
    Reference,
    parse_reference,
    parse_version,
    version_key,
)


# The package conftest installs built-in classes in the database for every test; these modules
# are pure and must not need (or contend for) a database, so the fixture is overridden here.
@pytest.fixture(autouse=True)
def _builtin_classes() -> None:
    return None


HASH = "9f2c" + "0123456789abcdef" * 3 + "a1b2c3d4e5f6"
SHORT = "9f2c0a1b"

# Deliberately ill-typed calls go through this untyped alias: the parser must reject garbage
# at run time, which the type checker cannot promise.
any_parse: Callable[..., Reference] = parse_reference


def test_fixture_hash_is_full_length() -> None:
    assert len(HASH) == 64


ACCEPTED: list[tuple[str, dict[str, str], Reference]] = [
    ("qualify-lead", {}, Reference(slug="qualify-lead")),
    ("qualify-lead@1.1.0", {}, Reference(slug="qualify-lead", version="1.1.0")),
    (
        f"qualify-lead:1.1.0#{HASH}",
        {},
        Reference(slug="qualify-lead", version="1.1.0", sha256=HASH),
    ),
    (
        f"qualify-lead@1.1.0#{SHORT}",
        {},
        Reference(slug="qualify-lead", version="1.1.0", sha256=SHORT),
    ),
    (
        "prompt/acme/qualify-lead",
        {},
        Reference(slug="qualify-lead", class_slug="prompt", tenant="acme"),
    ),
    (
        "prompt/acme/qualify-lead/1.2.0",
        {},
        Reference(slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.2.0"),
    ),
    (
        "prompt/acme/qualify-lead@1.2.0",
        {},
        Reference(slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.2.0"),
    ),
    (
        f"prompt/acme/qualify-lead/1.2.0#{HASH}",
        {},
        Reference(
            slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.2.0", sha256=HASH
        ),
    ),
    (
        f"prompt/acme/qualify-lead@1.2.0#{HASH}",
        {},
        Reference(
            slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.2.0", sha256=HASH
        ),
    ),
    (
        f"prompt/acme/qualify-lead:1.2.0#{SHORT}",
        {},
        Reference(
            slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.2.0", sha256=SHORT
        ),
    ),
    (
        "model-card/a/x/2.0.0-rc.1+build.5",
        {},
        Reference(slug="x", class_slug="model-card", tenant="a", version="2.0.0-rc.1+build.5"),
    ),
    ("x@0.0.0", {}, Reference(slug="x", version="0.0.0")),
    ("x@1.0.0-alpha-1.0", {}, Reference(slug="x", version="1.0.0-alpha-1.0")),
    ("x@1.0.0+001", {}, Reference(slug="x", version="1.0.0+001")),
    ("x@10.20.30", {}, Reference(slug="x", version="10.20.30")),
    ("a--b@1.0.0", {}, Reference(slug="a--b", version="1.0.0")),
    ("9lives", {}, Reference(slug="9lives")),
    ("  qualify-lead@1.1.0\n", {}, Reference(slug="qualify-lead", version="1.1.0")),
    ("s" * 100, {}, Reference(slug="s" * 100)),
    (
        "qualify-lead@1.1.0",
        {"tenant": "acme"},
        Reference(slug="qualify-lead", tenant="acme", version="1.1.0"),
    ),
    (
        "qualify-lead@1.1.0",
        {"tenant": "acme", "class_slug": "prompt"},
        Reference(slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.1.0"),
    ),
    (
        f"qualify-lead:1.1.0#{HASH}",
        {"tenant": "acme", "class_slug": "prompt"},
        Reference(
            slug="qualify-lead", class_slug="prompt", tenant="acme", version="1.1.0", sha256=HASH
        ),
    ),
    (
        "qualify-lead",
        {"class_slug": "prompt"},
        Reference(slug="qualify-lead", class_slug="prompt"),
    ),
    # Explicit parts win over the context, even when they differ.
    (
        "agent/globex/router/3.0.0",
        {"tenant": "acme", "class_slug": "prompt"},
        Reference(slug="router", class_slug="agent", tenant="globex", version="3.0.0"),
    ),
    (
        "t" * 63 + "/" + "t" * 63 + "/x",
        {},
        Reference(slug="x", class_slug="t" * 63, tenant="t" * 63),
    ),
]


@pytest.mark.parametrize(("text", "context", "expected"), ACCEPTED)
def test_accepted_forms_parse(text: str, context: dict[str, str], expected: Reference) -> None:
    assert parse_reference(text, **context) == expected


@pytest.mark.parametrize(("text", "context", "expected"), ACCEPTED)
def test_accepted_forms_round_trip(text: str, context: dict[str, str], expected: Reference) -> None:
    reference = parse_reference(text, **context)
    assert parse_reference(str(reference), **context) == reference
    # The canonical text is a fixed point.
    assert str(parse_reference(str(reference), **context)) == str(reference)


@pytest.mark.parametrize(
    ("reference", "text"),
    [
        (Reference(slug="a"), "a"),
        (Reference(slug="a", version="1.0.0"), "a@1.0.0"),
        (Reference(slug="a", version="1.0.0", sha256=HASH), f"a:1.0.0#{HASH}"),
        (Reference(slug="a", tenant="acme", version="1.0.0"), "a@1.0.0"),
        (Reference(slug="a", class_slug="prompt", version="1.0.0"), "a@1.0.0"),
        (Reference(slug="a", class_slug="prompt", tenant="acme"), "prompt/acme/a"),
        (Reference(slug="a", class_slug="p", tenant="t", version="1.0.0"), "p/t/a/1.0.0"),
        (
            Reference(slug="a", class_slug="p", tenant="t", version="1.0.0", sha256=SHORT),
            f"p/t/a/1.0.0#{SHORT}",
        ),
    ],
)
def test_str_is_the_most_specific_canonical_text(reference: Reference, text: str) -> None:
    assert str(reference) == text


def test_random_references_round_trip() -> None:
    rng = random.Random(20240611)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-"

    def name(limit: int) -> str:
        size = rng.randint(1, limit)
        if size == 1:
            return rng.choice(alphabet[:-1])
        middle = "".join(rng.choice(alphabet) for _ in range(size - 2))
        return rng.choice(alphabet[:-1]) + middle + rng.choice(alphabet[:-1])

    def version() -> str:
        core = ".".join(str(rng.choice([0, 1, 2, 10, 123])) for _ in range(3))
        if rng.random() < 0.3:
            core += "-" + rng.choice(["alpha", "rc.1", "beta.11", "0.3.7", "x-y"])
        if rng.random() < 0.3:
            core += "+" + rng.choice(["build.1", "001", "sha.5114f85"])
        return core

    for _ in range(500):
        has_version = rng.random() < 0.7
        reference = Reference(
            slug=name(30),
            class_slug=name(20) if rng.random() < 0.6 else None,
            tenant=name(63) if rng.random() < 0.6 else None,
            version=version() if has_version else None,
            sha256=(
                "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(8, 64)))
                if has_version and rng.random() < 0.5
                else None
            ),
        )
        context = {"class_slug": reference.class_slug, "tenant": reference.tenant}
        text = str(reference)
        if len(text) <= 300:
            assert parse_reference(text, **context) == reference, text


LOOKALIKE_A = "\u0430"  # Cyrillic small letter a
FULLWIDTH_AT = "\uff20"
ZERO_WIDTH_SPACE = "\u200b"

REJECTED: list[tuple[Any, dict[str, str], str]] = [
    ("", {}, "reference"),
    ("   \t\n", {}, "reference"),
    ("x" * 301, {}, "reference"),
    ("prompt/acme/" + "s" * 289, {}, "reference"),
    ("acme/qualify-lead", {}, "reference"),
    ("a/b/c/1.0.0/extra", {}, "reference"),
    ("prompt/acme/qualify-lead/", {}, "reference"),
    ("/prompt/acme/qualify-lead", {}, "reference"),
    ("qualify-lead/", {}, "reference"),
    ("a/b/c/d/e/f", {}, "reference"),
    (None, {}, "reference"),
    (42, {}, "reference"),
    ("Prompt/acme/qualify-lead", {}, "class"),
    ("pr_ompt/acme/x", {}, "class"),
    ("-prompt/acme/x", {}, "class"),
    ("c" * 101 + "/acme/x", {}, "class"),
    ("x", {"class_slug": "Bad"}, "class"),
    ("prompt/Acme/qualify-lead", {}, "tenant"),
    ("prompt/../qualify-lead", {}, "tenant"),
    ("prompt//qualify-lead", {}, "tenant"),
    ("prompt/acme-/x", {}, "tenant"),
    ("prompt/" + "t" * 64 + "/x", {}, "tenant"),
    ("x", {"tenant": "ac me"}, "tenant"),
    ("QUALIFY-LEAD", {}, "slug"),
    ("qualify lead", {}, "slug"),
    ("qualify-lead-", {}, "slug"),
    ("-qualify-lead", {}, "slug"),
    ("qualify.lead", {}, "slug"),
    ("..", {}, "slug"),
    (f"qu{LOOKALIKE_A}lify-lead", {}, "slug"),
    (f"qualify-lead{FULLWIDTH_AT}1.0.0", {}, "slug"),
    (f"qualify{ZERO_WIDTH_SPACE}-lead", {}, "slug"),
    ("qualify-lead @1.0.0", {}, "slug"),
    ("s" * 101, {}, "slug"),
    ("@1.0.0", {}, "slug"),
    ("prompt/acme/x@1.0.0/1.0.0", {}, "slug"),
    ("qualify-lead@", {}, "version"),
    ("qualify-lead@v1.0.0", {}, "version"),
    ("qualify-lead@1.0", {}, "version"),
    ("qualify-lead@01.0.0", {}, "version"),
    ("qualify-lead@1.00.0", {}, "version"),
    ("qualify-lead@1.0.0-01", {}, "version"),
    ("qualify-lead@1.0.0-", {}, "version"),
    ("qualify-lead@1.0.0+", {}, "version"),
    ("qualify-lead@1.0.0@2.0.0", {}, "version"),
    ("qualify-lead@1.0.0 beta", {}, "version"),
    ("qualify-lead@\u0661.0.0", {}, "version"),
    ("prompt/acme/qualify-lead/latest", {}, "version"),
    (f"qualify-lead#{HASH}", {}, "version"),
    (f"prompt/acme/qualify-lead#{HASH}", {}, "version"),
    ("qualify-lead:1.0.0", {}, "sha256"),
    ("qualify-lead@1.0.0#", {}, "sha256"),
    (f"qualify-lead:1.0.0#{HASH}0", {}, "sha256"),
    (f"qualify-lead:1.0.0#{HASH.upper()}", {}, "sha256"),
    ("qualify-lead:1.0.0#9f2c0a1", {}, "sha256"),
    ("qualify-lead:1.0.0#9f2c0a1g", {}, "sha256"),
    ("qualify-lead:1.0.0#9f2c0a1b#9f2c0a1b", {}, "sha256"),
    (f"qualify-lead:1.0.0#sha256:{SHORT}", {}, "sha256"),
    (f"qualify-lead:1.0.0#{SHORT[:-1]}{LOOKALIKE_A}", {}, "sha256"),
]


@pytest.mark.parametrize(("text", "context", "field"), REJECTED)
def test_rejected_inputs_name_the_field(text: Any, context: dict[str, str], field: str) -> None:
    with pytest.raises(BrokenReference) as caught:
        any_parse(text, **context)
    assert caught.value.field == field, str(caught.value)
    assert field in FIELDS
    assert isinstance(caught.value, ValueError)
    assert str(caught.value)


def test_rejection_table_is_broad() -> None:
    assert len(REJECTED) >= 25
    assert {field for _, _, field in REJECTED} == set(FIELDS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x@1.2", "version '1.2' is not a semantic version (MAJOR.MINOR.PATCH)"),
        ("x@v1.0.0", "version 'v1.0.0' must not start with 'v'; write '1.0.0'"),
        ("x@01.0.0", "version '01.0.0' has a leading zero in MAJOR"),
        ("x@1.0.0-01", "malformed pre-release or build part"),
        ("Acme", "slug 'Acme' must be lowercase"),
        ("qualify lead", "slug 'qualify lead' contains ' '"),
        ("-x", "must start and end with a letter or digit"),
        (f"qu{LOOKALIKE_A}lify", "U+0430 CYRILLIC SMALL LETTER A"),
        ("a/b", "has 2 path segments"),
        ("a/b/c/", "must not start or end with '/'"),
        ("", "reference is empty"),
        ("x" * 301, "reference is 301 characters long; at most 300 are allowed"),
        ("x:1.0.0", "has no '#sha256'"),
        (f"x:1.0.0#{HASH}0", "is 65 characters long"),
        ("x:1.0.0#abcxyz12", "contains 'x'"),
        ("x:1.0.0#abcd", "too short"),
        (f"x#{HASH}", "no version before it"),
        ("p/T/x", "tenant 'T' must be lowercase"),
        ("P/t/x", "class slug 'P' must be lowercase"),
    ],
)
def test_messages_say_what_is_wrong_in_plain_words(text: str, message: str) -> None:
    with pytest.raises(BrokenReference) as caught:
        parse_reference(text)
    assert message in str(caught.value)


def test_long_values_are_cut_in_messages() -> None:
    with pytest.raises(BrokenReference) as caught:
        parse_reference("A" * 200)
    assert len(str(caught.value)) < 200


def test_control_characters_are_visible_in_messages() -> None:
    with pytest.raises(BrokenReference) as caught:
        parse_reference("qualify\x00lead")
    assert caught.value.field == "slug"
    assert "\\x00" in str(caught.value)


def test_context_never_overrides_explicit_parts() -> None:
    reference = parse_reference("agent/globex/router", tenant="acme", class_slug="prompt")
    assert (reference.class_slug, reference.tenant) == ("agent", "globex")


def test_pinned_and_version_properties() -> None:
    full = parse_reference(f"qualify-lead:1.1.0#{HASH}")
    prefix = parse_reference(f"qualify-lead:1.1.0#{SHORT}")
    unpinned = parse_reference("qualify-lead@1.1.0")
    artifact = parse_reference("qualify-lead")
    assert full.is_fully_pinned
    assert not prefix.is_fully_pinned
    assert not unpinned.is_fully_pinned
    assert not artifact.is_fully_pinned
    assert full.names_version
    assert prefix.names_version
    assert unpinned.names_version
    assert not artifact.names_version
    assert full.pinned() == f"qualify-lead:1.1.0#{HASH}"
    assert prefix.pinned() == f"qualify-lead:1.1.0#{SHORT}"


def test_pinned_needs_version_and_hash() -> None:
    with pytest.raises(BrokenReference) as caught:
        Reference(slug="a").pinned()
    assert caught.value.field == "version"
    with pytest.raises(BrokenReference) as caught:
        Reference(slug="a", version="1.0.0").pinned()
    assert caught.value.field == "sha256"


def test_path() -> None:
    full = Reference(slug="a", class_slug="p", tenant="t", version="1.0.0", sha256=HASH)
    assert full.path() == "p/t/a/1.0.0"
    assert Reference(slug="a", class_slug="p", tenant="t").path() == "p/t/a"


@pytest.mark.parametrize(
    ("reference", "field"),
    [
        (Reference(slug="a"), "class"),
        (Reference(slug="a", tenant="t"), "class"),
        (Reference(slug="a", class_slug="p"), "tenant"),
    ],
)
def test_path_needs_class_and_tenant(reference: Reference, field: str) -> None:
    with pytest.raises(BrokenReference) as caught:
        reference.path()
    assert caught.value.field == field


def test_with_defaults_fills_only_missing_parts() -> None:
    short = Reference(slug="a", version="1.0.0")
    assert short.with_defaults(class_slug="p", tenant="t") == Reference(
        slug="a", class_slug="p", tenant="t", version="1.0.0"
    )
    explicit = Reference(slug="a", class_slug="agent", tenant="globex")
    assert explicit.with_defaults(class_slug="p", tenant="t") == explicit
    assert short.with_defaults() == short
    assert short.with_defaults(tenant="t") == Reference(slug="a", tenant="t", version="1.0.0")


def test_with_defaults_validates() -> None:
    with pytest.raises(BrokenReference) as caught:
        Reference(slug="a").with_defaults(tenant="Bad Tenant")
    assert caught.value.field == "tenant"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"slug": "Bad"}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": "a", "class_slug": "a/b"}, "class"),
        ({"slug": "a", "tenant": "-t"}, "tenant"),
        ({"slug": "a", "version": "1.0"}, "version"),
        ({"slug": "a", "sha256": HASH}, "version"),
        ({"slug": "a", "version": "1.0.0", "sha256": "xyz"}, "sha256"),
        ({"slug": 5}, "slug"),
    ],
)
def test_references_cannot_be_built_invalid(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(BrokenReference) as caught:
        Reference(**kwargs)
    assert caught.value.field == field


def test_reference_is_frozen_and_hashable() -> None:
    reference = parse_reference("a@1.0.0")
    with pytest.raises(AttributeError):
        reference.slug = "b"  # type: ignore[misc]
    assert {reference, parse_reference(" a@1.0.0 ")} == {reference}


def test_error_survives_pickling() -> None:
    with pytest.raises(BrokenReference) as caught:
        parse_reference("x@1.0")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own object
    assert isinstance(copy, BrokenReference)
    assert copy.field == "version"
    assert str(copy) == str(caught.value)


def test_error_field_defaults_to_reference() -> None:
    assert BrokenReference("broken").field == "reference"


def test_parse_version_returns_semver() -> None:
    assert parse_version("1.2.3-rc.1+b") == semver.Version(1, 2, 3, "rc.1", "b")


SEMVER_ORG_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0-0",
    "1.1.0",
    "1.2.0",
    "1.10.0",
    "2.0.0",
    "10.0.0",
]


def test_version_key_follows_semver_org_precedence() -> None:
    shuffled = SEMVER_ORG_ORDER[:]
    random.Random(7).shuffle(shuffled)
    assert sorted(shuffled, key=version_key) == SEMVER_ORG_ORDER


def test_version_key_ignores_build_metadata() -> None:
    assert version_key("1.0.0+a") == version_key("1.0.0+b") == version_key("1.0.0")
    assert version_key("1.0.0-rc.1+x") < version_key("1.0.0")


def test_version_key_agrees_with_semver_compare() -> None:
    rng = random.Random(99)
    pre = ["", "-0", "-1", "-2", "-10", "-a", "-b", "-a.1", "-a.2", "-a.b", "-a.1.1", "-A", "-a-b"]
    pool = [
        f"{rng.randint(0, 2)}.{rng.randint(0, 2)}.{rng.randint(0, 2)}{rng.choice(pre)}"
        for _ in range(200)
    ]
    for _ in range(3000):
        left, right = rng.choice(pool), rng.choice(pool)
        expected = semver.Version.parse(left).compare(right)
        key_left, key_right = version_key(left), version_key(right)
        actual = (key_left > key_right) - (key_left < key_right)
        assert actual == expected, (left, right)


@pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "", "01.0.0"])
def test_version_key_rejects_invalid_versions(bad: str) -> None:
    with pytest.raises(BrokenReference) as caught:
        version_key(bad)
    assert caught.value.field == "version"
