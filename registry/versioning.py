"""Semantic versions that reflect risk: contract changes, their impact, and the version they earn."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import semver

from registry.references import BrokenReference, parse_version, version_key

_VARIABLE_RE = re.compile(
    r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*(?:\|[^{}]*)?-?\}\}"
)


class VersioningError(ValueError):
    """A version or impact that cannot be accepted; ``field`` is "version" or "impact"."""

    field: str

    def __init__(self, message: str, field: str = "version") -> None:
        super().__init__(message)
        self.field = field

    # Celery and multiprocessing pickle exceptions; the default reduce would drop ``field``.
    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.field))


class Impact(enum.IntEnum):
    """How much a change can break callers; ordered, so the highest of several wins."""

    PATCH = 1
    MINOR = 2
    MAJOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Impact:
        """Read "patch", "minor" or "major" (any case, surrounding spaces ignored)."""
        if isinstance(text, str):
            wanted = text.strip().lower()
            for member in cls:
                if member.label == wanted:
                    return member
        raise VersioningError(
            f"impact {text!r} is not one of 'patch', 'minor', 'major'", field="impact"
        )


@dataclass(frozen=True)
class Variable:
    """An input variable of a template-based artifact."""

    name: str
    required: bool = True


@dataclass(frozen=True)
class ContractChange:
    """One change to an artifact's interface, with the impact it forces."""

    impact: Impact
    description: str


def template_variables(text: str) -> list[str]:
    """Names used as ``{{ name }}`` (filters allowed), unique, in first-seen order."""
    return list(dict.fromkeys(match.group(1) for match in _VARIABLE_RE.finditer(text)))


def _or_list(names: Sequence[str]) -> str:
    quoted = [f"'{name}'" for name in names]
    if len(quoted) == 1:
        return quoted[0]
    return f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _requirements(variables: Iterable[Variable]) -> dict[str, bool]:
    # A name declared twice counts as required if either declaration says so: the safer reading.
    merged: dict[str, bool] = {}
    for variable in variables:
        merged[variable.name] = merged.get(variable.name, False) or variable.required
    return merged


def variable_changes(old: Sequence[Variable], new: Sequence[Variable]) -> list[ContractChange]:
    """Changes to a template's input variables: removals, additions, and requiredness."""
    before, after = _requirements(old), _requirements(new)
    added = [name for name in after if name not in before]
    changes: list[ContractChange] = []
    for name in before:
        if name in after:
            continue
        # A rename looks like a removal plus an addition; saying so saves the reader a diff.
        suffix = f" (or renamed to {_or_list(added)})" if added else ""
        changes.append(ContractChange(Impact.MAJOR, f"input variable '{name}' was removed{suffix}"))
    for name, was_required in before.items():
        if name not in after or after[name] == was_required:
            continue
        if after[name]:
            changes.append(ContractChange(Impact.MAJOR, f"input variable '{name}' became required"))
        else:
            changes.append(ContractChange(Impact.MINOR, f"input variable '{name}' became optional"))
    for name in added:
        if after[name]:
            changes.append(
                ContractChange(Impact.MAJOR, f"required input variable '{name}' was added")
            )
        else:
            changes.append(
                ContractChange(Impact.MINOR, f"optional input variable '{name}' was added")
            )
    return changes


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return f"'{path}'" if path else "the interface"


def _type_set(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list | tuple):
        return frozenset(str(item) for item in value)
    return frozenset({str(value)})


def _admits(schema: Mapping[str, Any], kind: str) -> bool:
    kinds = _type_set(schema.get("type"))
    return kinds is None or kind in kinds


def _covers(wide: frozenset[str], narrow: frozenset[str]) -> bool:
    # JSON Schema's "number" includes every "integer".
    return all(kind in wide or (kind == "integer" and "number" in wide) for kind in narrow)


def _show_type(value: object) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(f"'{item}'" for item in value) + "]"
    return f"'{value}'"


def _show_value(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return json.dumps(value, sort_keys=True, default=repr)


def _canonical(value: object) -> str:
    # JSON text keeps true and 1 apart, which Python's == does not.
    return json.dumps(value, sort_keys=True, default=repr)


def _type_changes(old: object, new: object, path: str) -> list[ContractChange]:
    before, after = _type_set(old), _type_set(new)
    where = _where(path)
    if before == after:
        return []
    if after is None:
        return [
            ContractChange(
                Impact.MINOR,
                f"type of {where} is no longer restricted (was {_show_type(old)})",
            )
        ]
    if before is None:
        return [
            ContractChange(Impact.MAJOR, f"type of {where} is now restricted to {_show_type(new)}")
        ]
    widened, narrowed = _covers(after, before), _covers(before, after)
    if widened and narrowed:
        return []
    if widened:
        return [
            ContractChange(
                Impact.MINOR,
                f"type of {where} was widened from {_show_type(old)} to {_show_type(new)}",
            )
        ]
    verb = "was narrowed" if narrowed else "changed"
    return [
        ContractChange(
            Impact.MAJOR, f"type of {where} {verb} from {_show_type(old)} to {_show_type(new)}"
        )
    ]


def _enum_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str
) -> list[ContractChange]:
    before, after = old.get("enum"), new.get("enum")
    where = _where(path)
    if before is None and after is None:
        return []
    if after is None:
        return [ContractChange(Impact.MINOR, f"values of {where} are no longer restricted")]
    if before is None:
        shown = ", ".join(_show_value(value) for value in after)
        return [ContractChange(Impact.MAJOR, f"values of {where} are now restricted to {shown}")]
    before_keys = {_canonical(value): value for value in before}
    after_keys = {_canonical(value): value for value in after}
    changes = [
        ContractChange(Impact.MAJOR, f"enum value {_show_value(value)} of {where} was removed")
        for key, value in before_keys.items()
        if key not in after_keys
    ]
    changes += [
        ContractChange(Impact.MINOR, f"enum value {_show_value(value)} was added to {where}")
        for key, value in after_keys.items()
        if key not in before_keys
    ]
    return changes


def _as_schema(value: object) -> Mapping[str, Any] | None:
    """A subschema as a mapping; None stands for the boolean schema false (nothing allowed)."""
    if value is False:
        return None
    if isinstance(value, Mapping):
        return value
    # true, absent, and forms outside the supported subset constrain nothing we compare.
    return {}


def _subschema_changes(
    old: object, new: object, path: str, *, forbidden: str, allowed: str
) -> list[ContractChange]:
    before, after = _as_schema(old), _as_schema(new)
    if before is None and after is None:
        return []
    # Also what ends the recursion: absent and true both read as {}, whose parts are {} again.
    if before is not None and after is not None and _canonical(before) == _canonical(after):
        return []
    if after is None:
        return [ContractChange(Impact.MAJOR, forbidden)]
    if before is None:
        return [ContractChange(Impact.MINOR, allowed)]
    return schema_changes(before, after, path)


def _properties(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def _required(schema: Mapping[str, Any]) -> list[str]:
    required = schema.get("required")
    if not isinstance(required, list | tuple):
        return []
    return [str(name) for name in required]


def _property_changes(
    old: Mapping[str, Any], new: Mapping[str, Any], path: str
) -> list[ContractChange]:
    before, after = _properties(old), _properties(new)
    required_before, required_after = _required(old), _required(new)
    names = list(
        dict.fromkeys([*before, *after, *required_before, *required_after]),
    )
    changes: list[ContractChange] = []
    for name in names:
        where = _join(path, name)
        defined_before, defined_after = name in before, name in after
        now_required = name in required_after and name not in required_before
        if defined_before and not defined_after:
            changes.append(ContractChange(Impact.MAJOR, f"property '{where}' was removed"))
            continue
        if defined_after and not defined_before:
            if now_required:
                changes.append(
                    ContractChange(Impact.MAJOR, f"required property '{where}' was added")
                )
            elif name in required_after:
                # Required already, defined only now: its new schema narrows "anything".
                changes += _subschema_changes(
                    {},
                    after[name],
                    where,
                    forbidden=f"property '{where}' is no longer allowed",
                    allowed=f"property '{where}' is now allowed",
                )
            else:
                changes.append(
                    ContractChange(Impact.MINOR, f"optional property '{where}' was added")
                )
            continue
        if now_required:
            changes.append(ContractChange(Impact.MAJOR, f"property '{where}' is now required"))
        elif name in required_before and name not in required_after:
            changes.append(
                ContractChange(Impact.MINOR, f"property '{where}' is no longer required")
            )
        if defined_before and defined_after:
            changes += _subschema_changes(
                before[name],
                after[name],
                where,
                forbidden=f"property '{where}' is no longer allowed",
                allowed=f"property '{where}' is now allowed",
            )
    return changes


def schema_changes(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, path: str = ""
) -> list[ContractChange]:
    """Compatibility of two JSON Schemas (a draft 2020-12 subset) for a declared interface.

    Compares ``type``, ``enum``, ``properties``, ``required``, ``additionalProperties`` and
    ``items``, recursively; accepting more is MINOR, accepting less is MAJOR.
    """
    if old is None and new is None:
        return []
    if old is None:
        text = "interface declared" if not path else f"interface declared for '{path}'"
        return [ContractChange(Impact.MINOR, text)]
    if new is None:
        text = "interface removed" if not path else f"interface removed for '{path}'"
        return [ContractChange(Impact.MAJOR, text)]
    where = _where(path)
    changes = _type_changes(old.get("type"), new.get("type"), path)
    changes += _enum_changes(old, new, path)
    # Object and array keywords only constrain objects and arrays; when either side rules those
    # out, the type change above already says it all.
    if _admits(old, "object") and _admits(new, "object"):
        changes += _property_changes(old, new, path)
        changes += _subschema_changes(
            old.get("additionalProperties", True),
            new.get("additionalProperties", True),
            _join(path, "additionalProperties"),
            forbidden=f"additional properties are no longer allowed in {where}",
            allowed=f"additional properties are now allowed in {where}",
        )
    if _admits(old, "array") and _admits(new, "array"):
        changes += _subschema_changes(
            old.get("items", True),
            new.get("items", True),
            _join(path, "items"),
            forbidden=f"items are no longer allowed in {where}",
            allowed=f"items are now allowed in {where}",
        )
    return changes


def highest(changes: Iterable[ContractChange]) -> Impact | None:
    """The largest impact among the changes, or None when there are none."""
    return max((change.impact for change in changes), default=None)


def _parse(text: str) -> semver.Version:
    try:
        return parse_version(text)
    except BrokenReference as error:
        raise VersioningError(str(error), field="version") from None


def _impact(value: object) -> Impact:
    if not isinstance(value, Impact):
        raise VersioningError(
            f"impact {value!r} is not one of 'patch', 'minor', 'major'", field="impact"
        )
    return value


class SemanticVersioner:
    """Picks and checks versions so that the number moved tells callers the risk."""

    first_version = "1.0.0"

    def next_version(self, previous: str | None, impact: Impact) -> str:
        """The smallest version for ``impact`` after ``previous``; pre-release and build drop."""
        impact = _impact(impact)
        if previous is None:
            return self.first_version
        version = _parse(previous)
        if impact is Impact.MAJOR:
            return f"{version.major + 1}.0.0"
        if impact is Impact.MINOR:
            return f"{version.major}.{version.minor + 1}.0"
        return f"{version.major}.{version.minor}.{version.patch + 1}"

    def accept(self, previous: str | None, impact: Impact, explicit: str | None) -> str:
        """The version to publish: ``explicit`` if it moves forward and fits ``impact``."""
        impact = _impact(impact)
        if explicit is None:
            return self.next_version(previous, impact)
        wanted = _parse(explicit)
        if previous is None:
            return explicit
        before = _parse(previous)
        if version_key(explicit) <= version_key(previous):
            raise VersioningError(
                f"version {explicit} does not move forward from {previous}", field="version"
            )
        if impact is Impact.MAJOR:
            fits = wanted.major > before.major
            expected = f"{before.major + 1}.0.0 or later major"
        elif impact is Impact.MINOR:
            fits = wanted.major == before.major and wanted.minor > before.minor
            expected = f"{before.major}.{before.minor + 1}.0 or later minor of {before.major}.x"
        else:
            fits = (
                wanted.major == before.major
                and wanted.minor == before.minor
                and wanted.patch > before.patch
            )
            expected = (
                f"{before.major}.{before.minor}.{before.patch + 1} or later patch of"
                f" {before.major}.{before.minor}.x"
            )
        if not fits:
            raise VersioningError(
                f"version {explicit} does not match a {impact.label} change from {previous}"
                f" (expected {expected})",
                field="version",
            )
        return explicit

    def check_impact(self, declared: Impact, changes: Sequence[ContractChange]) -> None:
        """Refuse a declared impact lower than what the detected changes require."""
        declared = _impact(declared)
        for change in changes:
            if change.impact > declared:
                raise VersioningError(
                    f"declared impact '{declared.label}' is too low: {change.description}"
                    f" requires '{change.impact.label}'",
                    field="impact",
                )


# --- a declared input/output contract (metadata "io_schema") ---------------------------------

#: Output changes whose impact is the comparator's own (not flipped): a property consumers read
#: that is gone, a type that is now something else, a contract withdrawn (MAJOR); a new property
#: or a contract declared for the first time (MINOR).
_OUTPUT_KEEPS = (
    re.compile(r"^property '.*' (was removed|is no longer allowed)$"),
    re.compile(r"^type of .* changed from "),
    re.compile(r"^interface (removed|declared)"),
    re.compile(r"^optional property '.*' was added$"),
    re.compile(r"^property '.*' is now allowed$"),
    re.compile(r"^additional properties are now allowed"),
)
_FLIPPED = {Impact.MAJOR: Impact.MINOR, Impact.MINOR: Impact.MAJOR, Impact.PATCH: Impact.PATCH}


def _output_impact(change: ContractChange) -> Impact:
    """An output is read, not written, by its callers: what loosens it (a widened type, a new
    enum value, a property no longer required) can break them, and what tightens it cannot."""
    if any(rule.search(change.description) for rule in _OUTPUT_KEEPS):
        return change.impact
    return _FLIPPED[change.impact]


def _side(io_schema: object, side: str) -> Mapping[str, Any] | None:
    if not isinstance(io_schema, Mapping):
        return None
    value = io_schema.get(side)
    return value if isinstance(value, Mapping) else None


def io_schema_changes(old: object, new: object) -> list[ContractChange]:
    """Compatibility of two declared ``io_schema`` contracts (``{"input", "output"}``), each
    change named ``metadata.io_schema.<side>: ...``.

    The input is compared as :func:`schema_changes` compares an interface (accepting less is
    MAJOR); the output the other way round (producing what callers did not expect is MAJOR), a
    removed output property staying MAJOR and an added one MINOR. A contract that disappears is
    MAJOR; one declared for the first time MINOR.
    """
    if old is None and new is None:
        return []
    if not isinstance(new, Mapping) and isinstance(old, Mapping):
        return [ContractChange(Impact.MAJOR, "metadata.io_schema was removed")]
    if not isinstance(old, Mapping):
        return [ContractChange(Impact.MINOR, "metadata.io_schema was declared")]
    changes = [
        ContractChange(c.impact, f"metadata.io_schema.input: {c.description}")
        for c in schema_changes(_side(old, "input"), _side(new, "input"))
    ]
    changes += [
        ContractChange(_output_impact(c), f"metadata.io_schema.output: {c.description}")
        for c in schema_changes(_side(old, "output"), _side(new, "output"))
    ]
    return changes
