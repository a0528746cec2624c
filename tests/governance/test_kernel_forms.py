"""``governance.kernel.forms``: the typed-list field cleaning every app's forms share."""

from __future__ import annotations

from typing import Any

import pytest
from django import forms

from governance.kernel.forms import entries, lines, name_values, typed_value


def test_lines_keeps_non_blank_lines_stripped():
    assert lines("  a \n\n b\r\n  \n") == ["a", "b"]
    assert lines("") == []


def test_entries_split_on_commas_and_new_lines():
    assert entries(" gpt-4o , claude\n\n mistral,, \r\n x ") == ["gpt-4o", "claude", "mistral", "x"]
    assert entries("") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [("0.93", 0.93), ("3", 3), ("true", True), ("false", False), ("high", "high"),
     ('"quoted"', '"quoted"'), ("[1]", "[1]"), ("null", "null")],
)  # fmt: skip
def test_typed_value_reads_numbers_and_booleans_else_keeps_the_text(text: str, value: Any):
    assert typed_value(text) == value
    assert type(typed_value(text)) is type(value)


def test_name_values_as_text_with_blank_values_allowed():
    text = "group = sales\n\nempty=\nurl=a=b"
    assert name_values(text, blank_values=True, noun="Label") == {
        "group": "sales",
        "empty": "",
        "url": "a=b",
    }


def test_name_values_typed_and_numbers():
    assert name_values("a=1\nb=yes\nc=true", values="typed") == {"a": 1, "b": "yes", "c": True}
    assert name_values("accuracy=0.93\nn=4", values="number") == {"accuracy": 0.93, "n": 4}


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("a=1\nno sign", {}, "Line 2 ('no sign') is not name=value."),
        ("=1", {}, "Line 1 ('=1') is not name=value."),
        ("a=", {}, "Line 1 ('a=') is not name=value."),
        ("a=1\n a = 2", {}, "'a' is given twice."),
        ("g=1\ng=2", {"noun": "Label", "blank_values": True}, "Label 'g' is given twice."),
        ("acc=high", {"values": "number"}, "'acc' must be a number, not 'high'."),
        ("acc=true", {"values": "number"}, "'acc' must be a number, not 'true'."),
    ],
)
def test_name_values_refusals_name_the_line_or_the_name(
    text: str, options: dict[str, Any], message: str
):
    with pytest.raises(forms.ValidationError) as caught:
        name_values(text, **options)
    assert caught.value.messages == [message]
