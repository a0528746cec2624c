"""Each criterion of the default table, enforced: a version that meets everything is promoted
(and its review moves it through Evaluated and Approved on the way); with one thing taken away,
the promotion (or, where the change cannot even be approved, the move into Approved) is refused
naming that criterion, and nothing moves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import User
from governance.kernel.errors import Conflict
from registry.choices import Stage
from registry.hooks import checklist_for
from registry.selectors import stage_of
from reviews import lifecycle
from reviews import services as reviews
from reviews.choices import ChangeStatus
from reviews.lifecycle import catalog
from reviews.models import Activation
from tests.reviews import lifecycle_world


@dataclass(frozen=True)
class Case:
    #: Every criterion that is unmet when the case's one thing is taken away: itself, and
    #: what cannot be there without it (a report without metrics cannot be stored at all).
    unmet: frozenset[str]
    #: False where the change is not approved, so promotion refuses before the criteria;
    #: the move into Approved is what is refused then.
    promotion: bool = True


def alone(key: str) -> Case:
    return Case(frozenset({key}))


CASES: dict[str, Case] = {
    "inventory": alone("inventory"),
    "dataset_lineage": alone("dataset_lineage"),
    "classification": alone("classification"),
    "evaluation_plan": alone("evaluation_plan"),
    "risk_note": alone("risk_note"),
    # No report at all (a report cannot be stored without metrics): the other report
    # criteria go too; the offline evaluation it fails is waived.
    "baseline_metrics": Case(
        frozenset(
            {
                "baseline_metrics",
                "baseline_tests",
                "reproducibility",
                "bias_checks",
                "evaluation_report",
            }
        )
    ),
    "policy_conformance": alone("policy_conformance"),  # failed, and waived for the gates
    "baseline_tests": alone("baseline_tests"),
    "reproducibility": alone("reproducibility"),
    # The complete report's bias summary is the bias check.
    "bias_checks": Case(frozenset({"bias_checks", "evaluation_report"})),
    "evaluation_report": alone("evaluation_report"),
    "change_gates": alone("change_gates"),  # its waiver revoked after approval
    "action_eligible_signoff": alone("action_eligible_signoff"),
    "governance_review": Case(frozenset({"governance_review"}), promotion=False),
    "rollout_plan": alone("rollout_plan"),
    "rollback_point": alone("rollback_point"),
    # Without a live approval the change is not approved, nor authorised by its owner.
    "signed_approval": Case(
        frozenset({"signed_approval", "governance_review", "owner_authorisation"}),
        promotion=False,
    ),
    "deployment_checklist": alone("deployment_checklist"),
    "owner_authorisation": alone("owner_authorisation"),
}


def test_every_required_criterion_of_the_default_table_has_a_case() -> None:
    required = [
        key
        for stage in lifecycle.engine.stages_to_enter(Stage.ACTIVE)
        for key in lifecycle.DEFAULT_CRITERIA["*"][stage]
    ]
    assert sorted(CASES) == sorted(required)


def test_a_version_meeting_every_criterion_moves_through_each_stage(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme)
    version = change.items.get().proposed
    assert change.status == ChangeStatus.APPROVED
    assert lifecycle.unmet(version, Stage.ACTIVE, change) == []
    assert stage_of(version) == Stage.APPROVED  # moved by the review, criteria met
    reviews.change_promote(change=change, actor=people["admin"])
    assert stage_of(version) == Stage.ACTIVE
    version.artifact.refresh_from_db()
    assert version.artifact.active_version_id == version.pk


@pytest.mark.parametrize("missing", sorted(CASES))
def test_a_move_is_refused_naming_the_one_missing_criterion(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any, missing: str
) -> None:
    case = CASES[missing]
    change = lifecycle_world.build(people, acme, missing)
    version = change.items.get().proposed
    judged = lifecycle.unmet(version, Stage.ACTIVE, change)
    assert {j.criterion.key for j in judged} == case.unmet
    criterion = catalog.criterion(missing)
    assert criterion is not None
    verdict = next(j.verdict for j in judged if j.criterion.key == missing)

    def move() -> None:
        if case.promotion:
            reviews.change_promote(change=change, actor=people["admin"])
        else:
            lifecycle.require(version, Stage.APPROVED, change)

    with pytest.raises(Conflict) as refused:
        move()
    assert refused.value.code == lifecycle.CRITERIA_UNMET
    assert f"{criterion.label} ({verdict.detail})" in refused.value.message
    assert version.path in refused.value.message
    assert not Activation.objects.filter(artifact=version.artifact).exists()
    assert stage_of(version) != Stage.ACTIVE
    if not case.promotion:  # the review itself did not move it into Approved either
        assert stage_of(version) != Stage.APPROVED


def test_a_reproducibility_mismatch_refuses_evaluated_naming_the_metric(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme, "baseline_metrics")  # no reports yet
    version = change.items.get().proposed
    for accuracy in (0.91, 0.85):
        reviews.evidence_attach(
            change=change,
            actor=None,
            version=version,
            metrics={**lifecycle_world.METRICS, "accuracy": accuracy},
            bias=lifecycle_world.BIAS,
            seed="42",
            rng="numpy-pcg64",
            test_run_ids=["ci-1"],
        )
    with pytest.raises(Conflict) as refused:
        lifecycle.require(version, Stage.EVALUATED, change)
    assert "Reproducibility confirmed" in refused.value.message
    assert "accuracy: 0.85 vs 0.91" in refused.value.message
    assert "tolerance 0.01" in refused.value.message
    change.refresh_from_db()
    lifecycle_world.run_pending_checks(change)  # every check passes: the review would move it
    assert stage_of(version) == Stage.DRAFT


def test_advisory_refuses_nothing_that_enforcement_refuses(
    people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme, "risk_note")
    version = change.items.get().proposed
    assert [j.criterion.key for j in lifecycle.unmet(version, Stage.ACTIVE, change)] == [
        "risk_note"
    ]
    assert stage_of(version) == Stage.APPROVED  # the review moved it all the same
    sections = checklist_for(version).sections
    assert [(s.role, s.stage) for s in sections] == [
        ("earlier", "earlier"),  # what Draft asks and is missing is said first
        ("current", Stage.APPROVED),
        ("next", Stage.ACTIVE),
    ]
    assert [(r.key, r.met) for r in sections[0].rows] == [("risk_note", False)]
    reviews.change_promote(change=change, actor=people["admin"])
    assert stage_of(version) == Stage.ACTIVE


def test_active_criteria_are_watched_never_required(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    User.objects.filter(pk=people["admin"].pk).update(email="")  # the owner cannot be alerted
    change = lifecycle_world.build(people, acme)
    version = change.items.get().proposed
    watched = {
        j.criterion.key: j.verdict
        for j in lifecycle.engine.judge(lifecycle.subject_for(version, change), Stage.ACTIVE)
    }
    assert watched["alert_routing"].met is False
    assert "has no email address" in watched["alert_routing"].detail
    # rollouts answers monitoring (RolloutsConfig.ready): no telemetry for this version yet
    assert watched["monitoring"].met is False
    assert watched["monitoring"].detail.startswith(f"No telemetry for {version.path} in the last")
    reviews.change_promote(change=change, actor=people["admin"])
    assert stage_of(version) == Stage.ACTIVE
