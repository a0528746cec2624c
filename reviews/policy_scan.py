"""Policy check for prompts, prompt and response templates: prohibited instructions and literal personal data.

A policy pack (the content of a ``policy-pack`` version) is::

    {"prohibited":    [{"id": "...", "pattern": "regex", "message": "..."}],
     "personal_data": [{"id": "email", "pattern": "regex", "message": "...",
                        "check": "luhn"}]}            # check and case_sensitive are optional

Patterns are case-insensitive unless a rule says ``"case_sensitive": true``. A rule's
``check`` names a validator a match must also pass (``luhn``, ``iban``, ``phone``), so
that, say, any 16-digit number is not taken for a payment card.

Template placeholders such as ``{{ customer_email }}`` or ``{% if vip %}`` are not data
and are blanked out before scanning; a placeholder that holds a quoted literal is scanned.
Personal data is redacted in findings, because the report is stored as evidence.
Nothing here raises for bad content and nothing touches the database.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PROHIBITED = "prohibited"
PERSONAL_DATA = "personal_data"
KINDS = (PROHIBITED, PERSONAL_DATA)

_PACK_KEYS = {*KINDS, "name", "description"}
_RULE_KEYS = {"id", "pattern", "message", "check", "case_sensitive", "description"}


def _luhn_ok(text: str) -> bool:
    digits = [int(c) for c in text if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(text: str) -> bool:
    compact = "".join(text.split()).upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    if not all(c in string.ascii_uppercase + string.digits for c in compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _phone_ok(text: str) -> bool:
    return 7 <= sum(c.isdigit() for c in text) <= 15


#: Validators a personal-data match must also pass, by the name a pack's ``check`` uses.
CHECKS: dict[str, Callable[[str], bool]] = {"luhn": _luhn_ok, "iban": _iban_ok, "phone": _phone_ok}

DEFAULT_POLICY_PACK: dict[str, Any] = {
    "name": "Default policy pack",
    "prohibited": [
        {
            "id": "ignore-instructions",
            "pattern": r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}?\b(?:previous|prior|above|earlier|preceding|system|developer|original)\b[^.\n]{0,20}?\b(?:instructions?|prompts?|rules|directions|guidelines)\b",
            "message": "Tells the model to ignore its previous or system instructions.",
        },
        {
            "id": "reveal-system-prompt",
            "pattern": r"\b(?:reveal|show|print|repeat|output|disclose|leak|display|tell)\b[^.\n]{0,40}?\b(?:system\s+prompt|system\s+message|hidden\s+(?:instructions|prompt)|initial\s+(?:instructions|prompt))\b",
            "message": "Asks the model to reveal its system prompt.",
        },
        {
            "id": "disable-safety",
            "pattern": r"\b(?:disable|bypass|turn\s+off|switch\s+off|ignore|circumvent|deactivate|remove)\b[^.\n]{0,30}?\b(?:safety|content\s+(?:filters?|polic(?:y|ies))|guardrails?|moderation|safeguards?)\b",
            "message": "Tells the model to disable or bypass its safety measures.",
        },
        {
            "id": "jailbreak-persona",
            "pattern": r"\b(?:you\s+are\s+now|act\s+as|pretend\s+to\s+be)\s+(?:DAN\b|an?\s+unrestricted|in\s+developer\s+mode)|\bdo\s+anything\s+now\b",
            "message": "Uses a known jailbreak persona.",
        },
    ],
    "personal_data": [
        {
            "id": "email",
            "pattern": r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
            "message": "A literal email address.",
        },
        {
            "id": "phone",
            "pattern": r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w])|(?<![\w(])(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?!\w)",
            "message": "A literal phone number.",
            "check": "phone",
        },
        {
            "id": "iban",
            "pattern": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
            "message": "A literal IBAN (bank account number).",
            "check": "iban",
            "case_sensitive": True,
        },
        {
            "id": "payment-card",
            "pattern": r"(?<![\d+])(?:\d[ -]?){12,18}\d(?!\d)",
            "message": "A literal payment card number.",
            "check": "luhn",
        },
        {
            "id": "us-ssn",
            "pattern": r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])",
            "message": "A literal US social security number.",
        },
    ],
}


@dataclass(frozen=True)
class Finding:
    """One match. ``line`` and ``column`` are 1-based; personal data is redacted in ``excerpt``."""

    kind: str
    rule_id: str
    line: int
    excerpt: str
    message: str
    column: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule_id": self.rule_id,
            "line": self.line,
            "column": self.column,
            "excerpt": self.excerpt,
            "message": self.message,
        }


@dataclass
class ScanReport:
    """The outcome of :func:`scan`: ok when the pack is valid and nothing was found."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # with the pack or the input, not the text
    rule_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings and not self.problems

    def counts(self) -> dict[str, int]:
        return {kind: sum(f.kind == kind for f in self.findings) for kind in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rule_count": self.rule_count,
            "counts": self.counts(),
            "problems": list(self.problems),
            "findings": [f.to_dict() for f in self.findings],
        }

    def text(self) -> str:
        if self.problems:
            lines = ["Policy scan: FAILED (the scan could not run)"]
            lines += [f"  {p}" for p in self.problems]
            return "\n".join(lines)
        if self.ok:
            return (
                f"Policy scan: OK (no prohibited content or personal data; {self.rule_count} rules)"
            )
        c = self.counts()
        lines = [
            f"Policy scan: FAILED ({len(self.findings)} finding{'s' if len(self.findings) != 1 else ''}:"
            f" {c[PROHIBITED]} prohibited, {c[PERSONAL_DATA]} personal data)"
        ]
        lines += [
            f"  line {f.line}, col {f.column}: [{f.kind}] {f.rule_id}: {f.excerpt!r} ({f.message})"
            for f in self.findings
        ]
        return "\n".join(lines)


def _rule_problems(kind: str, n: int, rule: Any, seen: set[str]) -> list[str]:
    """What is wrong with the ``n``th rule of a kind; adds its id to ``seen``."""
    where = f"{kind} #{n}"
    if not isinstance(rule, dict):
        return [f"{where} must be an object."]
    problems = []
    rule_id = rule.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        problems.append(f'{where} needs a non-empty string "id".')
    else:
        where = f"{kind} '{rule_id}'"
        if rule_id in seen:
            problems.append(f"{where}: id '{rule_id}' is used more than once.")
        seen.add(rule_id)
    problems += [f"{where}: unknown key '{k}'." for k in sorted(set(rule) - _RULE_KEYS)]
    if "message" in rule and not isinstance(rule["message"], str):
        problems.append(f'{where}: "message" must be a string.')
    if "case_sensitive" in rule and not isinstance(rule["case_sensitive"], bool):
        problems.append(f'{where}: "case_sensitive" must be true or false.')
    if "check" in rule and rule["check"] not in CHECKS:
        known = ", ".join(sorted(CHECKS))
        problems.append(f"{where}: unknown check {rule['check']!r} (known: {known}).")
    return problems + _pattern_problems(where, rule.get("pattern"))


def _pattern_problems(where: str, pattern: Any) -> list[str]:
    if not isinstance(pattern, str) or not pattern:
        return [f'{where} needs a non-empty string "pattern".']
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return [f"{where}: pattern is not a valid regular expression: {exc}."]
    if compiled.fullmatch(""):
        return [f"{where}: pattern matches the empty string."]
    return []


def validate_pack(data: Any) -> list[str]:
    """What is wrong with a policy pack; empty when it can be used."""
    if not isinstance(data, dict):
        return [
            f'A policy pack must be an object with "{PROHIBITED}" and/or "{PERSONAL_DATA}" lists.'
        ]
    problems = [f"Unknown key '{key}'." for key in sorted(set(data) - _PACK_KEYS)]
    seen: set[str] = set()
    total = 0
    for kind in KINDS:
        rules = data.get(kind, [])
        if not isinstance(rules, list):
            problems.append(f'"{kind}" must be a list of rules.')
            continue
        total += len(rules)
        for n, rule in enumerate(rules, start=1):
            problems += _rule_problems(kind, n, rule, seen)
    if total == 0 and not problems:
        problems.append("The pack has no rules, so it checks nothing.")
    return problems


# {{ name }}, {{ user.email | lower }}, {% if vip %}, {# note #}: no quoted literal inside.
_PLACEHOLDER = re.compile(r"\{\{[^{}'\"]*\}\}|\{%[^{}'\"]*%\}|\{#.*?#\}", re.DOTALL)


def _blank_placeholders(text: str) -> str:
    """Placeholders replaced by spaces, keeping newlines, so positions and line numbers hold."""
    return _PLACEHOLDER.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)


def _redact(value: str) -> str:
    keep = 2 if len(value) >= 8 else 1 if len(value) >= 4 else 0
    middle = "".join("*" if c.isalnum() else c for c in value[keep : len(value) - keep])
    return value[:keep] + middle + value[len(value) - keep :]


def _excerpt(value: str, limit: int = 80) -> str:
    value = " ".join(value.split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def scan(text: Any, pack: Any = None) -> ScanReport:
    """Scan a template's text with a policy pack (the default pack when None)."""
    pack = DEFAULT_POLICY_PACK if pack is None else pack
    problems = validate_pack(pack)
    if not isinstance(text, str):
        problems.append(f"Only text can be scanned, not {type(text).__name__}.")
    if problems:
        return ScanReport(problems=problems)
    blanked = _blank_placeholders(text)
    line_starts = [0] + [i + 1 for i, c in enumerate(blanked) if c == "\n"]
    findings: list[Finding] = []
    rule_count = 0
    for kind in KINDS:
        for rule in pack.get(kind, []):
            rule_count += 1
            flags = 0 if rule.get("case_sensitive") else re.IGNORECASE
            check = CHECKS.get(rule.get("check", ""))
            for m in re.finditer(rule["pattern"], blanked, flags):
                matched = m.group()
                if not matched.strip() or (check is not None and not check(matched)):
                    continue
                line = bisect.bisect_right(line_starts, m.start())  # 1-based
                shown = _redact(matched.strip()) if kind == PERSONAL_DATA else matched
                findings.append(
                    Finding(
                        kind=kind,
                        rule_id=rule["id"],
                        line=line,
                        column=m.start() - line_starts[line - 1] + 1,
                        excerpt=_excerpt(shown),
                        message=rule.get("message") or f"Matches {kind} rule '{rule['id']}'.",
                    )
                )
    findings.sort(key=lambda f: (f.line, f.column, KINDS.index(f.kind), f.rule_id))
    return ScanReport(findings=findings, rule_count=rule_count)
