"""The API refuses JSON the canonical form or the database cannot hold, saying where."""

from __future__ import annotations

from typing import Any

import pytest

from reviews.api.serializers import EvidenceSerializer, PolicyUpdateSerializer


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "bias",
            {"group": {"note": "a\x00b"}},
            "Text must not contain NUL characters at group.note.",
        ),
        ("bias", {"k\x00": 1}, "Text must not contain NUL characters."),
        ("safety", {"runs": [1, 2**53]}, "Integers must be within ±(2**53 - 1) at runs[1]."),
        ("safety", {"ok": -(2**53 - 1), "x": float("inf")}, "Numbers must be finite at x."),
    ],
)
def test_evidence_names_the_first_unstorable_value_and_where(
    field: str, value: Any, message: str
) -> None:
    data = {"version": "acme/prompt/p@1.0.0", "metrics": {"accuracy": 0.9}, field: value}
    serializer = EvidenceSerializer(data=data)
    assert not serializer.is_valid()
    assert [str(e) for e in serializer.errors[field]] == [message]


@pytest.mark.parametrize("number", [2**53, float("nan")])
def test_a_metric_beyond_what_is_stored_is_not_a_number(number: float) -> None:
    data = {"version": "acme/prompt/p@1.0.0", "metrics": {"accuracy": number}}
    serializer = EvidenceSerializer(data=data)
    assert not serializer.is_valid()
    assert [str(e) for e in serializer.errors["metrics"]["accuracy"]] == ["Must be a number."]


def test_a_policy_document_is_checked_whole() -> None:
    serializer = PolicyUpdateSerializer(
        data={"rules": {"rules": [{"when": "\x00"}]}, "reason": "r"}
    )
    assert not serializer.is_valid()
    assert [str(e) for e in serializer.errors["rules"]] == [
        "Text must not contain NUL characters at rules[0].when."
    ]
    assert PolicyUpdateSerializer(data={"rules": {"rules": [2**53 - 1]}, "reason": "r"}).is_valid()
