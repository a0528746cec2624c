"""Evidence that arrives after the review: a deployment checklist completed once the change is
approved, or evaluation reports attached to a change whose checks do not read them, moves the
version into the stage it was held back from (enforced stage criteria)."""

from __future__ import annotations

from typing import Any

import pytest

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import services as registry
from registry.choices import Stage
from registry.models import ArtifactClass, Version
from registry.selectors import stage_of
from reviews import lifecycle
from reviews import services as reviews
from reviews.choices import ChangeStatus
from reviews.models import ChangeRequest
from tests.factories import publish, run_pending_checks
from tests.reviews import lifecycle_world

pytestmark = pytest.mark.django_db


def test_a_checklist_completed_after_approval_moves_the_version_to_approved(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme, "deployment_checklist")
    version = change.items.get().proposed
    assert change.status == ChangeStatus.APPROVED
    assert stage_of(version) == Stage.EVALUATED  # the approval's move was held back
    lifecycle_world.complete_checklist(change, people["author"])
    assert stage_of(version) == Stage.APPROVED
    moved = Event.objects.filter(kind=EventKind.VERSION_STAGE_CHANGED).order_by("-seq").first()
    assert moved is not None
    assert moved.payload["to"] == Stage.APPROVED
    assert lifecycle.unmet(version, Stage.ACTIVE, change) == []
    reviews.change_promote(change=change, actor=people["admin"])
    assert stage_of(version) == Stage.ACTIVE


def test_a_checklist_completed_while_another_criterion_is_missing_leaves_the_stage(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme, "deployment_checklist")
    version = change.items.get().proposed
    ChangeRequest.objects.filter(pk=change.pk).update(rollout_strategy="")  # no rollout plan
    change.refresh_from_db()
    lifecycle_world.complete_checklist(change, people["author"])
    assert stage_of(Version.objects.get(pk=version.pk)) == Stage.EVALUATED


def test_reports_attached_later_move_a_version_whose_checks_do_not_read_them(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    artifact = registry.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="scorecard"),
        tenant=acme,
        slug="lead-score",
        title="Lead score",
        summary="Scores inbound leads.",
        actor=None,
        owner=people["admin"],
    )
    version = publish(
        artifact,
        data={"weights": {"size": 0.5}},
        impact="major",
        metadata={
            **{k: v for k, v in lifecycle_world.METADATA.items() if k != "pinned_models"},
            "no_datasets": "weights set by hand",
        },
    )
    change = reviews.change_create(
        tenant=acme,
        actor=people["author"],
        title="Score leads",
        rollback_plan="Switch it off.",
        proposed=[version],
    )
    change = reviews.change_submit(change=change, actor=people["author"])
    run_pending_checks(change)
    assert stage_of(version) == Stage.DRAFT  # no evaluation report yet
    lifecycle_world.attach_reports(change, version)
    assert stage_of(Version.objects.get(pk=version.pk)) == Stage.EVALUATED


def test_a_missing_summary_points_at_the_describe_form_and_describing_it_meets_inventory(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any
) -> None:
    change = lifecycle_world.build(people, acme, "inventory")
    version = change.items.get().proposed
    (judged,) = lifecycle.unmet(version, Stage.ACTIVE, change)
    assert judged.criterion.key == "inventory"
    assert judged.verdict.url == f"{version.artifact.get_absolute_url()}#describe"
    assert "registry describe --summary" in judged.verdict.detail
    registry.artifact_describe(
        artifact=version.artifact,
        title=version.artifact.title,
        summary="Qualifies inbound leads for sales.",
        actor=people["admin"],  # the owner
    )
    assert lifecycle.unmet(Version.objects.get(pk=version.pk), Stage.ACTIVE, change) == []
    reviews.change_promote(change=change, actor=people["admin"])
    assert stage_of(Version.objects.get(pk=version.pk)) == Stage.ACTIVE


def _promotion(html: str) -> str:
    return html.split('id="promotion"', 1)[1].split("</section>", 1)[0]


def test_the_change_page_names_unmet_criteria_as_blockers_when_enforced(
    lifecycle_enforced: None, people: dict[str, Any], acme: Any, client: Any
) -> None:
    change = lifecycle_world.build(people, acme, "risk_note")
    version = change.items.get().proposed
    client.force_login(people["admin"])
    html = _promotion(client.get(change.get_absolute_url()).content.decode())
    blockers = html.split('id="blockers"', 1)[1].split("</ul>", 1)[0]
    assert 'data-criterion="risk_note"' in blockers
    assert f"{version.path}: stage criterion <strong>Risk note</strong> not met" in blockers
    publish_url = "/registry/prompt/acme/qualify-lead/publish/"
    assert f'To pass: <a href="{publish_url}">' in blockers
    assert blockers.count("criterion-unmet") == 1  # nothing else is missing
    assert "Promote</button>" in html
    assert "disabled>Promote</button>" in html
    assert 'id="criteria-advisory"' not in html


def test_the_change_page_says_unmet_criteria_as_notes_when_advisory(
    people: dict[str, Any], acme: Any, client: Any
) -> None:
    change = lifecycle_world.build(people, acme, "risk_note")
    client.force_login(people["admin"])
    html = _promotion(client.get(change.get_absolute_url()).content.decode())
    assert 'id="blockers-none"' in html
    notes = html.split('id="criteria-advisory"', 1)[1].split("</ul>", 1)[0]
    assert 'data-criterion="risk_note"' in notes
    assert "disabled>Promote</button>" not in html
