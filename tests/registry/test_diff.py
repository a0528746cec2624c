"""Side-by-side text diffs that lose nothing, and key-level JSON diffs."""

from __future__ import annotations

import itertools
import math
import random
import time
from typing import Any

import pytest

from registry.diff import (
    JsonChange,
    Row,
    Segment,
    diff_stats,
    json_diff,
    split_lines,
    text_diff,
    unified_lines,
)


# The package conftest installs built-in classes in the database for every test; these modules
# are pure and must not need (or contend for) a database, so the fixture is overridden here.
@pytest.fixture(autouse=True)
def _builtin_classes() -> None:
    return None


def left_text(rows: list[Row]) -> str:
    return "".join(segment.text for row in rows for segment in row.left)


def right_text(rows: list[Row]) -> str:
    return "".join(segment.text for row in rows for segment in row.right)


def assert_well_formed(old: str, new: str, rows: list[Row]) -> None:
    """Everything a template relies on, checked for any pair of texts."""
    assert left_text(rows) == old
    assert right_text(rows) == new
    left_numbers = [row.left_no for row in rows if row.left_no is not None]
    right_numbers = [row.right_no for row in rows if row.right_no is not None]
    assert left_numbers == list(range(1, len(split_lines(old)) + 1))
    assert right_numbers == list(range(1, len(split_lines(new)) + 1))
    for row in rows:
        assert all(segment.text for segment in (*row.left, *row.right))
        # Adjacent segments alternate, or they would have been merged.
        for side in (row.left, row.right):
            assert all(a.changed != b.changed for a, b in itertools.pairwise(side))
        if row.kind == "equal":
            assert row.left == row.right
            assert not any(segment.changed for segment in row.left)
            assert row.left_no is not None
            assert row.right_no is not None
        elif row.kind == "delete":
            assert row.right == ()
            assert row.right_no is None
            assert row.left_no is not None
            assert all(segment.changed for segment in row.left)
        elif row.kind == "insert":
            assert row.left == ()
            assert row.left_no is None
            assert row.right_no is not None
            assert all(segment.changed for segment in row.right)
        else:
            assert row.kind == "replace"
            assert row.left_no is not None
            assert row.right_no is not None
            assert left_text([row]) != right_text([row])
            assert any(segment.changed for segment in (*row.left, *row.right))


WORDS = ["alpha", "beta", "gamma", "{{ name }}", "x", "", "  ", "\t", "héllo", "日本", "-", "."]


def random_text(rng: random.Random) -> str:
    lines = []
    for _ in range(rng.randint(0, 12)):
        words = [rng.choice(WORDS) for _ in range(rng.randint(0, 6))]
        lines.append(rng.choice([" ", "  ", "\t", ""]).join(words))
    ending = rng.choice(["\n", "\n", "\r\n"])
    text = ending.join(lines)
    if lines and rng.random() < 0.6:
        text += ending
    return text


def mutate(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(0, 4)):
        action = rng.choice(["delete", "insert", "edit", "swap", "ending"])
        index = rng.randrange(len(lines)) if lines else 0
        if action == "delete" and lines:
            del lines[index]
        elif action == "insert":
            lines.insert(index, " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 4))))
        elif action == "edit" and lines:
            words = lines[index].split(" ")
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            lines[index] = " ".join(words)
        elif action == "swap" and len(lines) > 1:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "ending" and lines:
            lines[index] = (
                lines[index] + "\r" if not lines[index].endswith("\r") else lines[index][:-1]
            )
    return "\n".join(lines)


def test_joining_segments_reproduces_both_texts_for_random_pairs() -> None:
    rng = random.Random(1234)
    for _ in range(1500):
        old = random_text(rng)
        new = mutate(rng, old) if rng.random() < 0.7 else random_text(rng)
        rows = text_diff(old, new)
        assert_well_formed(old, new, rows)


def test_random_identical_texts_give_only_equal_rows() -> None:
    rng = random.Random(99)
    for _ in range(300):
        text = random_text(rng)
        rows = text_diff(text, text)
        assert all(row.kind == "equal" for row in rows)
        assert len(rows) == len(split_lines(text))
        assert diff_stats(rows) == {"added": 0, "removed": 0, "changed": 0}
        assert_well_formed(text, text, rows)


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("a", ["a"]),
        ("a\n", ["a\n"]),
        ("a\nb", ["a\n", "b"]),
        ("\n\n", ["\n", "\n"]),
        ("a\r\nb\r\n", ["a\r\n", "b\r\n"]),
        ("a\rb\u2028c\x0cd", ["a\rb\u2028c\x0cd"]),
    ],
)
def test_split_lines_only_breaks_at_newline(text: str, lines: list[str]) -> None:
    assert split_lines(text) == lines
    assert "".join(lines) == text


def test_identical_text() -> None:
    rows = text_diff("a\nb\n", "a\nb\n")
    assert rows == [
        Row("equal", 1, 1, (Segment("a\n", False),), (Segment("a\n", False),)),
        Row("equal", 2, 2, (Segment("b\n", False),), (Segment("b\n", False),)),
    ]


def test_empty_texts() -> None:
    assert text_diff("", "") == []
    assert text_diff("", "a\n") == [Row("insert", None, 1, (), (Segment("a\n", True),))]
    assert text_diff("a\n", "") == [Row("delete", 1, None, (Segment("a\n", True),), ())]


def test_word_level_segments_in_a_replaced_line() -> None:
    rows = text_diff(
        "keep\nHello dear {{ name }}, welcome\nend\n", "keep\nHello {{ name }}, welcome back\nend\n"
    )
    assert [row.kind for row in rows] == ["equal", "replace", "equal"]
    replaced = rows[1]
    assert (replaced.left_no, replaced.right_no) == (2, 2)
    assert replaced.left == (
        Segment("Hello ", False),
        Segment("dear ", True),
        Segment("{{ name }}, welcome\n", False),
    )
    assert replaced.right == (
        Segment("Hello {{ name }}, welcome", False),
        Segment(" back", True),
        Segment("\n", False),
    )


def test_whitespace_change_is_marked() -> None:
    rows = text_diff("a b\n", "a  b\n")
    assert [row.kind for row in rows] == ["replace"]
    assert [s.text for s in rows[0].left if s.changed] == [" "]
    assert [s.text for s in rows[0].right if s.changed] == ["  "]


def test_missing_final_newline_is_a_change() -> None:
    rows = text_diff("a\nb\n", "a\nb")
    assert [row.kind for row in rows] == ["equal", "replace"]
    assert rows[1].left == (Segment("b", False), Segment("\n", True))
    assert rows[1].right == (Segment("b", False),)


def test_unequal_replace_blocks_pad_with_deletes_and_inserts() -> None:
    rows = text_diff("same\nold one\nold two\nold three\nsame end\n", "same\nnew one\nsame end\n")
    assert [(row.kind, row.left_no, row.right_no) for row in rows] == [
        ("equal", 1, 1),
        ("replace", 2, 2),
        ("delete", 3, None),
        ("delete", 4, None),
        ("equal", 5, 3),
    ]
    rows = text_diff("x\n", "y one\ny two\ny three\n")
    assert [(row.kind, row.left_no, row.right_no) for row in rows] == [
        ("replace", 1, 1),
        ("insert", None, 2),
        ("insert", None, 3),
    ]


def test_pure_insert_and_delete_keep_numbering() -> None:
    rows = text_diff("a\nb\nc\n", "a\nnew\nb\n")
    assert [(row.kind, row.left_no, row.right_no) for row in rows] == [
        ("equal", 1, 1),
        ("insert", None, 2),
        ("equal", 2, 3),
        ("delete", 3, None),
    ]
    assert diff_stats(rows) == {"added": 1, "removed": 1, "changed": 0}


def test_frequent_lines_still_align_in_long_texts() -> None:
    # difflib's autojunk would treat the blank lines as junk above 200 lines.
    old = "\n".join(f"line {i}\n" for i in range(300))
    new = old.replace("line 150\n", "line 150 edited\n")
    rows = text_diff(old, new)
    assert diff_stats(rows) == {"added": 0, "removed": 0, "changed": 1}
    assert_well_formed(old, new, rows)


def test_huge_inputs_stay_fast_and_lossless() -> None:
    rng = random.Random(3)
    vocab = [f"line {i}" for i in range(50)] + [""] * 20
    old = "\n".join(rng.choice(vocab) for _ in range(20000))
    new = "\n".join(rng.choice(vocab) for _ in range(20000))
    words = ["a", "b", "c", "{", "}"]
    long_old = " ".join(rng.choice(words) for _ in range(50000))
    long_new = " ".join(rng.choice(words) for _ in range(50000))
    started = time.monotonic()
    rows = text_diff(old, new)
    long_rows = text_diff(long_old, long_new)
    # Exact alignment took minutes here; the guards bring it well under a second.
    assert time.monotonic() - started < 20
    assert_well_formed(old, new, rows)
    assert_well_formed(long_old, long_new, long_rows)
    assert [row.kind for row in long_rows] == ["replace"]


def test_long_line_keeps_common_ends_unchanged() -> None:
    body = " ".join(f"w{i}" for i in range(1000))
    rows = text_diff(f"start {body} end\n", f"start {body[::-1]} end\n")
    [row] = rows
    assert row.left[0] == Segment("start ", False)
    assert row.left[-1] == Segment(" end\n", False)
    assert [segment.changed for segment in row.left] == [False, True, False]


def test_diff_stats() -> None:
    rows = text_diff("a\nb\nc\nd\n", "a\nB\nc\ne\nf\n")
    assert diff_stats(rows) == {"added": 1, "removed": 0, "changed": 2}
    assert diff_stats([]) == {"added": 0, "removed": 0, "changed": 0}
    assert diff_stats(iter(rows)) == diff_stats(rows)


# ------------------------------------------------------------------------------------ JSON


def changes(old: Any, new: Any) -> list[tuple[str, str, Any, Any]]:
    return [(c.path, c.kind, c.old, c.new) for c in json_diff(old, new)]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({}, {}, []),
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, [("a", "changed", 1, 2)]),
        ({"a": 1}, {}, [("a", "removed", 1, None)]),
        ({}, {"a": 1}, [("a", "added", None, 1)]),
        ({"a": None}, {}, [("a", "removed", None, None)]),
        ({}, {"a": None}, [("a", "added", None, None)]),
        ({"a": None}, {"a": 0}, [("a", "changed", None, 0)]),
        ({"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 2}}}, [("a.b.c", "changed", 1, 2)]),
        ({"a": {"b": 1}}, {"a": [1]}, [("a", "changed", {"b": 1}, [1])]),
        ({"a": "1"}, {"a": 1}, [("a", "changed", "1", 1)]),
        ({"a": 1}, {"a": True}, [("a", "changed", 1, True)]),
        ({"a": 0}, {"a": False}, [("a", "changed", 0, False)]),
        ({"a": True}, {"a": True}, []),
        ({"a": 1}, {"a": 1.0}, []),
        ({"a": float("nan")}, {"a": float("nan")}, []),
        ({"a": [1, 2]}, {"a": (1, 2)}, []),
        (
            {"routes": [{"target": "a"}, {"target": "b"}, {"target": "c"}]},
            {"routes": [{"target": "a"}, {"target": "b"}, {"target": "z"}]},
            [("routes[2].target", "changed", "c", "z")],
        ),
        ({"l": [1, 2, 3]}, {"l": [1, 2]}, [("l[2]", "removed", 3, None)]),
        ({"l": [1]}, {"l": [1, 2, 3]}, [("l[1]", "added", None, 2), ("l[2]", "added", None, 3)]),
        # Element-wise by index: an insertion at the front shows as changes down the list.
        (
            {"l": ["b", "c"]},
            {"l": ["a", "b", "c"]},
            [
                ("l[0]", "changed", "b", "a"),
                ("l[1]", "changed", "c", "b"),
                ("l[2]", "added", None, "c"),
            ],
        ),
        ([[1, [2]]], [[1, [3]]], [("[0][1][0]", "changed", 2, 3)]),
        ([{"a": 1}], [{"a": 2}], [("[0].a", "changed", 1, 2)]),
        (1, 2, [("", "changed", 1, 2)]),
        ("x", "x", []),
        (None, None, []),
        (None, {}, [("", "changed", None, {})]),
        ({"a.b": 1}, {"a.b": 2}, [('["a.b"]', "changed", 1, 2)]),
        ({"x": {"with space": 1}}, {"x": {}}, [('x["with space"]', "removed", 1, None)]),
        ({"max-tokens": 1}, {"max-tokens": 2}, [("max-tokens", "changed", 1, 2)]),
        ({"": 1}, {"": 2}, [('[""]', "changed", 1, 2)]),
        ({"ключ": 1}, {"ключ": 2}, [('["ключ"]', "changed", 1, 2)]),
        ({"$schema": "a"}, {"$schema": "b"}, [("$schema", "changed", "a", "b")]),
        ({1: "a"}, {1: "b"}, [('["1"]', "changed", "a", "b")]),
        (
            {"keep": 1, "gone": 2, "edit": {"x": 1}},
            {"new": 0, "edit": {"x": 2, "y": 3}, "keep": 1},
            [
                ("gone", "removed", 2, None),
                ("edit.x", "changed", 1, 2),
                ("edit.y", "added", None, 3),
                ("new", "added", None, 0),
            ],
        ),
    ],
)
def test_json_diff(old: Any, new: Any, expected: list[tuple[str, str, Any, Any]]) -> None:
    assert changes(old, new) == expected


def test_json_change_is_a_frozen_value() -> None:
    change = json_diff({"a": 1}, {"a": 2})[0]
    assert change == JsonChange("a", "changed", 1, 2)
    with pytest.raises(AttributeError):
        change.path = "b"  # type: ignore[misc]


def test_json_diff_of_random_documents_is_empty_only_when_equal() -> None:
    rng = random.Random(5)

    def value(depth: int) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice([None, True, False, 0, 1, 2.5, "a", "b", ""])
        if roll < 0.7:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return {rng.choice("abcd"): value(depth + 1) for _ in range(rng.randint(0, 3))}

    for _ in range(2000):
        old, new = value(0), value(0)
        diff = json_diff(old, new)
        assert (diff == []) == (repr(old) == repr(new)), (old, new)
        assert json_diff(old, old) == []
        for change in diff:
            assert change.kind in {"added", "removed", "changed"}
            if change.kind == "added":
                assert change.old is None
            if change.kind == "removed":
                assert change.new is None


def test_nan_against_number_is_a_change() -> None:
    [change] = json_diff({"a": float("nan")}, {"a": 1.0})
    assert change.kind == "changed"
    assert math.isnan(change.old)  # type: ignore[arg-type]


def test_unified_lines_put_a_replaced_line_as_its_removal_then_its_addition() -> None:
    rows = text_diff("keep\nold word\ngone\n", "keep\nnew word\nadded\n")
    lines = unified_lines(rows)
    assert [(u.kind, u.old_no, u.new_no) for u in lines] == [
        ("equal", 1, 1),
        ("delete", 2, None),
        ("delete", 3, None),
        ("insert", None, 2),
        ("insert", None, 3),
    ] or [(u.kind, u.old_no, u.new_no) for u in lines] == [
        ("equal", 1, 1),
        ("delete", 2, None),
        ("insert", None, 2),
        ("delete", 3, None),
        ("insert", None, 3),
    ]
    # Nothing is lost: the old side's lines, then the new side's, read back the texts.
    assert (
        "".join("".join(s.text for s in u.segments) for u in lines if u.kind != "insert")
        == "keep\nold word\ngone\n"
    )
    assert (
        "".join("".join(s.text for s in u.segments) for u in lines if u.kind != "delete")
        == "keep\nnew word\nadded\n"
    )
    changed = next(u for u in lines if u.kind == "insert" and u.new_no == 2)
    assert Segment("new", True) in changed.segments
