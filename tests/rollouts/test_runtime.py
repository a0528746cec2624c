"""The runtime snapshot and resolve: precedence, fail closed, platform sharing, caching."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events.services import canonical
from registry.models import Artifact
from rollouts import runtime
from rollouts.choices import RolloutStrategy
from rollouts.models import Application, Slot
from tests.rollouts.runtime_world import (
    World,
    build_world,
    canary,
    changed,
    make_active,
    make_artifact,
    override,
    promoted_change,
    publish,
)

pytestmark = pytest.mark.django_db

NOT_SERVABLE = ("draft", "rejected", "retired", "removed")


@pytest.fixture
def world(db: None) -> World:
    return build_world()


def ref(world: World, name: str) -> str:
    return runtime.version_ref(world.v[name])


def answer(
    subject: str | None = None, pin: str | None = None, tenant: str = "acme"
) -> runtime.Answer:
    return runtime.answer(tenant, "sales-agent", "qualifyLead", subject=subject, pin=pin)


def test_snapshot_names_the_default_with_its_reference_and_content(world: World) -> None:
    snap = runtime.snapshot("acme", "sales-agent")
    body = snap.body
    assert body["format"] == runtime.FORMAT
    assert (body["tenant"], body["application"], body["application_tenant"]) == (
        "acme",
        "sales-agent",
        "platform",
    )
    slot = body["slots"]["qualifyLead"]
    v1 = world.v["v1"]
    assert slot["default"] == f"qualify-lead:1.0.0#{v1.manifest_sha256}"
    assert slot == {
        "artifact": "prompt/platform/qualify-lead",
        "disabled": False,
        "default": slot["default"],
        "override": None,
        "rules": [],
        "warnings": [],
    }
    assert body["versions"] == {
        slot["default"]: {
            "path": "prompt/platform/qualify-lead/1.0.0",
            "version": "1.0.0",
            "sha256": v1.manifest_sha256,
            "stage": "active",
            "content_kind": "text",
            "content": "Qualify {{ customer }}.",
            "content_sha256": v1.content_sha256,
            "warning": None,
        }
    }
    assert snap.canonical == canonical(body)
    assert snap.sha256 == hashlib.sha256(snap.canonical).hexdigest()
    rest = {k: v for k, v in body.items() if k != "sequence"}
    assert snap.content_sha256 == hashlib.sha256(canonical(rest)).hexdigest()
    assert snap.etag == f'"{body["sequence"]}-{snap.content_sha256[:16]}"'
    document = json.loads(snap.document())
    assert document["snapshot"] == body
    assert document["signature"]["key_id"] == snap.key_id


def test_default_answer(world: World) -> None:
    got = answer("user-1")
    assert (got.reason, got.variant, got.version, got.ref) == (
        "DEFAULT",
        "default",
        "1.0.0",
        ref(world, "v1"),
    )
    assert got.content == "Qualify {{ customer }}."
    assert (got.rollout, got.step, got.arm, got.bucket) == (None, None, None, None)
    assert got.sequence == runtime.snapshot("acme", "sales-agent").sequence


def test_override_is_a_targeting_match_for_its_tenant_only(world: World) -> None:
    override(world, world.acme, world.v["v3"])
    got = answer("user-1")
    assert (got.reason, got.variant, got.version) == ("TARGETING_MATCH", "override", "1.7.0")
    assert answer("user-1", tenant="globex").version == "1.0.0"


def test_canary_split_by_bucket_and_stable_arm_is_the_override(world: World) -> None:
    rollout = canary(world, weight=50_000, salt="s")
    override(world, world.acme, world.v["v3"])
    seen = {}
    for i in range(200):
        got = answer(f"user-{i}")
        assert got.reason == "SPLIT"
        assert (got.rollout, got.rollout_id, got.step) == (rollout.reference, str(rollout.pk), 1)
        from rollouts.bucketing import bucket

        assert got.bucket == bucket(
            salt="s", slot="qualifyLead", tenant="acme", subject=f"user-{i}"
        )
        expected = ("canary", "1.1.0") if got.bucket < 50_000 else ("stable", "1.7.0")
        assert (got.arm, got.version) == expected
        seen[got.arm] = True
    assert seen == {"canary": True, "stable": True}


def test_canary_without_subject_falls_through_never_random(world: World) -> None:
    canary(world, weight=100_000)
    for subject in (None, ""):
        got = answer(subject)
        assert (got.reason, got.version, got.rollout, got.bucket) == (
            "DEFAULT",
            "1.0.0",
            None,
            None,
        )
    override(world, world.acme, world.v["v3"])
    assert answer(None).reason == "TARGETING_MATCH"
    assert answer("anyone").version == "1.1.0"  # 100%: everyone with a subject


def test_paper_canary_serves_the_cohort_only(world: World) -> None:
    rollout = canary(world, target="paper", cohort=["alice", "bob"], weight=0)
    got = answer("alice")
    assert (got.reason, got.arm, got.version, got.rollout) == (
        "TARGETING_MATCH",
        "canary",
        "1.1.0",
        rollout.reference,
    )
    assert answer("carol").reason == "DEFAULT"


def test_flag_on_off_and_expired(world: World) -> None:
    later = timezone.now() + timedelta(days=10)
    rollout = canary(
        world, strategy=RolloutStrategy.FLAG, flag_key="polite", flag_on=True, flag_expires_at=later
    )
    override(world, world.acme, world.v["v3"])
    got = answer()
    assert (got.reason, got.variant, got.version, got.rollout) == (
        "TARGETING_MATCH",
        "on",
        "1.1.0",
        rollout.reference,
    )
    flag = runtime.snapshot("acme", "sales-agent").body["slots"]["qualifyLead"]["rules"][0]["flag"]
    assert flag == {"key": "polite", "on": True, "expires_at": later.strftime("%Y-%m-%dT%H:%M:%SZ")}
    # Expired: the default, overrides skipped too, with a warning (evaluated at resolve time).
    snap = runtime.snapshot("acme", "sales-agent")
    expired = runtime.resolve(snap, "qualifyLead", "x", now=later + timedelta(seconds=1))
    assert (expired.reason, expired.version) == ("DEFAULT", "1.0.0")
    assert any("flag polite" in w and "expired" in w for w in expired.warnings)
    type(rollout).objects.filter(pk=rollout.pk).update(flag_on=False)
    changed()
    assert answer().reason == "TARGETING_MATCH"
    assert answer().variant == "override"


def test_rollout_of_another_tenant_does_not_apply(world: World) -> None:
    canary(world, weight=100_000, tenant=world.globex)
    assert answer("u").reason == "DEFAULT"
    assert answer("u", tenant="globex").reason == "SPLIT"


def test_pin_is_static_and_beats_rules(world: World) -> None:
    canary(world, weight=100_000)
    got = answer("u", pin="1.0.0")
    assert (got.reason, got.variant, got.version, got.rollout) == (
        "STATIC",
        "pinned",
        "1.0.0",
        None,
    )
    v1 = world.v["v1"]
    assert answer("u", pin=f"qualify-lead:1.0.0#{v1.manifest_sha256}").version == "1.0.0"
    assert answer("u", pin=f"qualify-lead@1.0.0#{v1.manifest_sha256[:12]}").version == "1.0.0"


def test_pin_outside_the_snapshot_is_looked_up_fail_closed(
    world: World, django_assert_max_num_queries: Any
) -> None:
    runtime.snapshot("acme", "sales-agent")
    with django_assert_max_num_queries(3):
        got = answer(pin="1.7.0")
    assert (got.reason, got.version, got.ref) == ("STATIC", "1.7.0", ref(world, "v3"))
    with django_assert_max_num_queries(0):
        assert answer(pin="1.7.0").version == "1.7.0"  # remembered for this generation
    deprecated = answer(pin=world.v["deprecated"].version)
    assert any("is deprecated" in w for w in deprecated.warnings)
    for name in NOT_SERVABLE:
        with pytest.raises(NotFound) as refused:
            answer(pin=world.v[name].version)
        assert refused.value.field == "pin"
    with pytest.raises(NotFound):
        answer(pin="9.9.9")
    with pytest.raises(DomainError) as wrong:
        answer(pin=f"qualify-lead:1.7.0#{'0' * 64}")
    assert wrong.value.field == "pin"
    with pytest.raises(NotFound):
        answer(pin="other-thing:1.0.0#" + "a" * 64)


def test_switched_off_slot_is_disabled_for_everyone(world: World) -> None:
    canary(world, weight=100_000)
    override(world, world.acme, world.v["v3"])
    Artifact.objects.filter(pk=world.artifact.pk).update(active_version=None)
    changed()
    for kw in ({}, {"subject": "u"}, {"pin": "1.0.0"}):
        got = answer(**kw)
        assert (got.reason, got.ref, got.content) == ("DISABLED", None, None)
    assert runtime.snapshot("acme", "sales-agent").body["slots"]["qualifyLead"]["disabled"] is True


@pytest.mark.parametrize("name", NOT_SERVABLE)
def test_pointers_to_versions_that_may_not_serve_are_skipped(world: World, name: str) -> None:
    bad = world.v[name]
    canary(world, weight=100_000, candidate=bad)
    override(world, world.acme, bad)
    got = answer("u")
    assert (got.reason, got.version) == ("DEFAULT", "1.0.0")
    assert any("override" in w and "skipped" in w for w in got.warnings)
    assert any("RO-" in w and "skipped" in w for w in got.warnings)
    body = runtime.snapshot("acme", "sales-agent").body
    assert runtime.version_ref(bad) not in body["versions"]
    assert bad.manifest_sha256 not in json.dumps(body)


def test_deprecated_override_serves_with_a_warning(world: World) -> None:
    override(world, world.acme, world.v["deprecated"])
    got = answer()
    assert (got.reason, got.version, got.stage) == (
        "TARGETING_MATCH",
        world.v["deprecated"].version,
        "deprecated",
    )
    assert any(
        "is deprecated (replacement prompt/platform/qualify-lead/1.0.0" in w for w in got.warnings
    )


def test_platform_and_tenant_private_slots(world: World) -> None:
    acme_art = make_artifact(world.acme, "prompt", "acme-greeting", title="acme-greeting")
    mine = publish(acme_art, "Hello from Acme {{ customer }}.")
    promoted_change(mine, world.author)
    make_active(mine)
    Slot.objects.create(application=world.app, name="greet", artifact=acme_art)
    own_app = Application.objects.create(tenant=world.acme, slug="acme-bot", name="Acme bot")
    Slot.objects.create(application=own_app, name="greet", artifact=acme_art)
    changed()
    assert set(runtime.snapshot("acme", "sales-agent").body["slots"]) == {"greet", "qualifyLead"}
    assert set(runtime.snapshot("globex", "sales-agent").body["slots"]) == {"qualifyLead"}
    assert runtime.answer("acme", "acme-bot", "greet").content == "Hello from Acme {{ customer }}."
    with pytest.raises(NotFound) as hidden:
        runtime.snapshot("globex", "acme-bot")
    assert hidden.value.field == "application"
    with pytest.raises(NotFound) as nobody:
        runtime.snapshot("nobody", "sales-agent")
    assert nobody.value.field == "tenant"
    with pytest.raises(NotFound) as slot:
        runtime.answer("globex", "sales-agent", "greet")
    assert slot.value.field == "slot"


def test_warm_answer_runs_no_sql(world: World, django_assert_num_queries: Any) -> None:
    canary(world, weight=50_000)
    answer("u")
    with django_assert_num_queries(0):
        for i in range(50):
            answer(f"u{i}")
        runtime.snapshot("acme", "sales-agent").document()


def test_a_change_is_seen_at_once_and_sequence_grows(world: World) -> None:
    before = runtime.snapshot("acme", "sales-agent")
    assert answer().version == "1.0.0"
    override(world, world.acme, world.v["v3"])
    assert answer().version == "1.7.0"
    publish(world.artifact, "Another draft {{ customer }}.")  # appends an event
    after = runtime.snapshot("acme", "sales-agent")
    assert after.sequence > before.sequence
    assert after.etag != before.etag


def test_build_cost_does_not_grow_with_history(
    world: World, django_assert_num_queries: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def build_queries() -> int:
        runtime.cache_clear()
        with CaptureQueriesContext(connection) as ctx:
            runtime.snapshot("acme", "sales-agent")
        return len(ctx.captured_queries)

    canary(world, weight=10_000)
    override(world, world.acme, world.v["v3"])
    few = build_queries()
    for i in range(30):
        publish(world.artifact, f"History {i} {{{{ customer }}}}.")
    assert build_queries() == few


@pytest.mark.usefixtures("world")
def test_load_document_refuses_what_it_cannot_verify() -> None:
    snap = runtime.snapshot("acme", "sales-agent")
    from governance.kernel.events.selectors import public_keys

    keys = public_keys()
    good = snap.document()
    assert runtime.load_document(good, keys).body == snap.body
    document = json.loads(good)
    bad_cases: dict[str, list[bytes | str]] = {
        "snapshot": [b"not json", b"[]", json.dumps({**document, "snapshot": []}).encode()],
        "format": [json.dumps({**document, "snapshot": {**document["snapshot"], "format": "x"}})],
        "signature": [
            json.dumps({**document, "signature": {**document["signature"], "value": "00" * 64}})
        ],
    }
    for field, payloads in bad_cases.items():
        for payload in payloads:
            with pytest.raises(DomainError) as refused:
                runtime.load_document(payload, keys)
            assert refused.value.field == field, payload
    with pytest.raises(DomainError):
        runtime.load_document(good, {})  # a key it does not know


def test_unicode_subjects_bucket_as_published(world: World) -> None:
    from rollouts.bucketing import bucket

    canary(world, weight=50_000, salt="s")
    for subject in ("Zoë", "日本語のユーザー", "😀", "e\u0301"):
        got = answer(subject)
        assert got.bucket == bucket(salt="s", slot="qualifyLead", tenant="acme", subject=subject)
