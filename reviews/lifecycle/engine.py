"""The rule: moving INTO a stage needs every criterion of the stages before it and of the stage
itself (Active's are watched, never required). ``require`` refuses with every unmet criterion
named, when the policy is enforced; ``unmet`` answers the same question without refusing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from governance.kernel.errors import Conflict
from registry.choices import Stage
from reviews.lifecycle.catalog import STAGES, WATCHED, Criterion, Subject, Verdict, criterion
from reviews.lifecycle.policy import Policy, policy_for

if TYPE_CHECKING:
    from registry.models import Version
    from reviews.models import ChangeRequest

#: The code of the Conflict ``require`` raises.
CRITERIA_UNMET = "criteria_unmet"


@dataclass(frozen=True)
class Judged:
    """A criterion with its verdict, for one version at one stage of its policy."""

    criterion: Criterion
    stage: str
    verdict: Verdict

    @property
    def text(self) -> str:
        return f"{self.criterion.label} ({self.verdict.detail})"


def proposing_change(version: Version) -> ChangeRequest | None:
    """The latest change request (not withdrawn) whose items propose ``version``."""
    from reviews.choices import ChangeStatus
    from reviews.models import ChangeRequest

    return (
        ChangeRequest.objects.filter(items__proposed=version)
        .exclude(status=ChangeStatus.WITHDRAWN)
        .select_related("tenant")
        .order_by("-created_at")
        .first()
    )


def subject_for(
    version: Version, change: ChangeRequest | None = None, policy: Policy | None = None
) -> Subject:
    """What the criteria read for ``version``: the given change (else the one proposing it)
    and the policy of its tenant and class."""
    artifact = version.artifact
    return Subject(
        version=version,
        change=change if change is not None else proposing_change(version),
        policy=policy or policy_for(artifact.tenant, artifact.artifact_class),
    )


def _missing_criterion(key: str, stage: str) -> Criterion:
    def check(_s: Subject) -> Verdict:
        return Verdict(False, f"the criterion '{key}' is not installed here")

    return Criterion(
        key, stage, key, "A criterion of the policy that nothing here can check.", check
    )


def judge(subject: Subject, stage: str) -> list[Judged]:
    """Every criterion the policy asks at ``stage``, with its verdict."""
    out = []
    for key in subject.policy.keys_for(stage):
        found = criterion(key) or _missing_criterion(key, stage)
        out.append(Judged(found, stage, found.check(subject)))
    return out


def stages_to_enter(stage: str) -> list[str]:
    """The stages whose criteria moving into ``stage`` needs (Active's excepted)."""
    if stage not in STAGES:
        return []
    upto = STAGES[: STAGES.index(stage) + 1]
    return [s for s in upto if s not in WATCHED]


def unmet(
    version: Version,
    stage: str,
    change: ChangeRequest | None = None,
    *,
    subject: Subject | None = None,
) -> list[Judged]:
    """The criteria ``version`` misses to move into ``stage`` (advisory or not: ``require``
    is the one that refuses, and only when the policy is enforced)."""
    subject = subject or subject_for(version, change)
    return [
        judged
        for s in stages_to_enter(stage)
        for judged in judge(subject, s)
        if not judged.verdict.met
    ]


def enforced(version: Version) -> bool:
    """Whether the policy of the version's tenant and class refuses a move (else advisory)."""
    artifact = version.artifact
    return policy_for(artifact.tenant, artifact.artifact_class).enforced


def blocking(version: Version, stage: str, change: ChangeRequest | None = None) -> list[Judged]:
    """What stops ``version`` moving into ``stage`` now: its unmet criteria when the policy is
    enforced, nothing when it is advisory."""
    artifact = version.artifact
    policy = policy_for(artifact.tenant, artifact.artifact_class)
    if not policy.enforced:  # advisory: not even the evidence is read
        return []
    return unmet(version, stage, change, subject=subject_for(version, change, policy))


def describe(version: Version, missing: list[Judged]) -> str:
    """``path: Label (detail); Label (detail)`` for a refusal."""
    return f"{version.path}: " + "; ".join(j.text for j in missing)


def require(version: Version, stage: str, change: ChangeRequest | None = None) -> None:
    """Refuse (Conflict) when ``version`` may not move into ``stage`` under an enforced policy,
    naming every unmet criterion with what is missing."""
    missing = blocking(version, stage, change)
    if missing:
        raise Conflict(
            f"{version.path} cannot become {Stage(stage).label.lower()}: the stage criteria "
            f"are not met: {'; '.join(j.text for j in missing)}",
            field="stage",
            code=CRITERIA_UNMET,
        )
