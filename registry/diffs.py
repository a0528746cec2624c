"""The difference between two versions: side by side for text, key by key for JSON, with contract changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from registry.choices import ContentKind
from registry.diff import JsonChange, Row, diff_stats, json_diff, text_diff
from registry.models import Version
from registry.services.publishing import interface_of
from registry.versioning import ContractChange, Variable, schema_changes, variable_changes


@dataclass
class VersionDiff:
    left: Version
    right: Version
    rows: list[Row] = field(default_factory=list)
    json_changes: list[JsonChange] = field(default_factory=list)
    contract_changes: list[ContractChange] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

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
