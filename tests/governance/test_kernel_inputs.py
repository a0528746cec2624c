"""``governance.kernel.inputs``: input rules every service shares."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.errors import DomainError
from governance.kernel.inputs import JsonProblem, clean_text, json_problem, storable_json


@pytest.mark.parametrize(
    "value",
    [None, "", "text", 1, 1.5, True, [], {}, {"a": [1, {"b": "c"}], "d": None}, ("x", 2.0)],
)
def test_storable_json_accepts_what_the_database_stores(value: Any):
    storable_json(value, "data")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\x00b", "NUL characters are not allowed."),
        ({"k\x00": 1}, "NUL characters are not allowed."),
        ({"a": ["ok", "\x00"]}, "NUL characters are not allowed."),
        (float("nan"), "Numbers must be finite."),
        ([1, float("inf")], "Numbers must be finite."),
        ({"a": {"b": float("-inf")}}, "Numbers must be finite."),
    ],
)
def test_storable_json_refuses_nul_and_non_finite_numbers_naming_the_field(
    value: Any, message: str
):
    with pytest.raises(DomainError) as refused:
        storable_json(value, "metrics")
    assert (refused.value.message, refused.value.field) == (message, "metrics")


def test_clean_text_strips_and_refuses():
    assert clean_text("  hello  ", "title") == "hello"
    assert clean_text(None, "note", required=False) == ""
    for value, message in [
        ("   ", "The reason text is required."),
        ("x" * 11, "At most 10 characters."),
        ("a\x00", "NUL characters are not allowed."),
        (3, "Give text."),
    ]:
        with pytest.raises(DomainError) as refused:
            clean_text(value, "reason_text", limit=10)  # type: ignore[arg-type]
        assert (refused.value.message, refused.value.field) == (message, "reason_text")


@pytest.mark.parametrize(
    ("value", "safe_integers", "problem"),
    [
        ({"a": [1, {"b": "x\x00"}]}, False, JsonProblem("nul", "a[1].b")),
        ({"a\x00": float("nan")}, False, JsonProblem("nul", "")),  # a key before its value
        ([1.0, float("-inf")], False, JsonProblem("not_finite", "[1]")),
        ({"n": 2**53}, False, None),  # services store big integers
        ({"n": 2**53}, True, JsonProblem("unsafe_integer", "n")),
        ({"n": -(2**53 - 1), "t": True}, True, None),
    ],
)
def test_json_problem_is_the_first_unstorable_value_and_its_path(
    value: Any, safe_integers: bool, problem: JsonProblem | None
):
    assert json_problem(value, safe_integers=safe_integers) == problem
