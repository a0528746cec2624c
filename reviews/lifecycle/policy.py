"""Stage criteria as data: the seed's table by default, a tenant's (or the platform's) own
versions of it as ``LifecyclePolicy`` rows, and the one rule that picks the one in force.

A document is ``{"<class slug or *>": {"<stage>": ["<criterion key>", ...]}}``. For a class
and a stage, the class's own entry wins, then ``*``, then the default table; an explicit
empty list asks for nothing at that stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from registry.choices import Stage
from reviews.lifecycle.catalog import STAGES, criterion

if TYPE_CHECKING:
    from accounts.models import Tenant
    from reviews.models import LifecyclePolicy

#: Every class: the word in a document for "any class without an entry of its own".
ANY_CLASS = "*"

#: The seed's table (learning-artifact-lifecycle.md), used when neither the tenant nor the
#: platform default has saved criteria of their own.
DEFAULT_CRITERIA: dict[str, dict[str, list[str]]] = {
    ANY_CLASS: {
        Stage.DRAFT.value: [
            "inventory",
            "dataset_lineage",
            "classification",
            "evaluation_plan",
            "risk_note",
        ],
        Stage.EVALUATED.value: [
            "baseline_metrics",
            "policy_conformance",
            "baseline_tests",
            "reproducibility",
            "bias_checks",
            "evaluation_report",
        ],
        Stage.APPROVED.value: [
            "change_gates",
            "action_eligible_signoff",
            "governance_review",
            "rollout_plan",
            "rollback_point",
            "signed_approval",
            "deployment_checklist",
            "owner_authorisation",
        ],
        Stage.ACTIVE.value: ["monitoring", "post_deploy_verification", "alert_routing"],
    }
}
#: Two evaluation runs with the same seed and RNG agree when every shared metric differs by at
#: most this much (the default, as the model's).
DEFAULT_TOLERANCE = 0.01
DEFAULT_RECERTIFY_DAYS = 14
MAX_RECERTIFY_DAYS = 365
MAX_TOLERANCE = 1_000_000.0
_CLASS_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")


class PolicyError(ValueError):
    """A criteria document that cannot be used; ``field`` names the offending part."""

    def __init__(self, message: str, field: str = "criteria") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Policy:
    """The criteria in force for one class in one tenant, and the policy's other settings."""

    criteria: dict[str, list[str]]
    enforced: bool
    reproducibility_tolerance: float = DEFAULT_TOLERANCE
    recertify_within_days: int = DEFAULT_RECERTIFY_DAYS
    #: The saved row it comes from (None: the seed's table).
    row: LifecyclePolicy | None = field(default=None, compare=False)
    #: "tenant", "default" (the platform default's row) or "built-in".
    scope: str = "built-in"

    def keys_for(self, stage: str) -> list[str]:
        return list(self.criteria.get(stage, []))


def validate(document: Any, *, class_slugs: set[str] | None = None) -> dict[str, Any]:
    """Check a criteria document's shape and return it normalised; raise PolicyError naming
    the part. ``class_slugs``, when given, are the classes an entry may name (besides ``*``)."""
    if not isinstance(document, dict) or not document:
        raise PolicyError(
            'The criteria must be a JSON object of class slug (or "*") to stages, e.g. '
            '{"*": {"draft": ["inventory", ...], ...}}.'
        )
    out: dict[str, dict[str, list[str]]] = {}
    for cls, stages in document.items():
        where = f"criteria.{cls}"
        if cls != ANY_CLASS and (not isinstance(cls, str) or not _CLASS_SLUG.match(cls)):
            raise PolicyError(f"'{cls}' is not a class slug or \"*\".", where)
        if cls != ANY_CLASS and class_slugs is not None and cls not in class_slugs:
            raise PolicyError(f"'{cls}' is not an artifact class.", where)
        if not isinstance(stages, dict):
            raise PolicyError(f"{where} must be an object of stage to criterion keys.", where)
        out[cls] = {}
        for stage, keys in stages.items():
            here = f"{where}.{stage}"
            if stage not in STAGES:
                raise PolicyError(
                    f"'{stage}' is not a stage with criteria (use {', '.join(STAGES)}).", here
                )
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise PolicyError(f"{here} must be a list of criterion keys.", here)
            for key in keys:
                if criterion(key) is None:
                    raise PolicyError(f"'{key}' is not a criterion (in {here}).", here)
            out[cls][stage] = list(dict.fromkeys(keys))
    return out


def validate_settings(
    reproducibility_tolerance: Any, recertify_within_days: Any
) -> tuple[float, int]:
    """The policy's two numbers, checked; errors name their field."""
    tol = reproducibility_tolerance
    if (
        isinstance(tol, bool)
        or not isinstance(tol, int | float)
        or not math.isfinite(tol)
        or not 0 <= tol <= MAX_TOLERANCE
    ):
        raise PolicyError(
            "The reproducibility tolerance must be a number from 0 up.",
            "reproducibility_tolerance",
        )
    days = recertify_within_days
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RECERTIFY_DAYS:
        raise PolicyError(
            f"Re-certification must be due within 1 to {MAX_RECERTIFY_DAYS} days.",
            "recertify_within_days",
        )
    return float(tol), days


def criteria_for_class(document: dict[str, Any], class_slug: str) -> dict[str, list[str]]:
    """The stage -> keys a document asks of one class: its own entry, then ``*``, then the
    default table, stage by stage."""
    own = document.get(class_slug, {})
    anyone = document.get(ANY_CLASS, {})
    default = DEFAULT_CRITERIA[ANY_CLASS]
    resolved: dict[str, list[str]] = {}
    for stage in STAGES:
        for source in (own, anyone, default):
            if stage in source:
                resolved[stage] = list(source[stage])
                break
    return resolved


def effective_row(tenant: Tenant | None) -> LifecyclePolicy | None:
    """The saved policy in force: the tenant's newest, else the platform default's newest."""
    from reviews.models import LifecyclePolicy

    if tenant is not None:
        own = LifecyclePolicy.objects.filter(tenant=tenant).order_by("-number").first()
        if own is not None:
            return own
    return LifecyclePolicy.objects.filter(tenant__isnull=True).order_by("-number").first()


def policy_for(tenant: Tenant | None, artifact_class: Any) -> Policy:
    """The criteria in force for a class (an ArtifactClass row or its slug) in a tenant:
    the tenant's row, else the platform default's row, else the seed's table
    (advisory when ``settings.LIFECYCLE_ENFORCED_DEFAULT`` is False)."""
    return policy_from_row(effective_row(tenant), artifact_class, tenant=tenant)


def policy_from_row(
    row: LifecyclePolicy | None, artifact_class: Any, *, tenant: Tenant | None = None
) -> Policy:
    """:func:`policy_for` once the row in force is known."""
    slug = artifact_class if isinstance(artifact_class, str) else artifact_class.slug
    if row is None:
        return Policy(
            criteria=criteria_for_class(DEFAULT_CRITERIA, slug),
            enforced=bool(getattr(settings, "LIFECYCLE_ENFORCED_DEFAULT", True)),
        )
    own = tenant is not None and row.tenant_id == tenant.pk
    return Policy(
        criteria=criteria_for_class(row.criteria, slug),
        enforced=row.enforced,
        reproducibility_tolerance=row.reproducibility_tolerance,
        recertify_within_days=row.recertify_within_days,
        row=row,
        scope="tenant" if own else "default",
    )
