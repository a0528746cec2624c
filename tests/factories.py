"""The one home of test data helpers: factory_boy factories for tenants and users, and plain
functions that make artifacts, versions and changes through the real services.

Conftests turn these into fixtures (and re-export them, so ``from tests.reviews.conftest import
publish`` keeps working); a test module that needs one imports it from here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from itertools import count
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import Tenant, User
from registry import services as registry
from registry.choices import ArtifactClass as ArtifactClassSlug
from registry.models import Artifact, ArtifactClass, Version
from reviews import services as reviews
from reviews.choices import ChangeStatus, CheckKind, CheckStatus, RolloutStrategy
from reviews.models import ChangeRequest, CheckRun
from reviews.waivers import services as waivers
from reviews.waivers.models import Waiver
from rollouts.choices import RolloutState
from rollouts.models import Rollout


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: o.slug.title())


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")

    @factory.post_generation
    def password(obj: User, create: bool, extracted: Any, **kwargs: Any) -> None:
        obj.set_password(extracted or "pw")
        if create:
            obj.save(update_fields=["password"])


# --- registry and reviews: artifacts, versions, and changes taken through the real services ------

#: Version metadata the promotion gates want on a prompt (a pinned model).
PINS = {"pinned_models": ["gpt-4o-2024-08-06"]}

#: Evaluation evidence that passes the built-in checks.
EVIDENCE_METRICS = {"accuracy": 0.91, "safety": 0.97, "latency_p95_ms": 420}


def make_artifact(
    tenant: Tenant,
    cls: str = ArtifactClassSlug.PROMPT,
    slug: str = "qualify-lead",
    owner: User | None = None,
    *,
    title: str | None = None,
) -> Artifact:
    """An artifact of a built-in class, titled after its slug unless ``title`` is given."""
    return registry.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug=cls),
        tenant=tenant,
        slug=slug,
        title=slug.replace("-", " ").title() if title is None else title,
        actor=None,
        owner=owner,
    )


def publish(
    artifact: Artifact,
    text: str | None = None,
    impact: str = "minor",
    reason: str = "test change",
    *,
    data: Any = None,
    **kw: Any,
) -> Version:
    """Publish text (or JSON ``data``) as a new version; ``kw`` goes to ``version_publish``
    (metadata, version, input_variables, dependencies)."""
    version, _ = registry.version_publish(
        artifact=artifact,
        content=registry.Content(text=text, data=data),
        impact=impact,
        reason=reason,
        actor=None,
        **kw,
    )
    return version


def run_pending_checks(change: ChangeRequest) -> None:
    """What the check worker does: run every pending check of the change."""
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)


def approved_change(
    people: dict[str, Any],
    *versions: Version,
    tenant: Tenant | None = None,
    title: str = "Tune the prompt",
    rollback_plan: str = "Roll back to the previous version.",
    test_run_ids: Sequence[str] = ("ci-123",),
    author: str = "author",
    approvers: Sequence[str] = ("reviewer", "admin"),
    **create: Any,
) -> ChangeRequest:
    """Open a change proposing ``versions``, attach passing evidence, submit it, run its checks
    and sign it off: ``people[author]`` opens it, each of ``people[approvers]`` approves."""
    change = reviews.change_create(
        tenant=tenant or versions[0].artifact.tenant,
        actor=people[author],
        title=title,
        rollback_plan=rollback_plan,
        proposed=list(versions),
        **create,
    )
    for version in versions:
        reviews.evidence_attach(
            change=change,
            actor=None,
            version=version,
            metrics=EVIDENCE_METRICS,
            seed="42",
            test_run_ids=list(test_run_ids),
        )
    change = reviews.change_submit(change=change, actor=people[author])
    run_pending_checks(change)
    for who in approvers:
        reviews.approval_decide(change=change, actor=people[who], decision="approve")
    change.refresh_from_db()
    return change


def promoted_change(
    people: dict[str, Any], *versions: Version, promoter: str = "admin", **kw: Any
) -> ChangeRequest:
    """An approved change (see ``approved_change``) that ``people[promoter]`` promotes."""
    change = reviews.change_promote(
        change=approved_change(people, *versions, **kw), actor=people[promoter]
    )
    assert change.status == ChangeStatus.PROMOTED
    return change


def submitted_change(
    people: dict[str, Any],
    *versions: Version,
    title: str = "Tune the prompt",
    rollback_plan: str = "Roll back.",
    author: str = "author",
) -> ChangeRequest:
    """Open a change proposing ``versions`` without evidence, submit it and run its checks
    (so the offline evaluation fails): ``people[author]`` opens it."""
    change = reviews.change_create(
        tenant=versions[0].artifact.tenant,
        actor=people[author],
        title=title,
        rollback_plan=rollback_plan,
        proposed=list(versions),
    )
    change = reviews.change_submit(change=change, actor=people[author])
    run_pending_checks(change)
    return change


# --- rows for pages that only read: how they got there does not matter --------------------------

#: Numbers for changes and rollouts made as rows, far above what the numbering service gives.
_row_numbers = count(50_000)


def change_row(tenant: Tenant, author: User, **fields: Any) -> ChangeRequest:
    """A change request as a row (in review, waiting for reviewer and administrator unless
    ``fields`` say otherwise), for pages and selectors that only read."""
    fields.setdefault("status", ChangeStatus.IN_REVIEW)
    fields.setdefault("requirements", ["reviewer", "administrator"])
    return ChangeRequest.objects.create(
        tenant=tenant,
        year=2026,
        number=next(_row_numbers),
        change_type="prompt",
        title="A change",
        rollback_plan="Roll back.",
        author=author,
        **fields,
    )


def rollout_row(tenant: Tenant, author: User, **fields: Any) -> Rollout:
    """A rollout as a row, of a promoted change made as a row: by default a tenant rollout
    progressing at its first of three waves, started a day ago."""
    change = change_row(tenant, author, status=ChangeStatus.PROMOTED, promoted_at=timezone.now())
    fields.setdefault("strategy", RolloutStrategy.TENANT)
    fields.setdefault("state", RolloutState.PROGRESSING)
    fields.setdefault("steps", [1, 2, 3])
    fields.setdefault("step", 1)
    fields.setdefault("started_at", timezone.now() - timedelta(days=1))
    return Rollout.objects.create(
        tenant=tenant, change=change, number=next(_row_numbers), salt=uuid.uuid4().hex, **fields
    )


def grant_waiver(
    tenant: Tenant, actor: User, owner: User, *, expires_in: timedelta, **kw: Any
) -> Waiver:
    """A waiver granted through the service, expiring ``expires_in`` from now; ``kw`` gives its
    scope (``change=`` or ``artifacts=``) and may replace the defaults (the offline evaluation,
    terms "j" and "m")."""
    kw.setdefault("check_kind", CheckKind.OFFLINE_EVALUATION)
    kw.setdefault("justification", "j")
    kw.setdefault("mitigation", "m")
    return waivers.waiver_grant(
        tenant=tenant, actor=actor, owner=owner, expires_at=timezone.now() + expires_in, **kw
    )
