"""The difference between two versions: side by side for text, key by key for JSON, with contract changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from registry.choices import ContentKind
from registry.diff import (
    JsonChange,
    Row,
    UnifiedLine,
    diff_stats,
    json_diff,
    text_diff,
    unified_lines,
)
from registry.models import Version
from registry.services.publishing import interface_of
from registry.versioning import ContractChange, Variable, schema_changes, variable_changes

#: Which side of a text diff a line number counts on: the current version's or the proposed one's.
Side = Literal["old", "new"]
SIDES: tuple[Side, ...] = ("old", "new")

#: Whatever a page wants shown under a line (comments, say), keyed by (side, line number).
Notes = Mapping[tuple[Side, int], Sequence[Any]]


@dataclass(frozen=True)
class NotedRow:
    """A side-by-side row with what is shown under it."""

    row: Row
    notes: Sequence[Any] = ()


@dataclass(frozen=True)
class NotedLine:
    """A unified line with what is shown under it."""

    line: UnifiedLine
    notes: Sequence[Any] = ()


def _notes_at(notes: Notes, old_no: int | None, new_no: int | None) -> list[Any]:
    found: list[Any] = []
    if old_no is not None:
        found.extend(notes.get(("old", old_no), ()))
    if new_no is not None:
        found.extend(notes.get(("new", new_no), ()))
    return found


@dataclass
class VersionDiff:
    """Both layouts of a text diff are kept: wide screens show ``split``, narrow ones ``unified``."""

    left: Version
    right: Version
    rows: list[Row] = field(default_factory=list)
    split: list[NotedRow] = field(default_factory=list)
    unified: list[NotedLine] = field(default_factory=list)
    json_changes: list[JsonChange] = field(default_factory=list)
    contract_changes: list[ContractChange] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def attach_notes(self, notes: Notes) -> None:
        """Put each note under its line, in both layouts (an equal line shows both sides' notes)."""
        self.split = [NotedRow(r, _notes_at(notes, r.left_no, r.right_no)) for r in self.rows]
        self.unified = [
            NotedLine(u, _notes_at(notes, u.old_no, u.new_no)) for u in unified_lines(self.rows)
        ]

    def has_line(self, side: Side, number: int) -> bool:
        """Whether ``number`` is a line of this diff on ``side``."""
        key = "left_no" if side == "old" else "right_no"
        return any(getattr(r, key) == number for r in self.rows)

    def line_text(self, side: Side, number: int) -> str:
        key, part = ("left_no", "left") if side == "old" else ("right_no", "right")
        for r in self.rows:
            if getattr(r, key) == number:
                return "".join(s.text for s in getattr(r, part)).rstrip("\r\n")
        return ""

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.left.pinned,
            "to": self.right.pinned,
            "kind": self.left.content_kind,
            "contract_changes": [
                {"impact": c.impact.label, "change": c.description} for c in self.contract_changes
            ],
            "stats": self.stats,
            "lines": [
                {
                    "kind": r.kind,
                    "left_no": r.left_no,
                    "right_no": r.right_no,
                    "left": "".join(s.text for s in r.left),
                    "right": "".join(s.text for s in r.right),
                }
                for r in self.rows
            ],
            "json_changes": [
                {"path": c.path, "kind": c.kind, "old": c.old, "new": c.new}
                for c in self.json_changes
            ],
        }


def _interface(version: Version) -> Any:
    return interface_of(version.artifact.artifact_class, version.content_json)


def version_diff(left: Version, right: Version) -> VersionDiff:
    diff = VersionDiff(left, right)
    kind = right.content_kind
    if kind == ContentKind.TEXT and left.content_kind == ContentKind.TEXT:
        diff.rows = text_diff(left.content_text, right.content_text)
        diff.stats = diff_stats(diff.rows)
        diff.attach_notes({})
        diff.contract_changes = variable_changes(
            [Variable(v["name"], v.get("required", True)) for v in left.input_variables],
            [Variable(v["name"], v.get("required", True)) for v in right.input_variables],
        )
    elif kind == ContentKind.JSON and left.content_kind == ContentKind.JSON:
        diff.json_changes = json_diff(left.content_json, right.content_json)
        diff.stats = {"changed_keys": len(diff.json_changes)}
        if right.artifact.artifact_class.interface_pointer:
            diff.contract_changes = schema_changes(_interface(left), _interface(right))
    else:
        same = left.content_sha256 == right.content_sha256
        diff.stats = {"files_differ": 0 if same else 1}
    return diff
