"""The stage criteria's engine: the rule, enforcement in promotion and in review's stage moves,
advisory mode, the catalog, and the version page's checklist."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from governance.kernel.errors import Conflict
from registry.choices import Stage
from registry.hooks import checklist_for
from registry.models import Version
from registry.selectors import stage_of
from reviews import lifecycle
from reviews import services as reviews
from reviews.choices import ChangeStatus
from reviews.lifecycle import catalog
from reviews.models import Activation
from tests.factories import approved_change


def test_an_enforced_promotion_names_every_unmet_criterion_and_writes_nothing(
    lifecycle_enforced: None, people: dict[str, Any], prompt_v1: Version
) -> None:
    change = approved_change(people, prompt_v1)
    with pytest.raises(Conflict) as refused:
        reviews.change_promote(change=change, actor=people["admin"])
    message = refused.value.message
    assert refused.value.code == lifecycle.CRITERIA_UNMET
    assert prompt_v1.path in message
    for label in (
        "Risk note",
        "Evaluation plan",
        "Deterministic or probabilistic",
        "Deployment checklist",
    ):
        assert label in message
    assert "metadata risk_note" in message  # how to add it, not only that it is missing
    change.refresh_from_db()
    assert change.status == ChangeStatus.APPROVED
    assert not Activation.objects.filter(change=change).exists()
    assert stage_of(prompt_v1) == Stage.DRAFT  # the review's stage moves were held back too


def test_advisory_criteria_refuse_nothing(people: dict[str, Any], prompt_v1: Version) -> None:
    change = approved_change(people, prompt_v1)
    assert stage_of(prompt_v1) == Stage.APPROVED
    assert lifecycle.unmet(prompt_v1, Stage.ACTIVE, change)  # missing, and said so
    lifecycle.require(prompt_v1, Stage.ACTIVE, change)  # but nothing is refused
    assert reviews.change_promote(change=change, actor=people["admin"]).status == "promoted"


def test_the_rule_asks_earlier_stages_and_never_actives_watched_ones() -> None:
    assert lifecycle.engine.stages_to_enter(Stage.DRAFT) == [Stage.DRAFT]
    assert lifecycle.engine.stages_to_enter(Stage.ACTIVE) == [
        Stage.DRAFT,
        Stage.EVALUATED,
        Stage.APPROVED,
    ]


@pytest.fixture
def restore_catalog() -> Iterator[None]:
    before = {key: catalog.criterion(key) for key in catalog.known_keys()}
    yield
    for found in before.values():
        assert found is not None
        catalog.register(found)


def test_an_upper_floor_registers_over_the_monitoring_placeholder(
    restore_catalog: None, people: dict[str, Any], prompt_v1: Version
) -> None:
    placeholder = lifecycle.subject_for(prompt_v1)
    judged = {j.criterion.key: j for j in lifecycle.engine.judge(placeholder, Stage.ACTIVE)}
    # rollouts registered its own over reviews' placeholder at start-up (RolloutsConfig.ready)
    assert judged["monitoring"].verdict.met is False
    assert judged["monitoring"].verdict.detail.startswith("No telemetry for ")
    lifecycle.register(
        lifecycle.Criterion(
            "monitoring",
            Stage.ACTIVE,
            "Monitoring",
            "Telemetry arrives.",
            lambda s: lifecycle.Verdict(True, f"telemetry for {s.version.version}"),
        )
    )
    judged = {j.criterion.key: j for j in lifecycle.engine.judge(placeholder, Stage.ACTIVE)}
    assert judged["monitoring"].verdict.detail == "telemetry for 1.0.0"


def test_the_version_page_shows_its_checklist_in_words(
    client: Any, people: dict[str, Any], prompt_v1: Version
) -> None:
    client.force_login(people["author"])
    body = client.get(prompt_v1.get_absolute_url()).content.decode()
    assert 'id="checklist"' in body
    assert "Now: Draft" in body
    assert "Next: Evaluated" in body
    assert 'data-criterion="risk_note" data-met="no"' in body
    assert "✗ missing" in body  # a mark in text, not only a colour
    rows = {r.key: r for s in checklist_for(prompt_v1).sections for r in s.rows}
    assert rows["inventory"].met is False  # the fixture's artifact has no summary
