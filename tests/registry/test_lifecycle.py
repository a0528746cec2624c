"""Deprecation, removal after the grace period, retirement to simulation-only, and ownership."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Tenant
from governance.kernel.errors import Conflict, DomainError, Forbidden, NotFound
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors
from registry import services as registry
from registry.choices import Stage
from registry.models import Artifact, Deprecation, Retirement, VersionState
from reviews import services as reviews
from tests.reviews.conftest import make_artifact, people, prompt, prompt_v1, prompt_v2, publish

__all__ = ["people", "prompt", "prompt_v1", "prompt_v2"]  # fixtures used here

DAY = timedelta(days=1)


def activate(version: Any) -> None:
    """Test setup: make a version the active one (the change-request flow is tested elsewhere)."""
    Artifact.objects.filter(pk=version.artifact_id).update(active_version=version)


def deprecate(version: Any, people: dict[str, Any], **kw: Any) -> Deprecation:
    kw.setdefault("reason", "v2 answers in the customer's language.")
    kw.setdefault("remove_after_days", 30)
    kw.setdefault("actor", people["admin"])
    return registry.version_deprecate(version=version, **kw)


def test_deprecating_records_replacement_dates_stage_and_event(
    people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v2)
    before = timezone.now()
    deprecation = deprecate(prompt_v1, people, replacement=prompt_v2.pinned)
    assert deprecation.replacement == prompt_v2
    assert before + 30 * DAY <= deprecation.remove_after <= timezone.now() + 30 * DAY
    assert VersionState.objects.get(version=prompt_v1).stage == Stage.DEPRECATED
    event = Event.objects.get(kind=EventKind.VERSION_DEPRECATED)
    assert event.payload["replacement"] == prompt_v2.pinned
    assert event.payload["remove_after"] == deprecation.remove_after.isoformat()
    # deprecated versions keep resolving by name until removal ...
    assert selectors.version_by_reference_unscoped(prompt_v1.path) == prompt_v1
    # ... but can no longer be proposed or depended on
    assert selectors.lifecycle_refusal(prompt_v1) == (
        f"{prompt_v1.path} is deprecated; use its replacement {prompt_v2.path}"
    )
    with pytest.raises(Conflict):
        deprecate(prompt_v1, people, replacement=prompt_v2)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": " "}, "reason"),
        ({"remove_after_days": 2}, "remove_after"),
        ({"remove_after_days": "30"}, "remove_after"),
        ({"replacement": "qualify-lead@9.9.9"}, "replacement"),
        ({"replacement": "self"}, "replacement"),
    ],
)
def test_bad_deprecations_name_the_field_and_write_nothing(
    people: dict[str, Any], prompt_v1: Any, prompt_v2: Any, kwargs: dict[str, Any], field: str
) -> None:
    activate(prompt_v2)
    arguments: dict[str, Any] = {"replacement": prompt_v2, **kwargs}
    if arguments["replacement"] == "self":
        arguments["replacement"] = prompt_v1
    with pytest.raises(DomainError) as exc:
        deprecate(prompt_v1, people, **arguments)
    assert exc.value.field == field
    assert not Deprecation.objects.exists()
    assert not Event.objects.filter(kind=EventKind.VERSION_DEPRECATED).exists()


def test_the_active_version_and_other_tenants_replacements_are_refused(
    globex: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v1)
    with pytest.raises(Conflict) as exc:
        deprecate(prompt_v1, people, replacement=prompt_v2)
    assert "active version" in exc.value.message
    activate(prompt_v2)
    foreign = publish(make_artifact(globex, "prompt", "qualify-lead"), impact="major", text="x")
    with pytest.raises(DomainError) as exc2:
        deprecate(prompt_v1, people, replacement=foreign)
    assert exc2.value.field == "replacement"
    assert "No version" in exc2.value.message
    with pytest.raises(Forbidden):
        deprecate(prompt_v1, people, replacement=prompt_v2, actor=people["reviewer"])


def test_active_dependents_block_deprecation_unless_overridden(
    acme: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v2)
    bot = make_artifact(acme, "prompt", "sales-bot")
    user, _ = registry.version_publish(
        artifact=bot,
        content=registry.Content(text="Use the lead prompt."),
        impact="major",
        reason="depends on v1",
        actor=None,
        dependencies=[prompt_v1.pinned],
    )
    activate(user)
    with pytest.raises(Conflict) as exc:
        deprecate(prompt_v1, people, replacement=prompt_v2)
    assert user.path in exc.value.message
    assert exc.value.field == "override_reason"
    assert not Deprecation.objects.exists()
    deprecation = deprecate(
        prompt_v1, people, replacement=prompt_v2, override_reason="sales-bot moves next sprint"
    )
    assert deprecation.dependents == [user.path]
    assert deprecation.override_reason == "sales-bot moves next sprint"
    # and nothing new may depend on it
    with pytest.raises(DomainError) as exc2:
        registry.version_publish(
            artifact=bot,
            content=registry.Content(text="Use the lead prompt again."),
            impact="minor",
            reason="x",
            actor=None,
            dependencies=[prompt_v1.pinned],
        )
    assert exc2.value.field == "dependencies"
    assert "deprecated" in exc2.value.message


def test_removal_waits_for_the_grace_period_and_happens_once(
    people: dict[str, Any], prompt: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v2)
    deprecation = deprecate(prompt_v1, people, replacement=prompt_v2, remove_after_days=10)
    assert registry.deprecations_remove_due(now=timezone.now() + 9 * DAY) == []
    later = timezone.now() + 11 * DAY
    removed = registry.deprecations_remove_due(now=later)
    assert [d.pk for d in removed] == [deprecation.pk]
    assert registry.deprecations_remove_due(now=later) == []  # twice: nothing more
    deprecation.refresh_from_db()
    assert deprecation.removed_at == later
    events = Event.objects.filter(kind=EventKind.VERSION_REMOVED)
    assert events.count() == 1
    assert events.get().payload["path"] == prompt_v1.path
    # the record stays and still resolves by exact name; "latest" never picks it
    assert selectors.version_by_reference_unscoped(prompt_v1.path) == prompt_v1
    assert "was removed" in (selectors.lifecycle_refusal(prompt_v1) or "")


def test_a_version_active_again_is_not_removed(
    people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v2)
    deprecate(prompt_v1, people, replacement=prompt_v2, remove_after_days=10)
    activate(prompt_v1)  # a rollback brought it back
    assert registry.deprecations_remove_due(now=timezone.now() + 11 * DAY) == []
    assert not Event.objects.filter(kind=EventKind.VERSION_REMOVED).exists()


def test_unversioned_resolves_to_the_active_version_never_the_newest(
    people: dict[str, Any], prompt: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    # Nothing promoted: the newest version (a draft) is not what "the artifact" means.
    with pytest.raises(NotFound) as missing:
        selectors.version_by_reference_unscoped(prompt.path)
    assert "has no active version" in missing.value.message
    activate(prompt_v1)
    assert selectors.version_by_reference_unscoped(prompt.path) == prompt_v1  # not the newer 1.1.0
    assert selectors.active_version_of(prompt) == prompt_v1
    deprecate(prompt_v2, people, replacement=prompt_v1, remove_after_days=7)
    registry.deprecations_remove_due(now=timezone.now() + 8 * DAY)
    assert selectors.version_by_reference_unscoped(prompt.path) == prompt_v1
    # the draft stays reachable by its exact number, and says it is not active
    draft = selectors.version_by_reference_unscoped(prompt_v2.path)
    assert draft == prompt_v2
    assert not selectors.is_active(draft)
    assert selectors.is_active(selectors.version_by_reference_unscoped(prompt_v1.path))


def test_retirement_moves_to_simulation_only_and_keeps_evidence(
    settings: Any, people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    settings.EVIDENCE_RETENTION_DAYS = 400
    activate(prompt_v2)
    with pytest.raises(Conflict):
        registry.version_retire(version=prompt_v2, rationale="x", actor=people["admin"])
    with pytest.raises(DomainError) as exc:
        registry.version_retire(version=prompt_v1, rationale=" ", actor=people["admin"])
    assert exc.value.field == "rationale"
    retirement = registry.version_retire(
        version=prompt_v1, rationale="Below the safety gate since the eval refresh.", actor=None
    )
    assert retirement.retain_until - retirement.retired_at == 400 * DAY
    assert VersionState.objects.get(version=prompt_v1).stage == Stage.SIMULATION_ONLY
    event = Event.objects.get(kind=EventKind.VERSION_RETIRED)
    assert event.payload["retain_until"] == retirement.retain_until.isoformat()
    assert (
        selectors.lifecycle_refusal(prompt_v1) == f"{prompt_v1.path} is retired (simulation-only)"
    )
    assert Retirement.objects.count() == 1


def test_retired_or_removed_versions_cannot_be_proposed_or_restored(
    acme: Any, people: dict[str, Any], prompt: Any, prompt_v1: Any, prompt_v2: Any
) -> None:
    activate(prompt_v2)
    registry.version_retire(version=prompt_v1, rationale="superseded", actor=None)
    with pytest.raises(DomainError) as exc:
        reviews.change_create(
            tenant=acme,
            actor=people["author"],
            proposed=[prompt_v1],
            title="bring it back",
            rollback_plan="none",
        )
    assert exc.value.field == "proposed"
    assert "retired" in exc.value.message
    # even an earlier active version cannot be restored once retired
    from reviews.models import Activation

    Activation.objects.create(artifact=prompt, version=prompt_v1, kind="promotion", reason="t")
    with pytest.raises(Conflict) as exc2:
        reviews.rollback(artifact=prompt, actor=people["admin"], reason="fire", target=prompt_v1)
    assert "retired" in exc2.value.message


@pytest.mark.usefixtures("acme", "globex")
def test_ownership_changes_are_events_and_need_a_member(
    people: dict[str, Any], prompt: Any, make_user: Any
) -> None:
    assert prompt.owner == people["admin"]
    with pytest.raises(Forbidden):
        registry.artifact_owner_set(
            artifact=prompt, owner=people["reviewer"], actor=people["author"], reason="mine now"
        )
    stranger = make_user("stranger", globex="member")
    with pytest.raises(DomainError) as exc:
        registry.artifact_owner_set(
            artifact=prompt, owner=stranger, actor=people["admin"], reason="x"
        )
    assert exc.value.field == "owner"
    with pytest.raises(DomainError) as exc:
        registry.artifact_owner_set(
            artifact=prompt, owner=people["reviewer"], actor=people["admin"], reason=""
        )
    assert exc.value.field == "reason"
    moved = registry.artifact_owner_set(
        artifact=prompt, owner=people["reviewer"], actor=people["admin"], reason="team change"
    )
    assert moved.owner == people["reviewer"]
    event = Event.objects.get(kind=EventKind.OWNERSHIP_CHANGED)
    assert event.payload == {
        "path": prompt.path,
        "from": "admin",
        "to": "reviewer",
        "reason": "team change",
    }


def test_artifacts_without_an_active_owner(
    acme: Any, people: dict[str, Any], prompt: Any, make_user: Any
) -> None:
    from accounts import services as accounts

    orphan = make_artifact(acme, "prompt", "orphan")
    leaver = make_user("leaver", acme="member")
    left = make_artifact(acme, "prompt", "left-behind", owner=leaver)
    sleeper = make_user("sleeper", acme="member")
    dormant = make_artifact(acme, "prompt", "dormant", owner=sleeper)
    assert set(selectors.artifacts_without_active_owner(Tenant.objects.all())) == {orphan}
    accounts.membership_remove(user=leaver, tenant=acme, actor=None)
    sleeper.is_active = False
    sleeper.save(update_fields=["is_active"])
    assert set(selectors.artifacts_without_active_owner(Tenant.objects.all())) == {
        orphan,
        left,
        dormant,
    }
    assert prompt not in selectors.artifacts_without_active_owner(Tenant.objects.all())


def test_the_cli_says_a_version_is_deprecated(
    people: dict[str, Any], prompt_v1: Any, prompt_v2: Any
) -> None:
    import io

    from django.core.management import call_command

    activate(prompt_v2)
    deprecation = deprecate(prompt_v1, people, replacement=prompt_v2)
    out, err = io.StringIO(), io.StringIO()
    call_command("registry", "history", prompt_v1.artifact.path, stdout=out, stderr=err)
    rows = out.getvalue().splitlines()
    assert rows[0].startswith("1.1.0\t")
    assert rows[0].endswith("\t[active]")
    assert rows[1].endswith(
        f"\t[deprecated, replaced by {prompt_v2.path}, "
        f"removed after {deprecation.remove_after:%Y-%m-%d}]"
    )
    out, err = io.StringIO(), io.StringIO()
    call_command("registry", "show", prompt_v1.path, stdout=out, stderr=err)
    assert out.getvalue().lstrip().startswith("{")  # the manifest, untouched
    assert err.getvalue().splitlines() == [
        f"{prompt_v1.path} sha256 {prompt_v1.manifest_sha256}",
        "stage: deprecated (not active)",
        f"note: {prompt_v1.path} is deprecated, replaced by {prompt_v2.path}, "
        f"removed after {deprecation.remove_after:%Y-%m-%d}",
    ]
