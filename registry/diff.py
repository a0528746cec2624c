"""Side-by-side line and word diffs of artifact text, and key-level diffs of JSON documents."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

RowKind = Literal["equal", "replace", "delete", "insert"]
ChangeKind = Literal["added", "removed", "changed"]

# Above these sizes (old x new items) exact alignment costs seconds; see text_diff.
MAX_LINE_PAIRS = 4_000_000
MAX_WORD_PAIRS = 250_000

_TOKEN_RE = re.compile(r"\s+|\S+")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


@dataclass(frozen=True)
class Segment:
    """A run of text within one side of a row; ``changed`` marks what the other side lacks."""

    text: str
    changed: bool


@dataclass(frozen=True)
class Row:
    """One line of a side-by-side diff; the absent side of a delete or insert is empty.

    Segments keep the line terminator, so joining every left segment in order gives back the
    old text exactly (and the right ones the new text); templates strip it for display.
    """

    kind: RowKind
    left_no: int | None
    right_no: int | None
    left: tuple[Segment, ...]
    right: tuple[Segment, ...]


@dataclass(frozen=True)
class JsonChange:
    """A key-level difference; ``old`` is None when added, ``new`` is None when removed."""

    path: str
    kind: ChangeKind
    old: object
    new: object


def split_lines(text: str) -> list[str]:
    """Lines with their terminators; only "\\n" ends a line, so "\\r\\n" stays together."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _merge(pieces: Iterable[tuple[str, bool]]) -> tuple[Segment, ...]:
    merged: list[Segment] = []
    for text, changed in pieces:
        if not text:
            continue
        if merged and merged[-1].changed == changed:
            merged[-1] = Segment(merged[-1].text + text, changed)
        else:
            merged.append(Segment(text, changed))
    return tuple(merged)


def _common_ends(old: Sequence[str], new: Sequence[str]) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix."""
    limit = min(len(old), len(new))
    prefix = 0
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return prefix, suffix


def _word_diff(old: str, new: str) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    old_tokens, new_tokens = _TOKEN_RE.findall(old), _TOKEN_RE.findall(new)
    prefix, suffix = _common_ends(old_tokens, new_tokens)
    old_middle = old_tokens[prefix : len(old_tokens) - suffix]
    new_middle = new_tokens[prefix : len(new_tokens) - suffix]
    head = ("".join(old_tokens[:prefix]), False)
    old_tail = ("".join(old_tokens[len(old_tokens) - suffix :]), False)
    new_tail = ("".join(new_tokens[len(new_tokens) - suffix :]), False)
    left: list[tuple[str, bool]] = [head]
    right: list[tuple[str, bool]] = [head]
    if len(old_middle) * len(new_middle) > MAX_WORD_PAIRS:
        # SequenceMatcher is quadratic; a long minified line must not stall the diff page.
        left.append(("".join(old_middle), True))
        right.append(("".join(new_middle), True))
    else:
        matcher = difflib.SequenceMatcher(None, old_middle, new_middle, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            changed = tag != "equal"
            left.append(("".join(old_middle[i1:i2]), changed))
            right.append(("".join(new_middle[j1:j2]), changed))
    left.append(old_tail)
    right.append(new_tail)
    return _merge(left), _merge(right)


def _deleted(line: str, number: int) -> Row:
    return Row("delete", number, None, (Segment(line, True),), ())


def _inserted(line: str, number: int) -> Row:
    return Row("insert", None, number, (), (Segment(line, True),))


def text_diff(old: str, new: str) -> list[Row]:
    """Align lines with difflib; paired replaced lines get word-level segments."""
    before, after = split_lines(old), split_lines(new)
    prefix, suffix = _common_ends(before, after)
    middle = (len(before) - prefix - suffix) * (len(after) - prefix - suffix)
    # autojunk treats frequent lines (blank lines, braces) as noise and misaligns long texts, but
    # without it SequenceMatcher is quadratic; only huge changed regions get the heuristic.
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=middle > MAX_LINE_PAIRS)
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                line = before[i1 + offset]
                segment = (Segment(line, False),)
                rows.append(Row("equal", i1 + offset + 1, j1 + offset + 1, segment, segment))
        elif tag == "delete":
            rows.extend(_deleted(before[i], i + 1) for i in range(i1, i2))
        elif tag == "insert":
            rows.extend(_inserted(after[j], j + 1) for j in range(j1, j2))
        else:
            paired = min(i2 - i1, j2 - j1)
            for offset in range(paired):
                i, j = i1 + offset, j1 + offset
                if before[i] == after[j]:
                    # Only under autojunk: lines it ignored as junk are left inside replace blocks.
                    segment = (Segment(before[i], False),)
                    rows.append(Row("equal", i + 1, j + 1, segment, segment))
                    continue
                left, right = _word_diff(before[i], after[j])
                rows.append(Row("replace", i + 1, j + 1, left, right))
            rows.extend(_deleted(before[i], i + 1) for i in range(i1 + paired, i2))
            rows.extend(_inserted(after[j], j + 1) for j in range(j1 + paired, j2))
    return rows


def diff_stats(rows: Iterable[Row]) -> dict[str, int]:
    """Lines added, removed and changed (a replaced pair counts once, as changed)."""
    stats = {"added": 0, "removed": 0, "changed": 0}
    names = {"insert": "added", "delete": "removed", "replace": "changed"}
    for row in rows:
        if row.kind in names:
            stats[names[row.kind]] += 1
    return stats


def _key_path(path: str, key: object) -> str:
    name = key if isinstance(key, str) else str(key)
    if _PLAIN_KEY_RE.fullmatch(name):
        return f"{path}.{name}" if path else name
    # Keys with dots, brackets or spaces would make the dotted path ambiguous.
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"


def _is_array(value: object) -> bool:
    return isinstance(value, list | tuple)


def _same(old: object, new: object) -> bool:
    # Python says True == 1; JSON does not.
    if isinstance(old, bool) or isinstance(new, bool):
        return type(old) is type(new) and old == new
    if isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new):
        return True
    return old == new


def _walk(old: object, new: object, path: str, out: list[JsonChange]) -> None:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key, value in old.items():
            where = _key_path(path, key)
            if key in new:
                _walk(value, new[key], where, out)
            else:
                out.append(JsonChange(where, "removed", value, None))
        for key, value in new.items():
            if key not in old:
                out.append(JsonChange(_key_path(path, key), "added", None, value))
        return
    if _is_array(old) and _is_array(new):
        assert isinstance(old, Sequence)
        assert isinstance(new, Sequence)
        for index in range(max(len(old), len(new))):
            where = f"{path}[{index}]"
            if index >= len(new):
                out.append(JsonChange(where, "removed", old[index], None))
            elif index >= len(old):
                out.append(JsonChange(where, "added", None, new[index]))
            else:
                _walk(old[index], new[index], where, out)
        return
    if not _same(old, new):
        out.append(JsonChange(path, "changed", old, new))


def json_diff(old: object, new: object) -> list[JsonChange]:
    """Key-level changes between two JSON values; lists are compared index by index.

    Paths use dots and ``[i]`` (``routes[2].target``); a change to the whole document has the
    empty path.
    """
    changes: list[JsonChange] = []
    _walk(old, new, "", changes)
    return changes


@dataclass(frozen=True)
class UnifiedLine:
    """One line of a unified diff: kept, removed (old number only) or added (new number only)."""

    kind: Literal["equal", "delete", "insert"]
    old_no: int | None
    new_no: int | None
    segments: tuple[Segment, ...]


def unified_lines(rows: Iterable[Row]) -> list[UnifiedLine]:
    """The same rows one above the other: a replaced pair becomes its removal, then its addition."""
    lines: list[UnifiedLine] = []
    for row in rows:
        if row.kind == "equal":
            lines.append(UnifiedLine("equal", row.left_no, row.right_no, row.right))
            continue
        if row.left_no is not None:
            lines.append(UnifiedLine("delete", row.left_no, None, row.left))
        if row.right_no is not None:
            lines.append(UnifiedLine("insert", None, row.right_no, row.right))
    return lines
