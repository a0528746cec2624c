"""Rollout services: applications, slots, overrides, every transition, pointer history, rollback.

Promotion of a slot-bound artifact approves versions but leaves the default alone; a
rollout moves pointers step by step; success moves the default through the one reviews
service; rollback restores the exact previous pointers. Nothing that may not serve ever
becomes a default, an override or a target.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Tenant
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from governance.kernel.events.services import verify_database
from registry import services as registry
from registry.choices import Stage
from registry.models import Artifact, Version, VersionState
from reviews import services as reviews
from reviews.choices import ActivationKind, ChangeStatus, CheckStatus
from reviews.models import Activation, ChangeRequest, CheckRun
from rollouts import permissions, selectors, services
from rollouts.choices import CANARY_DEFAULT_STEPS, PointerKind, RolloutState
from rollouts.models import Override, PointerMove, Rollout, Slot
from tests.reviews.conftest import PINS, make_artifact, publish


def default_of(artifact: Artifact) -> Version | None:
    artifact.refresh_from_db()
    return artifact.active_version


def stage(version: Version) -> str:
    row = VersionState.objects.filter(version=version).first()
    return row.stage if row else Stage.DRAFT


def events(kind: str) -> list[Event]:
    return list(Event.objects.filter(kind=kind).order_by("seq"))


def overrides(slot: Slot) -> dict[str, Any]:
    return {o.tenant.slug: o.version_id for o in Override.objects.filter(slot=slot)}


# --- applications and slots -------------------------------------------------------------------


def test_application_create_records_event_and_checks_input(
    platform: Tenant, acme: Tenant, people: dict[str, Any]
) -> None:
    app = services.application_create(
        tenant=platform, slug="sales-agent", name="Sales agent", actor=people["admin"]
    )
    (event,) = events(EventKind.APPLICATION_CREATED)
    assert event.payload["application"] == "sales-agent"
    assert event.subject_id == str(app.pk)
    with pytest.raises(Conflict) as conflict:
        services.application_create(tenant=acme, slug="sales-agent", name="x", actor=None)
    assert conflict.value.field == "slug"
    with pytest.raises(DomainError) as exc:
        services.application_create(tenant=acme, slug="Bad Slug", name="x", actor=None)
    assert exc.value.field == "slug"
    with pytest.raises(DomainError) as exc:
        services.application_create(tenant=acme, slug="ok", name="  ", actor=None)
    assert exc.value.field == "name"
    with pytest.raises(Forbidden):
        services.application_create(
            tenant=platform, slug="other", name="x", actor=people["acme_admin"]
        )
    updated = services.application_update(
        application=app, description="Qualifies leads", actor=people["admin"]
    )
    assert updated.description == "Qualifies leads"
    (upd,) = events(EventKind.APPLICATION_UPDATED)
    assert upd.payload["changes"]["description"] == {"old": "", "new": "Qualifies leads"}


def test_slot_needs_an_active_version_and_an_artifact_of_the_tenant_or_platform(
    application: Any, acme: Tenant, platform: Tenant, people: dict[str, Any], prompt_v1: Version
) -> None:
    fresh = make_artifact(platform, "prompt", "no-active")
    publish(fresh, impact="major", text="Hi {{ customer }}.", metadata=PINS)
    with pytest.raises(Conflict) as conflict:
        services.slot_create(
            application=application, name="greet", artifact=fresh, actor=people["admin"]
        )
    assert conflict.value.field == "artifact"
    assert "no active version" in conflict.value.message
    private = make_artifact(acme, "prompt", "acme-only")
    with pytest.raises(DomainError) as exc:
        services.slot_create(
            application=application, name="greet", artifact=private, actor=people["admin"]
        )
    assert exc.value.field == "artifact"
    slot = services.slot_create(
        application=application,
        name="qualifyLead",
        artifact=prompt_v1.artifact,
        actor=people["admin"],
    )
    (event,) = events(EventKind.SLOT_CREATED)
    assert event.payload["default"]["path"] == prompt_v1.path
    with pytest.raises(Conflict) as conflict:
        services.slot_create(
            application=application,
            name="qualifyLead",
            artifact=prompt_v1.artifact,
            actor=people["admin"],
        )
    assert conflict.value.field == "name"
    with pytest.raises(DomainError) as exc:
        services.slot_create(
            application=application, name="1bad", artifact=prompt_v1.artifact, actor=None
        )
    assert exc.value.field == "name"
    for call, kwargs in (
        (services.slot_create, {"application": application, "name": "other",
                                "artifact": prompt_v1.artifact}),
        (services.slot_update, {"slot": slot, "description": "mine"}),
        (services.application_update, {"application": application, "name": "Mine"}),
    ):  # fmt: skip
        with pytest.raises(Forbidden):
            call(actor=people["acme_admin"], **kwargs)
    services.slot_update(slot=slot, description="Why v1", actor=people["admin"])
    slot.refresh_from_db()
    assert slot.description == "Why v1"


# --- promotion of a slot-bound artifact -------------------------------------------------------


def test_promoting_a_bound_artifact_approves_but_does_not_move_the_default(
    promoted_change: ChangeRequest, platform_prompt: Artifact, prompt_v1: Version,
    prompt_v2: Version,
) -> None:  # fmt: skip
    assert default_of(platform_prompt) == prompt_v1
    assert promoted_change.status == ChangeStatus.PROMOTED
    assert stage(prompt_v2) == Stage.APPROVED
    assert stage(prompt_v1) == Stage.ACTIVE
    assert not Activation.objects.filter(change=promoted_change).exists()
    event = events(EventKind.CHANGE_REQUEST_PROMOTED)[-1]
    assert event.payload["activated"] == []
    assert event.payload["awaiting_rollout"] == [prompt_v2.path]
    assert selectors.servable_refusal(prompt_v2) is None  # approved for production


# --- creation refusals --------------------------------------------------------------------------


def test_create_refuses_what_is_not_promoted_and_bad_input(
    promoted_change: ChangeRequest, people: dict[str, Any], platform_prompt: Artifact,
    slot: Slot,
) -> None:  # fmt: skip
    v3 = publish(platform_prompt, text="Qualify {{ customer }} briefly.", metadata=PINS)
    draft = reviews.change_create(
        tenant=platform_prompt.tenant, actor=people["author"], title="x", rollback_plan="y",
        proposed=[v3],
    )  # fmt: skip
    with pytest.raises(Conflict) as conflict:
        services.rollout_create(change=draft, actor=people["admin"])
    assert conflict.value.field == "change"
    assert "only a promoted change" in conflict.value.message
    admin = people["admin"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"strategy": "nope"}, "strategy"),
        ({"strategy": "canary", "steps": [10, 5, 100_000]}, "steps"),
        ({"strategy": "canary", "steps": [10, 500]}, "steps"),
        ({"strategy": "canary", "steps": [0, 100_000]}, "steps"),
        ({"strategy": "canary", "steps": ["1", 100_000]}, "steps"),
        ({"strategy": "canary", "target": "paper"}, "cohort"),
        ({"strategy": "canary", "target": "paper", "cohort": [""]}, "cohort"),
        ({"strategy": "canary", "target": "moon"}, "target"),
        ({"strategy": "canary", "cohort": ["u1"]}, "cohort"),
        ({"strategy": "tenant", "target": "paper"}, "target"),
        ({"strategy": "tenant"}, "steps"),
        ({"strategy": "tenant", "steps": [["acme"], ["acme"]]}, "steps"),
        ({"strategy": "tenant", "steps": [["nobody"]]}, "steps"),
        ({"strategy": "tenant", "steps": [[]]}, "steps"),
        ({"strategy": "flag", "flag_expires_at": timezone.now() + timedelta(days=3)}, "flag_key"),
        ({"strategy": "flag", "flag_key": "politer"}, "flag_expires_at"),
        (
            {
                "strategy": "flag",
                "flag_key": "politer",
                "flag_expires_at": timezone.now() + timedelta(days=365),
            },
            "flag_expires_at",
        ),
        (
            {
                "strategy": "flag",
                "flag_key": "politer",
                "flag_expires_at": timezone.now() - timedelta(days=1),
            },
            "flag_expires_at",
        ),
        (
            {
                "strategy": "flag",
                "flag_key": "9bad",
                "flag_expires_at": timezone.now() + timedelta(days=3),
            },
            "flag_key",
        ),
        ({"strategy": "canary", "flag_key": "x"}, "flag_key"),
        ({"strategy": "global", "steps": [1]}, "steps"),
    ]
    for kwargs, field in cases:
        with pytest.raises(DomainError) as exc:
            services.rollout_create(change=promoted_change, actor=admin, **kwargs)
        assert exc.value.field == field, (kwargs, exc.value)
    with pytest.raises(Forbidden):
        services.rollout_create(change=promoted_change, actor=people["acme_admin"])
    assert not Rollout.objects.exists()
    assert not events(EventKind.ROLLOUT_CREATED)


@pytest.mark.usefixtures("slot")
def test_a_global_rollout_of_a_major_version_is_refused_naming_the_allowed_strategies(
    platform_prompt: Artifact, promote: Callable[..., Any], people: dict[str, Any]
) -> None:
    major = publish(
        platform_prompt, impact="major", text="Qualify {{ customer }} v3.", metadata=PINS
    )
    change = promote(major)
    with pytest.raises(DomainError) as exc:
        services.rollout_create(change=change, actor=people["admin"], strategy="global")
    assert exc.value.field == "strategy"
    for allowed in ("tenant", "flag", "canary"):
        assert allowed in exc.value.message
    assert major.path in exc.value.message
    # the same change may go out by canary
    rollout = services.rollout_create(change=change, actor=people["admin"], strategy="canary")
    assert rollout.state == RolloutState.DRAFT


def test_one_unfinished_rollout_per_slot_and_numbers_are_sequential(
    canary_rollout: Rollout, promoted_change: ChangeRequest, people: dict[str, Any]
) -> None:
    assert canary_rollout.reference == "RO-1"
    with pytest.raises(Conflict) as conflict:
        services.rollout_create(change=promoted_change, actor=people["admin"])
    assert conflict.value.field == "change"
    assert "RO-1" in conflict.value.message
    services.rollout_abort(rollout=canary_rollout, actor=people["admin"], reason="not now")
    again = services.rollout_create(change=promoted_change, actor=people["admin"])
    assert again.number == 2
    assert again.salt != canary_rollout.salt


# --- canary: every transition ---------------------------------------------------------------


def test_canary_walks_its_steps_and_success_moves_the_default(
    canary_rollout: Rollout, people: dict[str, Any], slot: Slot, platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version, promoted_change: ChangeRequest,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = canary_rollout
    assert r.steps == CANARY_DEFAULT_STEPS
    assert len(r.salt) == 32
    assert r.revision == 1
    (target,) = selectors.targets_of(r)
    assert (target.slot, target.baseline, target.candidate) == (slot, prompt_v1, prompt_v2)
    r = services.rollout_start(rollout=r, actor=admin, revision=1, reason="go")
    assert (r.state, r.step, r.revision, r.weight) == (RolloutState.PROGRESSING, 1, 2, 1_000)
    started = events(EventKind.ROLLOUT_STARTED)[-1]
    assert (
        started.payload.items()
        >= {"rollout": "RO-1", "revision": 2, "step": 1, "weight": 1_000}.items()
    )
    move = PointerMove.objects.get(rollout=r)
    assert (move.kind, move.slot, move.weight, move.to_version) == (
        PointerKind.CANARY, slot, 1_000, prompt_v2
    )  # fmt: skip
    # a stale revision is a conflict and changes nothing
    with pytest.raises(Conflict) as conflict:
        services.rollout_advance(rollout=r, actor=admin, revision=1)
    assert conflict.value.field == "revision"
    assert "RO-1 changed meanwhile" in conflict.value.message
    r = services.rollout_pause(rollout=r, actor=admin, revision=2, reason="watch")
    with pytest.raises(Conflict) as conflict:
        services.rollout_advance(rollout=r, actor=admin)
    assert "resume it first" in conflict.value.message
    assert conflict.value.field == "state"
    with pytest.raises(Conflict):
        services.rollout_pause(rollout=r, actor=admin, reason="again")
    r = services.rollout_resume(rollout=r, actor=admin, reason="fine")
    assert (r.state, r.step, r.weight) == (RolloutState.PROGRESSING, 1, 1_000)
    for weight in CANARY_DEFAULT_STEPS[1:]:
        r = services.rollout_advance(rollout=r, actor=admin, revision=r.revision)
        assert r.weight == weight
        assert default_of(platform_prompt) == prompt_v1
    r = services.rollout_advance(rollout=r, actor=admin, reason="all good")
    assert r.state == RolloutState.SUCCEEDED
    assert r.finished_by == admin
    assert default_of(platform_prompt) == prompt_v2
    assert stage(prompt_v2) == Stage.ACTIVE
    assert stage(prompt_v1) == Stage.APPROVED
    activation = Activation.objects.get(change=promoted_change)
    assert (activation.kind, activation.version, activation.previous) == (
        ActivationKind.PROMOTION, prompt_v2, prompt_v1
    )  # fmt: skip
    weights = list(
        PointerMove.objects.filter(rollout=r, kind=PointerKind.CANARY)
        .order_by("id")
        .values_list("weight", flat=True)
    )
    assert weights == CANARY_DEFAULT_STEPS
    default_move = PointerMove.objects.get(rollout=r, kind=PointerKind.DEFAULT)
    assert (default_move.from_version, default_move.to_version, default_move.slot) == (
        prompt_v1, prompt_v2, None
    )  # fmt: skip
    assert [e.payload["revision"] for e in events(EventKind.ROLLOUT_ADVANCED)] == [5, 6, 7, 8]
    (done,) = events(EventKind.ROLLOUT_SUCCEEDED)
    assert done.payload["revision"] == 9
    assert done.payload["step"] == 5
    assert len(events(EventKind.POINTER_MOVED)) == PointerMove.objects.count()
    # the slot's history: every move of the slot and of its artifact's default
    history = list(selectors.slot_history(slot))
    assert history[0] == default_move
    assert len(history) == 6
    # finished: nothing more
    for call in (services.rollout_advance, services.rollout_start):
        with pytest.raises(Conflict):
            call(rollout=r, actor=admin)
    with pytest.raises(Conflict):
        services.rollout_abort(rollout=r, actor=admin, reason="late")
    assert verify_database().ok


def test_rollback_from_progressing_ends_the_rule_and_keeps_the_default(
    canary_rollout: Rollout, people: dict[str, Any], slot: Slot, platform_prompt: Artifact,
    prompt_v1: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    r = services.rollout_advance(rollout=r, actor=admin)
    r = services.rollout_rollback(rollout=r, actor=admin, reason="errors up")
    assert r.state == RolloutState.ROLLED_BACK
    assert r.finish_reason == "errors up"
    assert default_of(platform_prompt) == prompt_v1
    last = PointerMove.objects.filter(rollout=r).order_by("-id").first()
    assert last is not None
    assert (last.weight, last.to_version) == (0, prompt_v1)
    assert not selectors.active_rollouts_for([slot])
    with pytest.raises(Conflict):
        services.rollout_rollback(rollout=r, actor=admin, reason="again")
    with pytest.raises(Conflict):
        services.rollout_resume(rollout=r, actor=admin, reason="no")


def test_rollback_after_success_restores_the_previous_default_without_approvals(
    canary_rollout: Rollout, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version, promoted_change: ChangeRequest,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    while r.state == RolloutState.PROGRESSING:
        r = services.rollout_advance(rollout=r, actor=admin)
    assert default_of(platform_prompt) == prompt_v2
    r = services.rollout_rollback(rollout=r, actor=admin, reason="complaints")
    assert default_of(platform_prompt) == prompt_v1
    assert stage(prompt_v1) == Stage.ACTIVE
    assert stage(prompt_v2) == Stage.APPROVED
    back = Activation.objects.filter(kind=ActivationKind.ROLLBACK).get()
    assert (back.version, back.previous, back.change) == (prompt_v1, prompt_v2, promoted_change)
    moves = list(PointerMove.objects.filter(rollout=r, kind=PointerKind.DEFAULT).order_by("id"))
    assert [(m.from_version, m.to_version) for m in moves] == [
        (prompt_v1, prompt_v2), (prompt_v2, prompt_v1)
    ]  # fmt: skip
    (event,) = events(EventKind.ROLLOUT_ROLLED_BACK)
    assert event.payload["restored"] == [
        {"default": platform_prompt.path, "to": {"path": prompt_v1.path,
                                               "sha256": prompt_v1.manifest_sha256}}
    ]  # fmt: skip


def test_only_administrators_operate_rollouts(
    canary_rollout: Rollout, people: dict[str, Any]
) -> None:
    for who in ("author", "reviewer", "acme_admin"):
        with pytest.raises(Forbidden):
            services.rollout_start(rollout=canary_rollout, actor=people[who])
        assert not permissions.rollout_actions(people[who], canary_rollout).start
    actions = permissions.rollout_actions(people["admin"], canary_rollout)
    assert actions.start
    assert actions.abort
    assert not actions.advance
    assert not actions.rollback
    canary_rollout.refresh_from_db()
    assert canary_rollout.state == RolloutState.DRAFT
    assert canary_rollout.revision == 1


def test_paper_canary_keeps_its_cohort(
    promoted_change: ChangeRequest, people: dict[str, Any], slot: Slot
) -> None:
    r = services.rollout_create(
        change=promoted_change, actor=people["admin"], target="paper",
        cohort=["alice", "bob", "alice"],
    )  # fmt: skip
    assert r.cohort == ["alice", "bob"]
    assert r.target == "paper"
    r = services.rollout_start(rollout=r, actor=people["admin"])
    assert PointerMove.objects.get(rollout=r).kind == PointerKind.COHORT


# --- global -----------------------------------------------------------------------------------


def test_global_moves_the_default_in_one_step(
    promoted_change: ChangeRequest, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version,
) -> None:  # fmt: skip
    r = services.rollout_create(change=promoted_change, actor=people["admin"], strategy="global")
    assert r.steps == []
    assert services.step_count(r) == 1
    r = services.rollout_start(rollout=r, actor=people["admin"], reason="minor wording")
    assert (r.state, r.step, r.revision) == (RolloutState.SUCCEEDED, 1, 2)
    assert default_of(platform_prompt) == prompt_v2
    kinds = [e.kind for e in Event.objects.filter(subject_id=str(r.pk)).order_by("seq")]
    assert kinds == [
        EventKind.ROLLOUT_CREATED, EventKind.ROLLOUT_MANIFEST_APPENDED,  # the draft's manifest
        EventKind.ROLLOUT_STARTED, EventKind.ROLLOUT_SUCCEEDED, EventKind.ROLLOUT_MANIFEST_APPENDED,
    ]  # fmt: skip
    r = services.rollout_rollback(rollout=r, actor=people["admin"], reason="oops")
    assert default_of(platform_prompt) == prompt_v1
    # every transition appends the manifest; the rollback's names its evidence
    manifest = r.manifests.order_by("-number").first()
    assert manifest is not None
    assert manifest.body["rollback_proof"]["evidence_present"]
    phases = {p["name"]: p["status"] for p in manifest.body["phases"]}
    assert phases["rollback-proof"] == "pass"
    assert phases["runtime-governance"] == "fail"


# --- tenant waves -----------------------------------------------------------------------------


def test_tenant_waves_set_overrides_success_clears_them_rollback_restores_exactly(
    promoted_change: ChangeRequest, people: dict[str, Any], slot: Slot, acme: Tenant,
    globex: Tenant, platform_prompt: Artifact, prompt_v1: Version, prompt_v2: Version,
    promote: Callable[..., Any], make_user: Any,
) -> None:  # fmt: skip
    admin = people["admin"]
    globex_admin = make_user("gadmin", globex=["member", "administrator"])
    # globex pins v1 by hand before the rollout: rollback must bring exactly that back
    services.override_set(
        slot=slot, tenant=globex, version=prompt_v1, reason="pinned", actor=globex_admin
    )
    r = services.rollout_create(
        change=promoted_change, actor=admin, strategy="tenant", steps=[["acme"], ["globex"]]
    )
    r = services.rollout_start(rollout=r, actor=admin)
    assert overrides(slot) == {"acme": prompt_v2.pk, "globex": prompt_v1.pk}
    # a tenant's override held by the rollout cannot be changed by hand meanwhile
    with pytest.raises(Conflict) as conflict:
        services.override_clear(slot=slot, tenant=acme, reason="x", actor=people["acme_admin"])
    assert "RO-1" in conflict.value.message
    r = services.rollout_advance(rollout=r, actor=admin)
    assert overrides(slot) == {"acme": prompt_v2.pk, "globex": prompt_v2.pk}
    assert default_of(platform_prompt) == prompt_v1
    r = services.rollout_advance(rollout=r, actor=admin)
    assert r.state == RolloutState.SUCCEEDED
    assert default_of(platform_prompt) == prompt_v2
    assert overrides(slot) == {}
    r = services.rollout_rollback(rollout=r, actor=admin, reason="bad")
    assert default_of(platform_prompt) == prompt_v1
    assert overrides(slot) == {"globex": prompt_v1.pk}
    assert Override.objects.get(slot=slot, tenant=globex).rollout is None


def test_tenant_rollback_midway_removes_the_waves_overrides(
    promoted_change: ChangeRequest, people: dict[str, Any], slot: Slot, globex: Tenant,
    platform_prompt: Artifact, prompt_v1: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_create(
        change=promoted_change, actor=admin, strategy="tenant", steps=[["acme", "globex"]]
    )
    r = services.rollout_start(rollout=r, actor=admin)
    r = services.rollout_pause(rollout=r, actor=admin, reason="hold")
    assert len(overrides(slot)) == 2
    r = services.rollout_abort(rollout=r, actor=admin, reason="stop")
    assert r.state == RolloutState.ABORTED
    assert overrides(slot) == {}
    assert default_of(platform_prompt) == prompt_v1


def test_a_tenant_rollout_of_a_tenant_reaches_only_that_tenant(
    acme: Tenant, people: dict[str, Any], promote: Callable[..., Any], globex: Tenant
) -> None:
    prompt = make_artifact(acme, "prompt", "acme-prompt")
    v1 = publish(prompt, impact="major", text="Hello {{ customer }}.", metadata=PINS)
    promote(v1)
    app = services.application_create(tenant=acme, slug="acme-bot", name="Bot", actor=None)
    services.slot_create(application=app, name="greet", artifact=prompt, actor=None)
    v2 = publish(prompt, text="Hello {{ customer }}!", metadata=PINS)
    change = promote(v2)
    with pytest.raises(DomainError) as exc:
        services.rollout_create(
            change=change, actor=people["admin"], strategy="tenant", steps=[["globex"]]
        )
    assert exc.value.field == "steps"
    r = services.rollout_create(
        change=change, actor=people["admin"], strategy="tenant", steps=[["acme"]]
    )
    assert r.tenant == acme


# --- flags -------------------------------------------------------------------------------------


def test_flag_switches_and_an_expired_flag_cannot_be_switched_on(
    promoted_change: ChangeRequest, people: dict[str, Any], slot: Slot, platform_prompt: Artifact,
    prompt_v2: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_create(
        change=promoted_change, actor=admin, strategy="flag", flag_key="politer",
        flag_expires_at=timezone.now() + timedelta(days=10),
    )  # fmt: skip
    r = services.rollout_start(rollout=r, actor=admin)
    assert not r.flag_on
    assert not PointerMove.objects.filter(rollout=r).exists()
    r = services.rollout_flag_set(rollout=r, on=True, actor=admin, reason="try")
    assert r.flag_on
    move = PointerMove.objects.get(rollout=r)
    assert (move.kind, move.to_version) == (PointerKind.FLAG, prompt_v2)
    (event,) = events(EventKind.ROLLOUT_FLAG_SET)
    assert event.payload["on"] is True
    assert event.payload["flag_key"] == "politer"
    with pytest.raises(Conflict) as conflict:
        services.rollout_flag_set(rollout=r, on=True, actor=admin, reason="again")
    assert conflict.value.field == "on"
    r = services.rollout_flag_set(rollout=r, on=False, actor=admin, reason="off")
    Rollout.objects.filter(pk=r.pk).update(flag_expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(Conflict) as conflict:
        services.rollout_flag_set(rollout=r, on=True, actor=admin, reason="late")
    assert conflict.value.field == "flag_expires_at"
    r = services.rollout_advance(rollout=r, actor=admin)
    assert r.state == RolloutState.SUCCEEDED
    assert default_of(platform_prompt) == prompt_v2


# --- overrides and fail-closed ------------------------------------------------------------------


def _rejected(people: dict[str, Any], version: Version) -> ChangeRequest:
    change = reviews.change_create(
        tenant=version.artifact.tenant, actor=people["author"], title="x", rollback_plan="y",
        proposed=[version],
    )  # fmt: skip
    reviews.evidence_attach(
        change=change, actor=None, version=version, metrics={"safety": 0.97}, seed="1",
        test_run_ids=["t"],
    )  # fmt: skip
    change = reviews.change_submit(change=change, actor=people["author"])
    for run in CheckRun.objects.filter(change=change, status=CheckStatus.PENDING):
        reviews.check_execute(run=run)
    reviews.approval_decide(
        change=change, actor=people["reviewer"], decision="reject", comment="unsafe"
    )
    change.refresh_from_db()
    assert change.status == ChangeStatus.REJECTED
    return change


def test_override_set_and_clear_record_moves(
    slot: Slot, acme: Tenant, people: dict[str, Any], prompt_v1: Version, prompt_v2: Version,
    promoted_change: ChangeRequest,
) -> None:  # fmt: skip
    acme_admin = people["acme_admin"]
    override = services.override_set(
        slot=slot, tenant=acme, version=prompt_v2, reason="early adopter", actor=acme_admin
    )
    assert override.version == prompt_v2
    with pytest.raises(Conflict) as conflict:
        services.override_set(
            slot=slot, tenant=acme, version=prompt_v2, reason="x", actor=acme_admin
        )
    assert conflict.value.field == "version"
    services.override_set(
        slot=slot, tenant=acme, version=prompt_v1, reason="back", actor=acme_admin
    )
    services.override_clear(slot=slot, tenant=acme, reason="follow default", actor=acme_admin)
    moves = list(PointerMove.objects.filter(kind=PointerKind.OVERRIDE).order_by("id"))
    assert [(m.from_version, m.to_version, m.actor) for m in moves] == [
        (None, prompt_v2, acme_admin), (prompt_v2, prompt_v1, acme_admin),
        (prompt_v1, None, acme_admin),
    ]  # fmt: skip
    assert [e.payload["reason"] for e in events(EventKind.POINTER_MOVED)] == [
        "early adopter", "back", "follow default"
    ]  # fmt: skip
    assert list(selectors.slot_history(slot)) == moves[::-1]
    with pytest.raises(Conflict):
        services.override_clear(slot=slot, tenant=acme, reason="again", actor=acme_admin)
    with pytest.raises(Forbidden):  # acme's administrator is not platform's
        services.override_set(
            slot=slot, tenant=Tenant.objects.get(slug="platform"), version=prompt_v1,
            reason="x", actor=acme_admin,
        )  # fmt: skip
    other = make_artifact(acme, "prompt", "other")
    foreign = publish(other, impact="major", text="Other {{ customer }}.", metadata=PINS)
    with pytest.raises(DomainError) as exc:
        services.override_set(slot=slot, tenant=acme, version=foreign, reason="x", actor=acme_admin)
    assert exc.value.field == "version"


def test_a_draft_rejected_removed_or_retired_version_never_becomes_a_pointer(
    slot: Slot, acme: Tenant, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version, promoted_change: ChangeRequest,
    promote: Callable[..., Any],
) -> None:  # fmt: skip
    acme_admin, admin = people["acme_admin"], people["admin"]
    draft = publish(platform_prompt, text="Draft {{ customer }}.", metadata=PINS)
    rejected = publish(platform_prompt, text="Rejected {{ customer }}.", metadata=PINS)
    _rejected(people, rejected)
    retired = publish(platform_prompt, text="Retired {{ customer }}.", metadata=PINS)
    promote(retired)
    registry.version_retire(version=retired, rationale="superseded", actor=admin)
    removed = publish(platform_prompt, text="Removed {{ customer }}.", metadata=PINS)
    promote(removed)
    registry.version_deprecate(
        version=removed, replacement=prompt_v2, reason="old", remove_after_days=7, actor=admin
    )
    registry.deprecations_remove_due(now=timezone.now() + timedelta(days=8))
    verdicts = selectors.servable_versions([draft.pk, rejected.pk, retired.pk, removed.pk])
    assert verdicts[draft.pk] == f"{draft.path} is a draft"
    assert verdicts[rejected.pk] in {
        f"{rejected.path} is a draft",
        f"{rejected.path} went through no promoted change request",
    }
    assert verdicts[retired.pk] == f"{retired.path} is retired"
    assert verdicts[removed.pk] == f"{removed.path} was removed"
    for bad in (draft, rejected, retired, removed):
        with pytest.raises(Conflict) as conflict:
            services.override_set(slot=slot, tenant=acme, version=bad, reason="x", actor=acme_admin)
        assert conflict.value.field == "version"
    assert not Override.objects.exists()
    # a rollout whose candidate was retired after creation cannot start, advance or succeed
    r = services.rollout_create(change=promoted_change, actor=admin, strategy="canary")
    registry.version_retire(version=prompt_v2, rationale="found a flaw", actor=admin)
    with pytest.raises(Conflict) as conflict:
        services.rollout_start(rollout=r, actor=admin)
    assert conflict.value.field == "candidate"
    assert "retired" in conflict.value.message
    assert default_of(platform_prompt) == prompt_v1
    # a deprecated (not removed) version still serves, with a warning
    v9 = publish(platform_prompt, text="Nine {{ customer }}.", metadata=PINS)
    promote(v9)
    registry.version_deprecate(
        version=v9, replacement=prompt_v1, reason="too long", remove_after_days=30, actor=admin
    )
    verdict = selectors.servable_versions([v9.pk])[v9.pk]
    assert isinstance(verdict, selectors.ServeInfo)
    assert verdict.version == v9
    assert verdict.warning
    assert "is deprecated (replacement" in verdict.warning


def test_a_change_on_an_unbound_artifact_still_promotes_as_before(
    acme: Tenant, promote: Callable[..., Any], slot: Slot
) -> None:
    prompt = make_artifact(acme, "prompt", "unbound")
    v1 = publish(prompt, impact="major", text="Hello {{ customer }}.", metadata=PINS)
    change = promote(v1)
    assert default_of(prompt) == v1
    with pytest.raises(DomainError) as exc:
        services.rollout_create(change=change, actor=None)
    assert exc.value.field == "change"


def test_a_change_rollback_or_switch_off_of_a_bound_artifact_is_in_the_slot_history(
    canary_rollout: Rollout, people: dict[str, Any], slot: Slot, platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version, promoted_change: ChangeRequest,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    while r.state == RolloutState.PROGRESSING:
        r = services.rollout_advance(rollout=r, actor=admin)
    # the change's one-step rollback (reviews) still works on what the rollout made default
    reviews.rollback(artifact=platform_prompt, actor=admin, reason="errors up")
    assert default_of(platform_prompt) == prompt_v1
    promoted_change.refresh_from_db()
    assert promoted_change.status == ChangeStatus.ROLLED_BACK
    assert selectors.servable_refusal(prompt_v2) is not None  # its change no longer promoted
    moved = selectors.slot_history(slot).first()
    assert moved is not None
    assert moved.rollout is None
    assert (moved.kind, moved.from_version, moved.to_version, moved.reason) == (
        PointerKind.DEFAULT, prompt_v2, prompt_v1, "errors up"
    )  # fmt: skip
    reviews.artifact_deactivate(artifact=platform_prompt, actor=admin, reason="halt")
    off = selectors.slot_history(slot).first()
    assert off is not None
    assert (off.from_version, off.to_version) == (prompt_v1, None)
    assert events(EventKind.POINTER_MOVED)[-1].payload["to"] is None


def test_a_rollback_never_restores_a_version_retired_since(
    canary_rollout: Rollout, people: dict[str, Any], platform_prompt: Artifact,
    prompt_v1: Version, prompt_v2: Version,
) -> None:  # fmt: skip
    admin = people["admin"]
    r = services.rollout_start(rollout=canary_rollout, actor=admin)
    while r.state == RolloutState.PROGRESSING:
        r = services.rollout_advance(rollout=r, actor=admin)
    registry.version_retire(version=prompt_v1, rationale="unsafe", actor=admin)
    moves = PointerMove.objects.count()
    with pytest.raises(Conflict) as conflict:
        services.rollout_rollback(rollout=r, actor=admin, reason="errors")
    assert f"{prompt_v1.path} is retired" in conflict.value.message
    r.refresh_from_db()
    assert r.state == RolloutState.SUCCEEDED
    assert default_of(platform_prompt) == prompt_v2
    assert PointerMove.objects.count() == moves


@pytest.mark.usefixtures("slot")
def test_the_change_names_its_strategy_and_the_rollout_defaults_to_it(
    platform_prompt: Artifact, promote: Callable[..., Any], people: dict[str, Any]
) -> None:
    v2 = publish(platform_prompt, text="Qualify {{ customer }} kindly.", metadata=PINS)
    change = promote(v2, strategy="global")
    assert change.rollout_strategy == "global"
    opened = Event.objects.filter(
        kind=EventKind.CHANGE_REQUEST_OPENED, subject_id=str(change.pk)
    ).get()
    assert opened.payload["rollout_strategy"] == "global"
    rollout = services.rollout_create(change=change, actor=people["admin"])
    assert rollout.strategy == "global"
    with pytest.raises(DomainError) as exc:
        reviews.change_create(
            tenant=platform_prompt.tenant, actor=people["author"], title="x", rollback_plan="y",
            proposed=[v2], rollout_strategy="big-bang",
        )  # fmt: skip
    assert exc.value.field == "rollout_strategy"
