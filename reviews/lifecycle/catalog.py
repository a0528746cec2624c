"""The stage criteria's types and their catalog: what a criterion reads, what it answers, and
the one registry of criteria by key (built-in ones in ``criteria.py``; upper floors add theirs
with :func:`register` in their ``AppConfig.ready()``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from registry.choices import Stage

if TYPE_CHECKING:
    from registry.models import Version
    from reviews.lifecycle.policy import Policy
    from reviews.models import ChangeItem, ChangeRequest, EvaluationReport

#: The stages that have criteria, in the order a version moves through them.
STAGES: tuple[str, ...] = (Stage.DRAFT, Stage.EVALUATED, Stage.APPROVED, Stage.ACTIVE)
#: Active's criteria are watched (shown on the checklist), never required to enter it.
WATCHED: frozenset[str] = frozenset({Stage.ACTIVE})


@dataclass(frozen=True)
class Subject:
    """What a criterion reads: the version, the change that proposes it (the latest one not
    withdrawn, or the one being promoted) and the effective policy.

    The cached properties read each kind of evidence once, so a checklist's queries do not
    grow with the number of criteria or of evidence rows.
    """

    version: Version
    change: ChangeRequest | None
    policy: Policy

    @cached_property
    def reports(self) -> list[EvaluationReport]:
        """The version's evaluation reports, newest first."""
        from reviews.models import EvaluationReport

        return list(EvaluationReport.objects.filter(version=self.version).order_by("-created_at"))

    @cached_property
    def item(self) -> ChangeItem | None:
        """The change's item proposing this version."""
        if self.change is None:
            return None
        return (
            self.change.items.filter(proposed=self.version)
            .select_related("current__artifact__artifact_class", "current__artifact__tenant")
            .first()
        )

    @cached_property
    def verdicts(self) -> list[Any]:
        """The change's required checks with their standing now (``check_verdicts``)."""
        from reviews.selectors import check_verdicts

        return check_verdicts(self.change) if self.change is not None else []

    @cached_property
    def approvals(self) -> Any:
        """The change's approval slots as they count now (``approval_status``)."""
        from reviews.selectors import approval_status

        return approval_status(self.change) if self.change is not None else None

    @cached_property
    def live_approves(self) -> list[Any]:
        """Approvals of the change's current revision (not voided), with their approvers."""
        from reviews.choices import Decision

        if self.change is None:
            return []
        return list(
            self.change.approvals.filter(
                voided_at__isnull=True,
                decision=Decision.APPROVE,
                revision=self.change.revision,
                binding_sha256=self.change.binding_sha256,
            )
            .select_related("approver")
            .order_by("created_at")
        )


@dataclass(frozen=True)
class Verdict:
    """A criterion's answer: met or not, what is there or exactly what is missing and how to
    add it, and a link to the evidence (met) or to the place to add it (missing)."""

    met: bool
    detail: str
    url: str = ""


@dataclass(frozen=True)
class Criterion:
    """One thing a stage asks of a version. ``asks`` is one sentence: what it requires."""

    key: str
    stage: str
    label: str
    asks: str
    check: Callable[[Subject], Verdict]


_catalog: dict[str, Criterion] = {}


def register(criterion: Criterion) -> None:
    """Add a criterion, or replace the one with the same key (rollouts replaces the
    placeholders of ``monitoring`` and ``post_deploy_verification``)."""
    if criterion.stage not in STAGES:
        raise ValueError(f"{criterion.key}: '{criterion.stage}' is not a stage with criteria.")
    _catalog[criterion.key] = criterion


def criterion(key: str) -> Criterion | None:
    """The registered criterion with this key, if any."""
    return _catalog.get(key)


def known_keys() -> list[str]:
    """Every registered criterion's key, by stage then in registration order."""
    order = {stage: i for i, stage in enumerate(STAGES)}
    return [c.key for c in sorted(_catalog.values(), key=lambda c: order[c.stage])]
