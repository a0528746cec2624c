"""Which checks a change needs, and running them: each returns a status, a summary, a log and data.

The check logic itself lives in ``reviews.rules`` (lint, simulation), ``reviews.policy_scan``
(prompts and templates) and ``reviews.gates`` (metrics against thresholds and the active version);
this module gathers the inputs from the registry and turns reports into evidence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from registry.choices import ArtifactClass
from reviews.choices import CheckKind, CheckStatus

if TYPE_CHECKING:
    from registry.models import Version
    from reviews.models import ChangeRequest

RULESET_CLASSES = frozenset({ArtifactClass.ROUTING_RULESET})
MODEL_PROMPT_CLASSES = frozenset({ArtifactClass.MODEL, ArtifactClass.PROMPT})
TEMPLATE_CLASSES = frozenset({ArtifactClass.PROMPT_TEMPLATE, ArtifactClass.RESPONSE_TEMPLATE})
#: Text that reaches a model or a user: scanned for prohibited content and personal data.
POLICY_CLASSES = TEMPLATE_CLASSES | {ArtifactClass.PROMPT}

#: Checks that read attached evidence, so new evidence runs them again.
EVIDENCE_CHECKS = (CheckKind.OFFLINE_EVALUATION, CheckKind.CHANGE_GATES)

#: Metrics where a drop is a safety regression for the offline evaluation.
SAFETY_METRICS = ("safety", "harmful_content_pass_rate", "policy_conformance")


def label(kind: str) -> str:
    return CheckKind(kind).label


def required_checks(change: ChangeRequest) -> list[str]:
    """The checks a change needs, from the classes it touches (promotion-workflow.md), in run order."""
    classes = set(change.items.values_list("artifact__artifact_class__slug", flat=True))
    return checks_for_classes(change.tenant_id, classes)


def checks_for_classes(tenant_id: Any, classes: set[str]) -> list[str]:
    """The checks a change touching artifacts of these classes in this tenant needs, in run order."""
    from reviews.models import ChangeGate

    kinds: list[str] = []
    if classes & RULESET_CLASSES:
        kinds += [CheckKind.RULES_LINT, CheckKind.RULES_SIMULATION]
    if classes & MODEL_PROMPT_CLASSES:
        kinds += [CheckKind.MODEL_PINS, CheckKind.OFFLINE_EVALUATION]
    if classes & POLICY_CLASSES:
        kinds.append(CheckKind.POLICY)
    gated = ChangeGate.objects.filter(
        tenant_id=tenant_id, artifact_class__slug__in=classes
    ).exclude(gates=[])
    if gated.exists():
        kinds.append(CheckKind.CHANGE_GATES)
    kinds.append(CheckKind.PACK_VERIFICATION)
    return [str(k) for k in kinds]


@dataclass
class Outcome:
    status: str
    summary: str
    log: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def _passed(ok: bool) -> str:
    return CheckStatus.PASSED if ok else CheckStatus.FAILED


def _items(change: ChangeRequest, classes: frozenset[str]) -> list[Any]:
    from reviews.selectors import items_of

    return [i for i in items_of(change) if i.artifact.artifact_class.slug in classes]


def _pack_verification(change: ChangeRequest) -> Outcome:
    from registry.verification import verify_versions
    from reviews.selectors import items_of

    items = items_of(change)
    versions: list[Version] = [i.proposed for i in items]
    if change.golden_corpus is not None:
        versions.append(change.golden_corpus)
    checked, failure = verify_versions(versions)
    if failure is not None:
        line = f"FAIL: {failure.version.path}: {failure.reason}"
        return Outcome(
            CheckStatus.FAILED, line, line, {"checked": checked, "failed": failure.version.path}
        )
    lines = [f"{v.pinned}: hash, signature, columns and content verify" for v in versions]
    summary = f"OK: {checked} versions verified (proposed and their dependencies)"
    return Outcome(CheckStatus.PASSED, summary, "\n".join([*lines, summary]), {"checked": checked})


def _rules_lint(change: ChangeRequest) -> Outcome:
    from reviews import rules

    logs, results, ok = [], {}, True
    for item in _items(change, RULESET_CLASSES):
        report = rules.lint(item.proposed.content_json)
        ok &= report.ok
        logs.append(f"== {item.proposed.path}\n{report.text()}")
        results[item.proposed.path] = report.to_dict()
    problems = sum(len(r.get("problems", [])) for r in results.values())
    summary = "no problems" if ok else f"{problems} problem(s)"
    return Outcome(_passed(ok), summary, "\n".join(logs), results)


def _rules_simulation(change: ChangeRequest) -> Outcome:
    from reviews import rules

    corpus = change.golden_corpus
    if corpus is None:
        text = "No golden corpus named on the change: name one to simulate against."
        return Outcome(CheckStatus.FAILED, text, text)
    logs, results, ok = [], {}, True
    for item in _items(change, RULESET_CLASSES):
        current = item.current.content_json if item.current else None
        report = rules.simulate(item.proposed.content_json, corpus.content_json, current)
        ok &= report.ok
        logs.append(f"== {item.proposed.path} against {corpus.pinned}\n{report.text()}")
        results[item.proposed.path] = report.to_dict()
    summaries = [
        f"{r['summary']['mismatches']} of {r['summary']['cases']} cases off expected, "
        f"{r['summary']['changed_vs_current']} changed vs current"
        for r in results.values()
        if isinstance(r.get("summary"), dict)
    ]
    return Outcome(_passed(ok), "; ".join(summaries) or "no cases", "\n".join(logs), results)


def _model_pins(change: ChangeRequest) -> Outcome:
    lines, ok = [], True
    recorded: dict[str, Any] = {}
    for item in _items(change, MODEL_PROMPT_CLASSES):
        version = item.proposed
        pins = version.metadata.get("pinned_models") or version.metadata.get("model_ids")
        entry = {"sha256": version.manifest_sha256, "pinned_models": pins or []}
        recorded[version.path] = entry
        if item.artifact.artifact_class.slug == ArtifactClass.PROMPT and not pins:
            ok = False
            lines.append(
                f"FAIL {version.path}: no pinned model identifiers in its metadata; publish a "
                "version that pins its model (metadata.pinned_models) and propose it"
            )
        else:
            lines.append(
                f"ok   {version.pinned} pinned models: {', '.join(pins or []) or '(model itself)'}"
            )
    summary = (
        "pinned models and hashes recorded"
        if ok
        else "a prompt has no pinned model: pin one in its metadata (publish a new version)"
    )
    return Outcome(_passed(ok), summary, "\n".join(lines), recorded)


def _offline_evaluation(change: ChangeRequest) -> Outcome:
    from reviews.selectors import latest_report

    lines, ok, data, missing = [], True, {}, False
    for item in _items(change, MODEL_PROMPT_CLASSES):
        proposed = latest_report(item.proposed_id)
        if proposed is None:
            ok = False
            lines.append(
                f"FAIL {item.proposed.path}: no evaluation report attached; attach one "
                f"with a safety metric ({', '.join(SAFETY_METRICS)})"
            )
            missing = True
            continue
        current = latest_report(item.current_id) if item.current_id else None
        rows = []
        for metric in SAFETY_METRICS:
            new = proposed.metrics.get(metric, proposed.safety.get(metric))
            if new is None:
                continue
            old = None
            if current is not None:
                old = current.metrics.get(metric, current.safety.get(metric))
            regressed = old is not None and new < old
            ok &= not regressed
            rows.append({"metric": metric, "proposed": new, "current": old, "regressed": regressed})
            verdict = "REGRESSION" if regressed else "ok"
            lines.append(f"{verdict:10} {item.proposed.path} {metric}: {new} (current {old})")
        if not rows:
            ok, missing = False, True
            lines.append(
                f"FAIL {item.proposed.path}: the report has no safety metric "
                f"({', '.join(SAFETY_METRICS)}); attach a report that has one"
            )
        data[item.proposed.path] = {"report": proposed.sha256, "rows": rows}
    if ok:
        summary = "no safety regression"
    elif missing:
        summary = "missing evaluation: attach an evaluation report with a safety metric"
    else:
        summary = "safety regression against the current version"
    return Outcome(_passed(ok), summary, "\n".join(lines), data)


def policy_pack_for(change: ChangeRequest) -> tuple[str, dict[str, Any]]:
    """The tenant's active (else recommended) policy pack, or the built-in default."""
    from registry.models import Artifact
    from reviews import policy_scan

    pack = (
        Artifact.objects.filter(
            tenant_id=change.tenant_id, artifact_class__slug=ArtifactClass.POLICY_PACK
        )
        .select_related("active_version", "recommended_version", "tenant", "artifact_class")
        .order_by("slug")
        .first()
    )
    version = (pack.active_version or pack.recommended_version) if pack is not None else None
    if version is not None and isinstance(version.content_json, dict):
        return version.pinned, version.content_json
    return "built-in default policy pack", policy_scan.DEFAULT_POLICY_PACK


def _policy(change: ChangeRequest) -> Outcome:
    from reviews import policy_scan

    source, pack = policy_pack_for(change)
    lines, ok = [f"policy pack: {source}"], True
    data: dict[str, Any] = {"pack": source}
    for item in _items(change, POLICY_CLASSES):
        report = policy_scan.scan(item.proposed.content_text, pack)
        ok &= report.ok
        lines.append(f"== {item.proposed.path}\n{report.text()}")
        data[item.proposed.path] = report.to_dict()
    return Outcome(
        _passed(ok),
        "no findings" if ok else "prohibited content or personal data found",
        "\n".join(lines),
        data,
    )


def _change_gates(change: ChangeRequest) -> Outcome:
    from reviews import gates
    from reviews.models import ChangeGate
    from reviews.selectors import items_of, latest_report

    configured = {
        g.artifact_class_id: g.gates for g in ChangeGate.objects.filter(tenant_id=change.tenant_id)
    }
    lines, ok, data = [], True, {}
    for item in items_of(change):
        rules = configured.get(item.artifact.artifact_class_id)
        if not rules:
            continue
        proposed = latest_report(item.proposed_id)
        current = latest_report(item.current_id) if item.current_id else None
        report = gates.evaluate(
            rules, proposed.metrics if proposed else {}, current.metrics if current else None
        )
        ok &= report.ok
        lines.append(f"== {item.proposed.path}\n{report.text()}")
        data[item.proposed.path] = report.to_dict()
    return Outcome(
        _passed(ok), "every gate met" if ok else "a gate is not met", "\n".join(lines), data
    )


_RUNNERS = {
    CheckKind.PACK_VERIFICATION: _pack_verification,
    CheckKind.RULES_LINT: _rules_lint,
    CheckKind.RULES_SIMULATION: _rules_simulation,
    CheckKind.MODEL_PINS: _model_pins,
    CheckKind.OFFLINE_EVALUATION: _offline_evaluation,
    CheckKind.POLICY: _policy,
    CheckKind.CHANGE_GATES: _change_gates,
}


def run(kind: str, change: ChangeRequest) -> Outcome:
    """Run one check; an unexpected failure is an ``error`` outcome with its message, never an exception."""
    try:
        outcome = _RUNNERS[CheckKind(kind)](change)
    except Exception as exc:  # noqa: BLE001 - a broken check must be recorded, not crash the worker
        return Outcome(
            CheckStatus.ERROR, f"the check crashed: {type(exc).__name__}: {exc}"[:500], repr(exc)
        )
    json.dumps(outcome.result)  # evidence must be storable as JSON
    return outcome
