"""``seed_demo`` under the product's default, the stage criteria enforced (issue 17): every
promotion meets its criteria, and the demo leaves a version at each stage with its checklist."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils.html import escape

from accounts.models import User
from governance.demo.lifecycle import DATASET, MODEL, stage_versions
from registry.choices import ArtifactClass, Stage
from registry.models import Artifact, Version, VersionDependency
from registry.selectors import stage_of
from reviews import lifecycle
from reviews.lifecycle.engine import judge
from tests.scoped_db import kept_for_the_scope

pytestmark = pytest.mark.django_db


def seed_enforced() -> str:
    """seed_demo as ``make run`` runs it: the criteria refuse any promotion that misses one."""
    out = io.StringIO()
    with override_settings(LIFECYCLE_ENFORCED_DEFAULT=True):
        call_command("seed_demo", stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    with kept_for_the_scope(django_db_blocker, seed_enforced) as printed:
        yield printed


def demo_version(number: str) -> Version:
    return Version.objects.select_related("artifact__owner").get(
        artifact__tenant__slug="acme", artifact__slug=MODEL, version=number
    )


def keys(judged: list[lifecycle.Judged]) -> list[str]:
    return [j.criterion.key for j in judged]


@pytest.mark.usefixtures("seeded")
def test_the_demo_has_a_version_at_each_stage() -> None:
    stages = {number: stage_of(demo_version(number)) for number in ("1.0.0", "1.1.0", "1.2.0")}
    assert stages == {"1.0.0": Stage.ACTIVE, "1.1.0": Stage.APPROVED, "1.2.0": Stage.EVALUATED}
    assert stage_of(demo_version("1.3.0")) == Stage.DRAFT
    active = demo_version("1.0.0")
    assert active.artifact.active_version_id == active.pk
    # Each stage's version meets every criterion up to its stage, and no further.
    assert keys(lifecycle.unmet(demo_version("1.1.0"), Stage.APPROVED)) == []
    assert keys(lifecycle.unmet(demo_version("1.2.0"), Stage.EVALUATED)) == []
    assert keys(lifecycle.unmet(demo_version("1.2.0"), Stage.APPROVED)) == [
        "action_eligible_signoff",
        "governance_review",
        "signed_approval",
        "deployment_checklist",
        "owner_authorisation",
    ]


@pytest.mark.usefixtures("seeded")
def test_every_active_demo_version_meets_its_criteria() -> None:
    active = Version.objects.filter(artifact__active_version__isnull=False).filter(
        pk__in=Artifact.objects.values("active_version")
    )
    assert active.count() >= 5
    for version in active:
        missing = lifecycle.unmet(version, Stage.APPROVED)
        assert missing == [], lifecycle.describe(version, missing)


@pytest.mark.usefixtures("seeded")
def test_the_watched_version_meets_actives_criteria_too() -> None:
    (watched,) = [v for stage, v in stage_versions() if stage == "watched"]
    assert watched.artifact.active_version_id == watched.pk
    verdicts = {
        j.criterion.key: j.verdict for j in judge(lifecycle.subject_for(watched), Stage.ACTIVE)
    }
    assert set(verdicts) == {"monitoring", "post_deploy_verification", "alert_routing"}
    assert all(v.met for v in verdicts.values()), verdicts


@pytest.mark.usefixtures("seeded")
def test_the_draft_version_lists_what_to_add_on_its_page() -> None:
    draft = demo_version("1.3.0")
    assert keys(lifecycle.unmet(draft, Stage.DRAFT)) == ["evaluation_plan", "risk_note"]
    missing = lifecycle.unmet(draft, Stage.EVALUATED)
    assert keys(missing) == ["evaluation_plan", "risk_note", "reproducibility", "evaluation_report"]
    report = next(j for j in missing if j.criterion.key == "evaluation_report")
    assert "lacks calibration, stability, cost, throughput" in report.verdict.detail

    client = Client()
    client.force_login(User.objects.get(username="acme-admin"))
    page = client.get(draft.get_absolute_url()).content.decode()
    rows = dict(re.findall(r'data-criterion="([a-z_]+)" data-met="(yes|no)"', page))
    assert {k for k, met in rows.items() if met == "no"} >= {
        "evaluation_plan",
        "risk_note",
        "reproducibility",
        "evaluation_report",
    }
    assert rows["dataset_lineage"] == "yes"
    plan = next(j for j in missing if j.criterion.key == "evaluation_plan").verdict.detail
    assert plan.startswith("no evaluation plan")
    assert "metadata evaluation_plan" in plan
    assert escape(plan) in page


@pytest.mark.usefixtures("seeded")
def test_the_demo_model_pins_its_datasets_is_action_eligible_and_signed_off_by_its_deputy() -> None:
    for number, dataset in (("1.0.0", "1.0.0"), ("1.1.0", "1.1.0"), ("1.3.0", "1.1.0")):
        (dep,) = VersionDependency.objects.filter(version=demo_version(number)).select_related(
            "upstream__artifact__artifact_class"
        )
        assert dep.upstream.artifact.slug == DATASET
        assert dep.upstream.artifact.artifact_class.slug == ArtifactClass.DATASET
        assert dep.upstream.version == dataset
        content = dep.upstream.content_json
        assert isinstance(content, dict)
        assert set(content) == {"uri", "sha256", "rows", "description"}
    model = demo_version("1.0.0").artifact
    assert model.action_eligible
    assert model.deputy is not None
    assert model.deputy.username == "acme-security"
    assert model.owner is not None
    assert model.owner.username == "acme-admin"
    # acme's approval policy: a reviewer, the owner and the deputy sign off its changes.
    approved = lifecycle.subject_for(demo_version("1.1.0")).change
    assert approved is not None
    assert approved.requirements == ["reviewer", "owner", "deputy"]
    assert sorted(
        approved.approvals.filter(voided_at__isnull=True).values_list(
            "requirement", "approver__username"
        )
    ) == [("deputy", "acme-security"), ("owner", "acme-admin"), ("reviewer", "acme-reviewer")]


def test_seed_demo_prints_where_to_look_and_a_second_run_adds_nothing(seeded: str) -> None:
    for stage, number in (
        ("active", "1.0.0"),
        ("approved", "1.1.0"),
        ("evaluated", "1.2.0"),
        ("draft", "1.3.0"),
    ):
        assert f"  {stage:<10} /registry/model/acme/{MODEL}/v/{number}/ (CR-" in seeded
    assert "  watched    /registry/prompt/platform/lead-qualification/v/1.0.0/ (CR-" in seeded
    counted = [
        m for m in apps.get_models() if m._meta.app_label in ("accounts", "registry", "reviews")
    ]
    before = {m._meta.label: m._default_manager.count() for m in counted}
    seed_enforced()
    assert {m._meta.label: m._default_manager.count() for m in counted} == before
