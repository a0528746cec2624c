"""Routing rulesets: lint them, route an input with them, and simulate a change on a golden corpus.

A ruleset (the content of a ``routing-ruleset`` version) is::

    {"interface": {"type": "object", "properties": {...}},   # optional
     "default_route": "general",                              # optional
     "rules": [{"id": "billing",                              # optional
                "when": {"intent": "billing",
                         "language": {"in": ["de", "at"]},
                         "tier": {"not": "free"}},
                "route": "billing"}, ...]}

A ``when`` maps a field to a literal (equals), ``{"eq": v}``, ``{"in": [...]}``,
``{"not": v}`` / ``{"not": [...]}`` or ``{"not_in": [...]}``; all fields must hold.
An empty ``when`` matches everything. The legacy ``{"if": "intent == 'billing' and
priority != 2"}`` form is parsed into the same structure. A field that is absent
from the input counts as ``null``; a dotted field (``customer.tier``) looks inside
nested objects. The first matching rule wins, then ``default_route``, then no route.

Nothing here raises for bad content: a bad shape is a lint problem, a bad corpus a
report that is not ok. Nothing here touches the database.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Problem codes. All of them are errors: a ruleset with any problem does not lint clean.
SCHEMA = "schema"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_RULE = "duplicate_rule"
CONFLICTING_RULE = "conflicting_rule"
UNREACHABLE_RULE = "unreachable_rule"
UNKNOWN_FIELD = "unknown_field"
PROBLEM_CODES = (
    SCHEMA,
    DUPLICATE_ID,
    DUPLICATE_RULE,
    CONFLICTING_RULE,
    UNREACHABLE_RULE,
    UNKNOWN_FIELD,
)

_OPERATORS = ("eq", "in", "not", "not_in")


# --- reports ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a ruleset. ``rule`` is the rule's id, or ``#n`` (1-based) without one;
    None for the ruleset as a whole."""

    code: str
    rule: str | None
    message: str
    position: int | None = None  # the rule's 0-based index in "rules"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "rule": self.rule,
            "position": self.position,
            "message": self.message,
        }

    def line(self) -> str:
        where = f"rule {self.rule}" if self.rule is not None else "ruleset"
        return f"[{self.code}] {where}: {self.message}"


@dataclass
class LintReport:
    """The outcome of :func:`lint`: clean when there are no problems."""

    problems: list[Problem] = field(default_factory=list)
    rule_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rule_count": self.rule_count,
            "problems": [p.to_dict() for p in self.problems],
        }

    def text(self) -> str:
        rules = _plural(self.rule_count, "rule")
        if self.ok:
            return f"Lint: OK ({rules}, no problems)"
        lines = [f"Lint: FAILED ({rules}, {_plural(len(self.problems), 'problem')})"]
        lines += [f"  {p.line()}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class CaseResult:
    """How one corpus case routes. ``id`` is the case's id, or ``#n`` (1-based) without one."""

    id: str
    input: dict[str, Any]
    expected: str | None
    proposed: str | None
    current: str | None  # None also when there is no current ruleset
    matches_expected: bool
    changed_vs_current: bool  # False when there is no current ruleset
    current_matched_expected: bool | None = None  # None when there is no current ruleset

    @property
    def fixed(self) -> bool:
        return self.current_matched_expected is False and self.matches_expected

    @property
    def broken(self) -> bool:
        return self.current_matched_expected is True and not self.matches_expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "input": self.input,
            "expected": self.expected,
            "proposed": self.proposed,
            "current": self.current,
            "matches_expected": self.matches_expected,
            "changed_vs_current": self.changed_vs_current,
            "fixed": self.fixed,
            "broken": self.broken,
        }


@dataclass
class SimulationReport:
    """The outcome of :func:`simulate`: ok iff the proposed ruleset lints clean, the corpus is
    well formed and every case routes where it is expected to."""

    lint: LintReport
    cases: list[CaseResult] = field(default_factory=list)
    corpus_problems: list[str] = field(default_factory=list)
    against_current: bool = False
    current_lint: LintReport | None = None

    @property
    def summary(self) -> dict[str, int]:
        return {
            "cases": len(self.cases),
            "mismatches": sum(not c.matches_expected for c in self.cases),
            "changed_vs_current": sum(c.changed_vs_current for c in self.cases),
            "fixed": sum(c.fixed for c in self.cases),
            "broken": sum(c.broken for c in self.cases),
        }

    @property
    def ok(self) -> bool:
        return self.lint.ok and not self.corpus_problems and self.summary["mismatches"] == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "summary": self.summary,
            "against_current": self.against_current,
            "lint": self.lint.to_dict(),
            "current_lint": self.current_lint.to_dict() if self.current_lint else None,
            "corpus_problems": list(self.corpus_problems),
            "cases": [c.to_dict() for c in self.cases],
        }

    def text(self) -> str:
        s = self.summary
        lines = [f"Routing simulation: {'OK' if self.ok else 'FAILED'}", self.lint.text()]
        if self.current_lint is not None and not self.current_lint.ok:
            lines.append(
                f"Note: the current ruleset has {_plural(len(self.current_lint.problems), 'lint problem')}"
                " of its own; its routes are compared as they are."
            )
        if self.corpus_problems:
            lines.append(f"Corpus: {_plural(len(self.corpus_problems), 'problem')}")
            lines += [f"  {p}" for p in self.corpus_problems]
        line = f"Corpus: {_plural(s['cases'], 'case')}, {_plural(s['mismatches'], 'mismatch', 'mismatches')} against expected"
        if self.against_current:
            line += (
                f"; against current: {s['changed_vs_current']} changed"
                f" ({s['fixed']} fixed, {s['broken']} broken)"
            )
        else:
            line += "; no current ruleset to compare"
        lines.append(line)
        quiet = 0
        for c in self.cases:
            if c.matches_expected and not c.changed_vs_current:
                quiet += 1
                continue
            tag = "MISMATCH" if not c.matches_expected else "CHANGED"
            detail = f"expected {_show(c.expected)}, proposed {_show(c.proposed)}"
            if self.against_current:
                detail += f", current {_show(c.current)}"
                if c.fixed:
                    detail += " (fixed)"
                elif c.broken:
                    detail += " (broken)"
            lines.append(f"  {tag} {c.id}: {detail}; input {_json(c.input)}")
        if quiet and quiet != len(self.cases):
            verb = "routes" if quiet == 1 else "route"
            lines.append(
                f"  {_plural(quiet, 'other case')} {verb} as expected"
                + (" and as before." if self.against_current else ".")
            )
        elif quiet:
            lines.append(
                "  Every case routes as expected"
                + (" and as before." if self.against_current else ".")
            )
        return "\n".join(lines)


# --- conditions ------------------------------------------------------------------------

_Key = tuple[Any, ...]


def _key(value: Any) -> _Key:
    """A hashable identity for a JSON value; ``True`` and ``1`` stay different, ``1`` and ``1.0`` do not."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("str", value)
    return ("json", json.dumps(value, sort_keys=True, default=str))


def _is_literal(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


@dataclass(frozen=True)
class FieldTest:
    """What one field must be: one of ``values``, or (``negated``) none of them."""

    negated: bool
    values: frozenset[_Key]
    shown: tuple[Any, ...] = field(default=(), compare=False, hash=False)

    def matches(self, value: Any) -> bool:
        return (_key(value) in self.values) != self.negated

    def within(self, other: FieldTest) -> bool:
        """Every value this test accepts, ``other`` accepts too (the universe of values is infinite)."""
        if not self.negated and not other.negated:
            return self.values <= other.values
        if not self.negated and other.negated:
            return self.values.isdisjoint(other.values)
        if self.negated and not other.negated:
            return False
        return other.values <= self.values

    def intersect(self, other: FieldTest) -> FieldTest:
        shown = tuple(dict.fromkeys(self.shown + other.shown))
        if not self.negated and not other.negated:
            return FieldTest(False, self.values & other.values, shown)
        if not self.negated:
            return FieldTest(False, self.values - other.values, shown)
        if not other.negated:
            return FieldTest(False, other.values - self.values, shown)
        return FieldTest(True, self.values | other.values, shown)

    @property
    def empty(self) -> bool:
        return not self.negated and not self.values

    def describe(self) -> str:
        shown = ", ".join(_json(v) for v in self.shown)
        if self.negated:
            return f"not {shown}" if len(self.shown) == 1 else f"none of [{shown}]"
        return f"= {shown}" if len(self.shown) == 1 else f"one of [{shown}]"


def _test(values: list[Any], *, negated: bool) -> FieldTest:
    return FieldTest(negated, frozenset(_key(v) for v in values), tuple(values))


def _lookup(data: Mapping[str, Any], name: str) -> Any:
    if name in data:
        return data[name]
    node: Any = data
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _literal_list(arg: Any, op: str) -> list[Any] | str:
    if not isinstance(arg, list) or not arg:
        return f'"{op}" needs a non-empty list of values'
    if not all(_is_literal(v) for v in arg):
        return f'"{op}" values must be strings, numbers, booleans or null'
    return arg


def _parse_predicate(value: Any) -> FieldTest | str:
    """A field's predicate from ``when``, or a message saying what is wrong with it."""
    if _is_literal(value):
        return _test([value], negated=False)
    if isinstance(value, list):
        return 'a bare list is ambiguous; write {"in": [...]}'
    if not isinstance(value, dict):
        return f"{_json(value)} is not a value or an operator object"
    return _parse_operator(value)


def _parse_operator(value: dict[str, Any]) -> FieldTest | str:
    """An operator object (``{"in": [...]}``, ``{"not": 2}``, ...), or what is wrong with it."""
    if len(value) != 1 or next(iter(value)) not in _OPERATORS:
        ops = ", ".join(_OPERATORS)
        return f"an operator object has exactly one key of {ops}; got {_json(sorted(value))}"
    op, arg = next(iter(value.items()))
    if op == "eq":
        if not _is_literal(arg):
            return '"eq" needs a string, number, boolean or null'
        return _test([arg], negated=False)
    if op == "not" and _is_literal(arg):
        return _test([arg], negated=True)
    values = _literal_list(arg, op)
    if isinstance(values, str):
        return values
    return _test(values, negated=op in ("not", "not_in"))


_CLAUSE = re.compile(
    r"""\s*(?P<field>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>==|!=)\s*
        (?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<num>-?\d+(?:\.\d+)?)(?![\w.]))\s*""",
    re.VERBOSE,
)
_AND = re.compile(r"(?<=\s)and\s+")


def parse_legacy_condition(text: str) -> list[tuple[str, FieldTest]] | None:
    """``"intent == 'billing' and priority != 2"`` as (field, test) clauses; None if it does not parse."""
    clauses: list[tuple[str, FieldTest]] = []
    pos = 0
    while True:
        m = _CLAUSE.match(text, pos)
        if m is None:
            return None
        if m["num"] is not None:
            literal: Any = float(m["num"]) if "." in m["num"] else int(m["num"])
        else:
            literal = m["sq"] if m["sq"] is not None else m["dq"]
        clauses.append((m["field"], _test([literal], negated=m["op"] == "!=")))
        pos = m.end()
        if pos == len(text):
            return clauses
        joint = _AND.match(text, pos)
        if joint is None:
            return None
        pos = joint.end()


# --- compiling a ruleset ---------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    index: int
    label: str
    route: str
    condition: dict[str, FieldTest]

    @property
    def satisfiable(self) -> bool:
        return not any(t.empty for t in self.condition.values())

    def matches(self, data: Mapping[str, Any]) -> bool:
        return self.satisfiable and all(
            t.matches(_lookup(data, name)) for name, t in self.condition.items()
        )

    def covers(self, later: _Rule) -> bool:
        """This rule matches every input ``later`` matches."""
        return all(
            name in later.condition and later.condition[name].within(t)
            for name, t in self.condition.items()
        )

    def describe(self) -> str:
        if not self.condition:
            return "matches every input"
        return " and ".join(f"{n} {t.describe()}" for n, t in sorted(self.condition.items()))


@dataclass
class _Ruleset:
    rules: list[_Rule] = field(default_factory=list)  # only the well-formed ones
    default_route: str | None = None
    interface: dict[str, Any] | None = None  # with a "properties" object, when declared
    rule_count: int = 0

    def route(self, data: Any) -> str | None:
        if not isinstance(data, Mapping):
            data = {}
        for rule in self.rules:
            if rule.matches(data):
                return rule.route
        return self.default_route


def _label(raw: Any, index: int) -> str:
    if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw["id"].strip():
        return str(raw["id"])
    return f"#{index + 1}"


def _declared(interface: dict[str, Any], name: str) -> bool:
    """Is a (possibly dotted) field declared? Inside an object without declared properties, yes."""
    schema: Any = interface
    for part in name.split("."):
        props = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(props, dict):
            return True
        if part not in props:
            return False
        schema = props[part]
    return True


def _condition(raw: dict[str, Any], errors: list[str]) -> dict[str, FieldTest]:
    """A rule's condition, from exactly one of ``when`` (an object) or ``if`` (the legacy
    string); what is wrong with it goes to ``errors``."""
    has_when, has_if = "when" in raw, "if" in raw
    if has_when == has_if:
        errors.append('needs exactly one of "when" (an object) or "if" (a string)')
        return {}
    if has_when:
        return _when_condition(raw["when"], errors)
    condition: dict[str, FieldTest] = {}
    text = raw["if"]
    clauses = parse_legacy_condition(text) if isinstance(text, str) else None
    if clauses is None:
        errors.append(
            f'cannot parse "if": {_json(text)}; write clauses like '
            'field == \'value\' or field != 2 joined by " and ", or use "when"'
        )
        return condition
    for name, test in clauses:
        condition[name] = condition[name].intersect(test) if name in condition else test
    return condition


def _when_condition(when: Any, errors: list[str]) -> dict[str, FieldTest]:
    condition: dict[str, FieldTest] = {}
    if not isinstance(when, dict):
        errors.append(f'"when" must be an object of field: condition, not {_json(when)}')
        return condition
    for name, spec in when.items():
        test = _parse_predicate(spec)
        if isinstance(test, str):
            errors.append(f'"when" field "{name}": {test}')
        else:
            condition[name] = test
    return condition


def _compile_rule(raw: Any, index: int, label: str) -> tuple[_Rule | None, list[str]]:
    if not isinstance(raw, dict):
        return None, [f"a rule must be an object, not {_json(raw)}"]
    errors = []
    route = raw.get("route")
    if not isinstance(route, str) or not route.strip():
        errors.append('needs a non-empty string "route"')
    if "id" in raw and (not isinstance(raw["id"], str) or not raw["id"].strip()):
        errors.append(f'"id" must be a non-empty string, not {_json(raw["id"])}')
    condition = _condition(raw, errors)
    if errors:
        return None, errors
    return _Rule(index=index, label=label, route=str(route), condition=condition), []


class _Report(Protocol):
    """How ``_compile`` collects a problem: its code, the rule's label, the message, the position."""

    def __call__(
        self, code: str, rule: str | None, message: str, position: int | None = None
    ) -> None: ...


def _compile_header(data: dict[str, Any], ruleset: _Ruleset, problem: _Report) -> None:
    """The ruleset's ``interface`` (a JSON Schema) and ``default_route``, when well formed."""
    interface = data.get("interface")
    if interface is not None:
        if not isinstance(interface, dict):
            problem(SCHEMA, None, '"interface" must be a JSON Schema object')
        elif "properties" in interface and not isinstance(interface["properties"], dict):
            problem(SCHEMA, None, '"interface.properties" must be an object')
        elif isinstance(interface.get("properties"), dict):
            ruleset.interface = interface
    default = data.get("default_route")
    if default is not None:
        if isinstance(default, str) and default.strip():
            ruleset.default_route = default
        else:
            problem(
                SCHEMA, None, f'"default_route" must be a non-empty string, not {_json(default)}'
            )


def _unique_label(raw: Any, index: int, ids: set[str], problem: _Report) -> str:
    """How messages name a rule: its id, or its position once the id was used before."""
    label = _label(raw, index)
    if label != f"#{index + 1}":
        if label in ids:
            # A repeated id would make messages ambiguous: the later rule goes by its position.
            problem(
                DUPLICATE_ID,
                f"#{index + 1}",
                f"id '{label}' is already used by an earlier rule",
                index,
            )
            label = f"#{index + 1}"
        ids.add(label)
    return label


def _compile(data: Any) -> tuple[_Ruleset, list[Problem]]:
    ruleset = _Ruleset()
    problems: list[Problem] = []

    def problem(code: str, rule: str | None, message: str, position: int | None = None) -> None:
        problems.append(Problem(code, rule, message, position))

    if not isinstance(data, dict):
        problem(SCHEMA, None, f'a ruleset must be an object with a "rules" list, not {_json(data)}')
        return ruleset, problems
    _compile_header(data, ruleset, problem)
    rules = data.get("rules")
    if not isinstance(rules, list):
        problem(SCHEMA, None, f'"rules" must be a list, not {_json(rules)}')
        return ruleset, problems
    ruleset.rule_count = len(rules)
    ids: set[str] = set()
    for index, raw in enumerate(rules):
        label = _unique_label(raw, index, ids, problem)
        rule, errors = _compile_rule(raw, index, label)
        for error in errors:
            problem(SCHEMA, label, error, index)
        if rule is not None:
            ruleset.rules.append(rule)
    return ruleset, problems


def _shadowing_problems(ruleset: _Ruleset) -> list[Problem]:
    problems = []
    for j, rule in enumerate(ruleset.rules):
        if not rule.satisfiable:
            never = ", ".join(n for n, t in sorted(rule.condition.items()) if t.empty)
            problems.append(
                Problem(
                    UNREACHABLE_RULE,
                    rule.label,
                    f"its conditions on {never} contradict each other, so it never matches",
                    rule.index,
                )
            )
            continue
        earlier = [r for r in ruleset.rules[:j] if r.satisfiable]
        same = next((r for r in earlier if r.condition == rule.condition), None)
        if same is not None:
            if same.route == rule.route:
                problems.append(
                    Problem(
                        DUPLICATE_RULE,
                        rule.label,
                        f"same condition and route '{rule.route}' as rule {same.label}",
                        rule.index,
                    )
                )
            else:
                problems.append(
                    Problem(
                        CONFLICTING_RULE,
                        rule.label,
                        f"same condition as rule {same.label}, which routes to '{same.route}'"
                        f" instead of '{rule.route}'; rule {same.label} always wins",
                        rule.index,
                    )
                )
            continue
        wider = next((r for r in earlier if r.covers(rule)), None)
        if wider is not None:
            why = (
                "matches every input"
                if not wider.condition
                else f"matches every input this one does ({wider.describe()})"
            )
            problems.append(
                Problem(
                    UNREACHABLE_RULE,
                    rule.label,
                    f"never reached: rule {wider.label} before it {why}"
                    f" and routes to '{wider.route}'",
                    rule.index,
                )
            )
    return problems


def _unknown_field_problems(ruleset: _Ruleset) -> list[Problem]:
    if ruleset.interface is None:
        return []
    return [
        Problem(
            UNKNOWN_FIELD,
            rule.label,
            f"field '{name}' is not declared in interface.properties",
            rule.index,
        )
        for rule in ruleset.rules
        for name in sorted(rule.condition)
        if not _declared(ruleset.interface, name)
    ]


# --- public API ------------------------------------------------------------------------


def lint(data: Any) -> LintReport:
    """Check a ruleset's shape, ids, duplicates, conflicts, shadowed rules and field names."""
    ruleset, problems = _compile(data)
    problems += _unknown_field_problems(ruleset)
    problems += _shadowing_problems(ruleset)
    order = {code: i for i, code in enumerate(PROBLEM_CODES)}
    # Ruleset-wide problems first, then by rule position, then by kind (the sort is stable).
    problems.sort(key=lambda p: (-1 if p.position is None else p.position, order[p.code]))
    return LintReport(problems=problems, rule_count=ruleset.rule_count)


def route(data: Any, values: Mapping[str, Any]) -> str | None:
    """The route ``values`` (a case's input) take: the first matching rule's, else
    ``default_route``, else None.

    Malformed rules are skipped (:func:`lint` reports them)."""
    ruleset, _ = _compile(data)
    return ruleset.route(values)


def _corpus_cases(corpus: Any) -> tuple[list[tuple[str, dict[str, Any], str | None]], list[str]]:
    if not isinstance(corpus, dict) or not isinstance(corpus.get("cases"), list):
        return [], [
            f'The corpus must be an object with a "cases" list of {{"input": {{...}}, '
            f'"expected": "route"}}; got {_json(corpus, limit=120)}.'
        ]
    cases: list[tuple[str, dict[str, Any], str | None]] = []
    problems: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(corpus["cases"]):
        label = f"#{index + 1}"
        if isinstance(raw, dict) and isinstance(raw.get("id"), str | int) and str(raw["id"]):
            label = str(raw["id"])
        if not isinstance(raw, dict):
            problems.append(f"Case {label} is not an object: {_json(raw, limit=80)}.")
            continue
        if label in seen:
            problems.append(f"Case id '{label}' is used more than once.")
        seen.add(label)
        if not isinstance(raw.get("input"), dict):
            problems.append(f'Case {label} needs an "input" object.')
            continue
        if "expected" not in raw or not (
            raw["expected"] is None or isinstance(raw["expected"], str)
        ):
            problems.append(f'Case {label} needs "expected": a route name (or null for no route).')
            continue
        cases.append((label, raw["input"], raw["expected"]))
    if not corpus["cases"]:
        problems.append("The corpus has no cases, so it proves nothing.")
    return cases, problems


def simulate(proposed: Any, corpus: Any, current: Any = None) -> SimulationReport:
    """Route every corpus case with the proposed (and current) ruleset and compare."""
    report = SimulationReport(lint=lint(proposed), against_current=current is not None)
    proposed_rules, _ = _compile(proposed)
    current_rules = None
    if current is not None:
        current_rules, _ = _compile(current)
        report.current_lint = lint(current)
    cases, report.corpus_problems = _corpus_cases(corpus)
    for label, data, expected in cases:
        new = proposed_rules.route(data)
        old = current_rules.route(data) if current_rules is not None else None
        report.cases.append(
            CaseResult(
                id=label,
                input=data,
                expected=expected,
                proposed=new,
                current=old,
                matches_expected=new == expected,
                changed_vs_current=current_rules is not None and new != old,
                current_matched_expected=(old == expected) if current_rules is not None else None,
            )
        )
    return report


# --- formatting ------------------------------------------------------------------------


def _json(value: Any, *, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(route_name: str | None) -> str:
    return "(no route)" if route_name is None else f"'{route_name}'"


def _plural(n: int, singular: str, plural: str | None = None) -> str:
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"
