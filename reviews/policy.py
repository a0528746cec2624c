"""Approval policies as data: who must sign off which change.

A policy is an ordered list of rules. A rule applies when the change touches one of
its classes (or any class, if it names none) and its flags match; the required
slots are the union of every applying rule's ``require``, up to and including the
first applying rule marked ``final``. The defaults are the seeds' own
(promotion-workflow.md, learning-artifact-lifecycle.md).

Slots are tenant roles or artifact-level roles (``owner``, ``deputy``: the owner and the
deputy of a changed artifact). A rule may also say ``"promoted_by": "owner"``: then only an
accountable owner of a changed artifact promotes the change. Whatever the rules say, a change
of an action-eligible artifact needs a reviewer (``action_eligible`` is also a condition).

``passkey_required`` (optional) names the slots whose sign-off must be a WebAuthn assertion by
the approver's own passkey instead of a password (``["security_officer"]``; ``["*"]``: all).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from registry.choices import ArtifactClass
from reviews.choices import Promoter, Requirement

FLAGS = ("emergency", "privacy_related", "external_egress", "action_eligible")

#: ``"passkey_required": ["*"]``: every slot signs off with a passkey.
PASSKEY_ALL = "*"

DEFAULT_RULES: dict[str, Any] = {
    "rules": [
        {
            "name": "Emergency change",
            "when": {"emergency": True},
            "require": [Requirement.OWNER.value, Requirement.SECURITY_OFFICER.value],
            "final": True,
        },
        {
            "name": "Privacy-related template",
            "when": {
                "classes": [
                    ArtifactClass.PROMPT_TEMPLATE.value,
                    ArtifactClass.RESPONSE_TEMPLATE.value,
                ],
                "privacy_related": True,
            },
            "require": [Requirement.PRIVACY_OFFICER.value, Requirement.ADMINISTRATOR.value],
            "final": True,
        },
        {
            "name": "External LLM egress changes",
            "when": {
                "classes": [ArtifactClass.MODEL.value, ArtifactClass.PROMPT.value],
                "external_egress": True,
            },
            "require": [Requirement.SECURITY_OFFICER.value],
        },
        {
            "name": "Any change (routing ruleset, model, prompt, template, other classes)",
            "when": {},
            "require": [Requirement.REVIEWER.value, Requirement.ADMINISTRATOR.value],
        },
    ],
    "postmortem_days": 5,
}


class PolicyError(ValueError):
    """A policy document that cannot be used; ``field`` names the offending part."""

    def __init__(self, message: str, field: str = "rules") -> None:
        super().__init__(message)
        self.field = field


def validate(document: Any) -> dict[str, Any]:
    """Check a policy document's shape and return it normalised; raise PolicyError naming the part."""
    if not isinstance(document, dict):
        raise PolicyError("The policy must be a JSON object with 'rules' and 'postmortem_days'.")
    unknown = set(document) - {"rules", "postmortem_days", "passkey_required"}
    if unknown:
        raise PolicyError(f"Unknown key(s) in the policy: {', '.join(sorted(unknown))}.")
    rules = document.get("rules")
    if not isinstance(rules, list) or not rules:
        raise PolicyError("'rules' must be a non-empty list.")
    days = document.get("postmortem_days", DEFAULT_RULES["postmortem_days"])
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 90:
        raise PolicyError(
            "'postmortem_days' must be a whole number from 1 to 90.", "postmortem_days"
        )
    out = [_rule(i, rule) for i, rule in enumerate(rules)]
    normalised: dict[str, Any] = {"rules": out, "postmortem_days": days}
    passkeys = _passkey_required(document.get("passkey_required", []))
    if passkeys:
        normalised["passkey_required"] = passkeys
    return normalised


def _passkey_required(value: Any) -> list[str]:
    """``passkey_required``: the slots whose sign-off needs the approver's passkey ("*": all)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(
            "'passkey_required' must be a list of roles (or [\"*\"] for every role).",
            "passkey_required",
        )
    for slot in value:
        if slot != PASSKEY_ALL and slot not in Requirement.values:
            raise PolicyError(
                f"passkey_required: '{slot}' is not one of {', '.join(Requirement.values)} "
                f"or '{PASSKEY_ALL}'.",
                "passkey_required",
            )
    return list(dict.fromkeys(value))


def passkey_required(document: dict[str, Any], requirement: str) -> bool:
    """Whether signing off in ``requirement`` needs a passkey under this policy."""
    wanted = document.get("passkey_required") or []
    return PASSKEY_ALL in wanted or requirement in wanted


def _rule(i: int, rule: Any) -> dict[str, Any]:
    """One rule of a policy, checked and normalised; errors name ``rules[i]``."""
    where = f"rules[{i}]"
    if not isinstance(rule, dict):
        raise PolicyError(f"{where} must be an object.", where)
    extra = set(rule) - {"name", "when", "require", "final", "promoted_by"}
    if extra:
        raise PolicyError(f"{where} has unknown key(s): {', '.join(sorted(extra))}.", where)
    when = rule.get("when", {})
    if not isinstance(when, dict):
        raise PolicyError(f"{where}.when must be an object.", where)
    for key, value in when.items():
        _check_condition(where, key, value)
    require = rule.get("require")
    if not isinstance(require, list) or not require:
        raise PolicyError(f"{where}.require must list at least one role.", where)
    for slot in require:
        if slot not in Requirement.values:
            raise PolicyError(
                f"{where}.require: '{slot}' is not one of {', '.join(Requirement.values)}.",
                where,
            )
    promoted_by = rule.get("promoted_by", Promoter.ADMINISTRATOR.value)
    if promoted_by not in Promoter.values:
        raise PolicyError(
            f"{where}.promoted_by: '{promoted_by}' is not one of {', '.join(Promoter.values)}.",
            where,
        )
    out = {
        "name": str(rule.get("name") or f"Rule {i + 1}"),
        "when": when,
        "require": list(dict.fromkeys(require)),
        "final": bool(rule.get("final", False)),
    }
    if promoted_by != Promoter.ADMINISTRATOR:
        out["promoted_by"] = promoted_by
    return out


def _check_condition(where: str, key: str, value: Any) -> None:
    """One condition of a rule's ``when``: its classes, or one of the flags."""
    if key == "classes":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise PolicyError(f"{where}.when.classes must be a list of class slugs.", where)
    elif key in FLAGS:
        if not isinstance(value, bool):
            raise PolicyError(f"{where}.when.{key} must be true or false.", where)
    else:
        raise PolicyError(
            f"{where}.when.{key} is not a condition (use classes, {', '.join(FLAGS)}).",
            where,
        )


@dataclass(frozen=True)
class ChangeFacts:
    """What a policy looks at: the classes a change touches, its flags, and whether one of its
    artifacts is action-eligible (its output can trigger actions)."""

    classes: frozenset[str]
    emergency: bool = False
    privacy_related: bool = False
    external_egress: bool = False
    action_eligible: bool = False


#: Why a reviewer slot is there when no rule asked for one (learning-artifact-lifecycle.md:
#: reviewer sign-off for action-eligible artifacts, whatever the policy says).
ACTION_ELIGIBLE_RULE = "Action-eligible artifact: a reviewer always signs off"


def _applies(when: dict[str, Any], facts: ChangeFacts) -> bool:
    classes = when.get("classes")
    if classes is not None and not facts.classes & set(classes):
        return False
    return all(getattr(facts, flag) == when[flag] for flag in FLAGS if flag in when)


def requirements_for(document: dict[str, Any], facts: ChangeFacts) -> list[str]:
    """The distinct approval slots a change needs under a policy, in the order the policy names them."""
    slots: list[str] = []
    for rule in document["rules"]:
        if not _applies(rule.get("when", {}), facts):
            continue
        slots.extend(s for s in rule["require"] if s not in slots)
        if rule.get("final"):
            break
    if facts.action_eligible and Requirement.REVIEWER not in slots:
        slots.append(Requirement.REVIEWER.value)
    return slots


def names_owner_promotion(document: dict[str, Any]) -> bool:
    """Whether any rule of the policy says ``"promoted_by": "owner"``."""
    return any(rule.get("promoted_by") == Promoter.OWNER for rule in document["rules"])


def promoted_by_owner(document: dict[str, Any], facts: ChangeFacts) -> bool:
    """Whether an applying rule (up to the first final one) says only the accountable owner
    promotes (``"promoted_by": "owner"``)."""
    for rule in document["rules"]:
        if not _applies(rule.get("when", {}), facts):
            continue
        if rule.get("promoted_by") == Promoter.OWNER:
            return True
        if rule.get("final"):
            break
    return False


def applying_rules(document: dict[str, Any], facts: ChangeFacts) -> Iterable[str]:
    """Names of the rules that applied, for showing why a slot is required."""
    slots: set[str] = set()
    for rule in document["rules"]:
        if _applies(rule.get("when", {}), facts):
            yield rule["name"]
            slots.update(rule["require"])
            if rule.get("final"):
                break
    if facts.action_eligible and Requirement.REVIEWER not in slots:
        yield ACTION_ELIGIBLE_RULE
