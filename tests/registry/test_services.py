"""Publishing: hashing, signing, immutability, idempotency, semantic versioning, lineage, events."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from django.db import transaction

from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry import selectors, services
from registry.models import ArtifactClass, ImmutableError, Version
from registry.verification import check_version, verify_versions
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."


def test_first_publish_hashes_signs_and_records(prompt, author):
    v, created = services.version_publish(
        artifact=prompt,
        content=services.Content(text=V1),
        impact="major",
        reason="first",
        actor=author,
    )
    assert created
    assert v.version == "1.0.0"
    assert v.ordinal == 1
    manifest = json.loads(bytes(v.manifest))
    assert bytes(v.manifest) == rfc8785.dumps(manifest)
    assert v.manifest_sha256 == hashlib.sha256(bytes(v.manifest)).hexdigest()
    assert manifest["artifact"] == "prompt/acme/qualify-lead"
    assert manifest["version"] == "1.0.0"
    assert manifest["content"]["sha256"] == hashlib.sha256(V1.encode()).hexdigest()
    assert manifest["input_variables"] == [
        {"name": "product", "required": True},
        {"name": "customer", "required": True},
    ]
    assert check_version(v).ok
    prompt.refresh_from_db()
    assert prompt.recommended_version == v
    kinds = list(
        Event.objects.filter(subject_id=str(v.pk)).order_by("seq").values_list("kind", flat=True)
    )
    assert kinds == [EventKind.ARTIFACT_VERSION_PUBLISHED, EventKind.PROMPT_PUBLISHED]
    published = Event.objects.get(kind=EventKind.ARTIFACT_VERSION_PUBLISHED, subject_id=str(v.pk))
    assert published.payload["sha256"] == v.manifest_sha256
    assert published.actor == author
    prompt_event = Event.objects.get(kind=EventKind.PROMPT_PUBLISHED)
    assert prompt_event.payload["prompt"] == "qualify-lead@1.0.0"
    assert prompt_event.payload["owner"] == "author"


def test_versions_are_immutable(prompt):
    v = publish(prompt, V1, "major")
    with pytest.raises(ImmutableError):
        v.save()
    with pytest.raises(ImmutableError):
        v.delete()
    with pytest.raises(ImmutableError):
        Version.objects.filter(pk=v.pk).update(change_reason="rewritten")


def test_republishing_identical_is_idempotent_and_different_is_409(prompt):
    v = publish(prompt, V1, "major", version="1.0.0", reason="first")
    events = Event.objects.count()
    again, created = services.version_publish(
        artifact=prompt,
        content=services.Content(text=V1),
        impact="major",
        reason="first",
        version="1.0.0",
        actor=None,
    )
    assert (again.pk, created) == (v.pk, False)
    assert Event.objects.count() == events
    assert Version.objects.count() == 1
    with pytest.raises(Conflict) as err:
        publish(prompt, V1 + " Changed.", "major", version="1.0.0", reason="first")
    assert err.value.status_code == 409
    assert "never change" in err.value.message


def test_next_version_follows_declared_impact(prompt):
    assert publish(prompt, V1, "major").version == "1.0.0"
    assert publish(prompt, V1 + " Be brief.", "patch").version == "1.0.1"
    assert publish(prompt, V1 + " Be brief!", "minor").version == "1.1.0"
    assert publish(prompt, V1 + " x", "major").version == "2.0.0"
    assert [v.version for v in selectors.versions_of(prompt)] == [
        "2.0.0",
        "1.1.0",
        "1.0.1",
        "1.0.0",
    ]


def test_explicit_version_must_match_impact_and_move_forward(prompt):
    publish(prompt, V1, "major")
    with pytest.raises(DomainError) as err:
        publish(prompt, V1 + "!", "minor", version="2.0.0")
    assert err.value.field == "version"
    with pytest.raises(DomainError) as err:
        publish(prompt, V1 + "!", "patch", version="0.9.9")
    assert err.value.field == "version"
    assert publish(prompt, V1 + "!", "minor", version="1.3.0").version == "1.3.0"


def test_removing_a_variable_requires_a_major_change(prompt):
    publish(prompt, V1, "major")
    with pytest.raises(DomainError) as err:
        publish(prompt, "Qualify leads for {{ product }}.", "minor")
    assert err.value.field == "impact"
    assert "customer" in err.value.message
    assert "major" in err.value.message
    assert Version.objects.count() == 1  # nothing half-written
    v = publish(prompt, "Qualify leads for {{ product }}.", "major")
    assert v.version == "2.0.0"
    assert any("customer" in c["change"] and c["impact"] == "major" for c in v.detected_changes)


def test_adding_an_optional_variable_is_minor_and_a_required_one_major(prompt):
    publish(prompt, V1, "major")
    optional = [{"name": "product"}, {"name": "customer"}, {"name": "region", "required": False}]
    with pytest.raises(DomainError):
        publish(prompt, V1 + " {{ region }}", "patch", input_variables=optional)
    assert (
        publish(prompt, V1 + " {{ region }}", "minor", input_variables=optional).version == "1.1.0"
    )
    with pytest.raises(DomainError, match="major"):
        publish(
            prompt,
            V1 + " {{ region }} {{ budget }}",
            "minor",
            input_variables=[*optional, {"name": "budget"}],
        )


def test_json_interface_changes(acme, author):
    ruleset = services.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="routing-ruleset"),
        tenant=acme,
        slug="routes",
        title="Routes",
        actor=author,
    )
    schema = {
        "type": "object",
        "properties": {"intent": {"type": "string"}},
        "required": ["intent"],
    }
    services.version_publish(
        artifact=ruleset,
        content=services.Content(data={"interface": schema, "rules": []}),
        impact="major",
        reason="x",
        actor=None,
    )
    wider = {**schema, "properties": {"intent": {"type": "string"}, "lang": {"type": "string"}}}
    v, _ = services.version_publish(
        artifact=ruleset,
        content=services.Content(data={"interface": wider, "rules": []}),
        impact="minor",
        reason="x",
        actor=None,
    )
    assert v.version == "1.1.0"
    narrower = {"type": "object", "properties": {"lang": {"type": "string"}}}
    with pytest.raises(DomainError) as err:
        services.version_publish(
            artifact=ruleset,
            content=services.Content(data={"interface": narrower, "rules": []}),
            impact="minor",
            reason="x",
            actor=None,
        )
    assert "intent" in err.value.message
    assert err.value.field == "impact"


def test_json_content_is_validated_against_the_class_schema(acme, author, make_user):
    root = make_user("root")
    from accounts.services import role_grant

    role_grant(user=root, role="administrator", tenant=None, actor=None)
    cls = services.artifact_class_create(
        slug="feature-config",
        name="Feature config",
        content_kind="json",
        content_schema={
            "type": "object",
            "required": ["enabled"],
            "properties": {"enabled": {"type": "boolean"}},
        },
        actor=root,
    )
    assert Event.objects.filter(
        kind=EventKind.ARTIFACT_CLASS_CREATED, payload__slug="feature-config"
    ).exists()
    art = services.artifact_create(
        artifact_class=cls, tenant=acme, slug="flags", title="Flags", actor=author
    )
    with pytest.raises(DomainError) as err:
        services.version_publish(
            artifact=art,
            content=services.Content(data={"enabled": "yes"}),
            impact="major",
            reason="x",
            actor=None,
        )
    assert err.value.field == "content"
    assert "enabled" in err.value.message
    with pytest.raises(DomainError) as err:
        services.version_publish(
            artifact=art,
            content=services.Content(text="{not json"),
            impact="major",
            reason="x",
            actor=None,
        )
    assert "not valid JSON" in err.value.message
    with pytest.raises(Forbidden):
        services.artifact_class_create(slug="nope", name="x", content_kind="text", actor=author)
    with pytest.raises(DomainError) as err:
        services.artifact_class_create(
            slug="bad", name="x", content_kind="json", content_schema={"type": 12}, actor=root
        )
    assert err.value.field == "content_schema"


def test_files_go_to_the_content_addressed_store_with_a_size_limit(
    globex, make_user, settings, tmp_path
):
    settings.REGISTRY_BLOB_DIR = tmp_path
    settings.REGISTRY_MAX_FILE_BYTES = 10
    model = services.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="model"),
        tenant=globex,
        slug="clf",
        title="Classifier",
        actor=None,
    )
    v, _ = services.version_publish(
        artifact=model,
        content=services.Content(file_bytes=b"weights", file_name="w.bin"),
        impact="major",
        reason="x",
        actor=None,
    )
    digest = hashlib.sha256(b"weights").hexdigest()
    assert v.content_sha256 == digest
    assert (tmp_path / digest[:2] / digest).read_bytes() == b"weights"
    assert check_version(v).ok
    with pytest.raises(DomainError) as err:
        services.version_publish(
            artifact=model,
            content=services.Content(file_bytes=b"x" * 11),
            impact="major",
            reason="x",
            actor=None,
        )
    assert err.value.field == "file"
    assert "limit is 10" in err.value.message
    (tmp_path / digest[:2] / digest).write_bytes(b"tampered")
    assert not check_version(v).ok


def test_dependencies_must_exist_and_match_their_hash(acme, author, prompt_class):
    tone = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="tone", title="Tone", actor=author
    )
    t1 = publish(tone, "Be nice.", "major")
    target = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="reply", title="Reply", actor=author
    )
    v = publish(target, "Reply.", "major", dependencies=[f"tone:1.0.0#{t1.manifest_sha256}"])
    assert [d.upstream for d in selectors.upstream_of(v)] == [t1]
    assert [d.version for d in selectors.downstream_of(t1)] == [v]
    for bad, message in [
        ("tone@1.0.0", "must be pinned"),
        (f"tone:1.0.0#{'0' * 64}", "pinned to"),
        (f"ghost:1.0.0#{t1.manifest_sha256}", "No version"),
    ]:
        with pytest.raises(DomainError) as err:
            publish(target, "Reply!", "minor", dependencies=[bad])
        assert err.value.field == "dependencies", err.value.message
        assert message in err.value.message, err.value.message
    assert Version.objects.filter(artifact=target).count() == 1


def test_only_members_may_author(prompt, make_user, globex):
    outsider = make_user("out", globex="administrator")
    with pytest.raises(Forbidden):
        services.version_publish(
            artifact=prompt,
            content=services.Content(text="x"),
            impact="major",
            reason="x",
            actor=outsider,
        )


def test_lookup_by_every_reference_form(prompt, acme):
    v = publish(prompt, V1, "major")
    from registry.models import Artifact

    Artifact.objects.filter(pk=prompt.pk).update(active_version=v)  # unversioned: the active one
    for text, tenant in [
        ("prompt/acme/qualify-lead/1.0.0", None),
        ("prompt/acme/qualify-lead", None),
        ("qualify-lead@1.0.0", "acme"),
        (f"qualify-lead:1.0.0#{v.manifest_sha256}", "acme"),
    ]:
        assert selectors.version_by_reference_unscoped(text, tenant=tenant) == v
    with pytest.raises(DomainError) as err:
        selectors.version_by_reference_unscoped(f"qualify-lead:1.0.0#{'a' * 64}", tenant="acme")
    assert err.value.field == "sha256"
    with pytest.raises(DomainError):
        selectors.version_by_reference_unscoped("qualify-lead@1.0", tenant="acme")


def test_lookup_is_one_query(prompt, django_assert_num_queries):
    v = publish(prompt, V1, "major")
    for i in range(5):
        publish(prompt, V1 + str(i), "patch")
    with django_assert_num_queries(1):
        assert (
            selectors.version_by_reference_unscoped("qualify-lead@1.0.0", tenant="acme").pk == v.pk
        )


def test_pack_verification_walks_dependencies(acme, author, prompt_class):

    tone = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="tone", title="Tone", actor=author
    )
    t1 = publish(tone, "Be nice.", "major")
    target = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="reply", title="Reply", actor=author
    )
    v = publish(target, "Reply.", "major", dependencies=[t1.pinned])
    assert verify_versions([v]) == (2, None)
    guard = __import__("contextlib").nullcontext()
    from django.db import connection

    if connection.vendor == "postgresql":
        import pgtrigger

        guard = pgtrigger.ignore("registry.Version:version_immutable")
    with guard, connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_version SET content_text = %s WHERE id = %s",
            ["Be mean.", t1.pk.hex if connection.vendor == "sqlite" else str(t1.pk)],
        )
    _checked, failure = verify_versions([Version.objects.get(pk=v.pk)])
    assert failure is not None
    assert failure.version.pk == t1.pk
    assert "content" in failure.reason


def test_publish_is_atomic(prompt):
    publish(prompt, V1, "major")
    before = (Version.objects.count(), Event.objects.count())

    def publish_then_fail() -> None:
        with transaction.atomic():
            publish(prompt, V1 + "!", "minor")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        publish_then_fail()
    assert (Version.objects.count(), Event.objects.count()) == before


# --- input that must be refused (issue 10) ---------------------------------------------------


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_an_empty_prompt_is_refused(prompt, text):
    with pytest.raises(DomainError) as err:
        publish(prompt, text, "major")
    assert err.value.field == "content"
    assert "required" in err.value.message
    with pytest.raises(DomainError):
        services.version_plan(artifact=prompt, content=services.Content(text=text), impact="major")
    assert not Version.objects.filter(artifact=prompt).exists()


def test_declared_variables_must_appear_in_the_content(prompt):
    with pytest.raises(DomainError) as err:
        publish(
            prompt,
            "Qualify {{ product }}.",
            "major",
            input_variables=[{"name": "product"}, {"name": "region"}, {"name": "customer"}],
        )
    assert err.value.field == "input_variables"
    assert "'customer', 'region'" in err.value.message
    assert not Version.objects.filter(artifact=prompt).exists()
    v = publish(
        prompt,
        "Qualify {{ product }} in {{ region }}.",
        "major",
        input_variables=[{"name": "product"}, {"name": "region", "required": False}],
    )
    assert v.input_variables == [
        {"name": "product", "required": True},
        {"name": "region", "required": False},
    ]


@pytest.fixture
def tone_template(acme, author):
    template = services.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="prompt-template"),
        tenant=acme,
        slug="brand-tone",
        title="Brand tone",
        actor=author,
    )
    return publish(template, "Speak like {{ brand }}.", "major")


def test_template_refs_are_checked_and_signed_pinned(prompt, tone_template, acme, author):
    sha = tone_template.manifest_sha256
    v = publish(
        prompt,
        "Qualify {{ product }}.",
        "major",
        metadata={"template_refs": [f"brand-tone:1.0.0#{sha}"]},
    )
    pinned = f"prompt-template/acme/brand-tone/1.0.0#{sha}"
    assert v.metadata["template_refs"] == [pinned]
    assert json.loads(v.manifest)["template_refs"] == [pinned]
    other_prompt = publish(
        services.artifact_create(
            artifact_class=ArtifactClass.objects.get(slug="prompt"),
            tenant=acme,
            slug="other",
            title="Other",
            actor=author,
        ),
        "Other.",
        "major",
    )
    for bad, message in [
        ("bogus", "must be pinned"),
        ("brand-tone@1.0.0", "must be pinned"),
        (f"brand-tone:1.0.0#{'0' * 64}", "pinned to"),
        (f"ghost:1.0.0#{sha}", "No version 'ghost:1.0.0#"),
        (f"other:1.0.0#{other_prompt.manifest_sha256}", "not a template"),
        (42, "not a reference"),
    ]:
        with pytest.raises(DomainError) as err:
            publish(prompt, "Qualify {{ product }}!", "minor", metadata={"template_refs": [bad]})
        assert err.value.field == "metadata.template_refs", bad
        assert message in err.value.message, err.value.message
    assert Version.objects.filter(artifact=prompt).count() == 1


def test_another_tenants_template_reads_like_a_missing_one(prompt, acme, globex, make_user):
    outsider = make_user("g-author", globex="member")
    theirs = services.artifact_create(
        artifact_class=ArtifactClass.objects.get(slug="prompt-template"),
        tenant=globex,
        slug="secret-tone",
        title="Secret",
        actor=outsider,
    )
    version = publish(theirs, "Whisper to {{ brand }}.", "major")
    real = f"prompt-template/globex/secret-tone/1.0.0#{version.manifest_sha256}"
    ghost = f"prompt-template/globex/no-such/1.0.0#{version.manifest_sha256}"
    wrong = f"prompt-template/globex/secret-tone/1.0.0#{'0' * 64}"
    messages = []
    for ref in (real, ghost, wrong):
        with pytest.raises(DomainError) as err:
            publish(prompt, "Qualify {{ product }}.", "major", metadata={"template_refs": [ref]})
        assert err.value.field == "metadata.template_refs"
        messages.append(err.value.message.replace(ref, "REF"))
    assert messages == ["No version 'REF'."] * 3  # no hash, no hint that it exists
    assert version.manifest_sha256[:12] not in "".join(messages)


def test_policy_pack_hash_must_name_a_policy_pack_of_the_tenant(
    prompt, acme, globex, make_user, author
):
    pack_class = ArtifactClass.objects.get(slug="policy-pack")
    pack = services.artifact_create(
        artifact_class=pack_class, tenant=acme, slug="pack", title="Pack", actor=author
    )
    ours, _ = services.version_publish(
        artifact=pack,
        content=services.Content(data={"prohibited": [], "personal_data": []}),
        impact="major",
        reason="first",
        actor=None,
    )
    other = make_user("g-author", globex="member")
    theirs, _ = services.version_publish(
        artifact=services.artifact_create(
            artifact_class=pack_class, tenant=globex, slug="pack", title="Pack", actor=other
        ),
        content=services.Content(data={"prohibited": [], "personal_data": [], "name": "g"}),
        impact="major",
        reason="first",
        actor=None,
    )
    for bad, message in [
        ("not-a-hash", "64 lowercase hex"),
        (ours.manifest_sha256.upper(), "64 lowercase hex"),
        (ours.manifest_sha256[:12], "64 lowercase hex"),
        ("0" * 64, f"No policy-pack version with hash {'0' * 64}."),
        (theirs.manifest_sha256, f"No policy-pack version with hash {theirs.manifest_sha256}."),
        (prompt_hash := publish(prompt, "Hi {{ x }}.", "major").manifest_sha256, "No policy-pack"),
    ]:
        with pytest.raises(DomainError) as err:
            publish(prompt, "Qualify {{ x }}!", "minor", metadata={"policy_pack_hash": bad})
        assert err.value.field == "metadata.policy_pack_hash", bad
        assert message in err.value.message, err.value.message
    assert prompt_hash
    v = publish(
        prompt, "Qualify {{ x }}!", "minor", metadata={"policy_pack_hash": ours.manifest_sha256}
    )
    assert json.loads(v.manifest)["policy_pack_hash"] == ours.manifest_sha256


def test_a_pin_on_another_tenants_version_reads_exactly_as_a_missing_one(
    acme, globex, author, prompt_class
):
    """No platform-shared artifacts exist: a pin across tenants is refused before any lookup,
    so the refusal neither confirms that the version exists nor shows its hash."""
    theirs = services.artifact_create(
        artifact_class=prompt_class, tenant=globex, slug="x", title="Theirs", actor=None
    )
    their_v1 = publish(theirs, "Globex secret.", "major")
    target = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="reply", title="Reply", actor=author
    )
    answers = {}
    for slug, sha in [
        ("x", "0" * 64),  # exists, wrong hash: used to answer "pinned to 000… but … has hash"
        ("x", their_v1.manifest_sha256),  # exists, right hash: used to make the dependency
        ("ghost", "0" * 64),  # does not exist
    ]:
        with pytest.raises(DomainError) as err:
            publish(target, "Reply.", "major", dependencies=[f"prompt/globex/{slug}:1.0.0#{sha}"])
        assert err.value.field == "dependencies"
        answers[(slug, sha)] = err.value.message.replace(f"/{slug}", "/SLUG").replace(sha, "SHA")
    assert len(set(answers.values())) == 1, answers
    message = next(iter(answers.values()))
    assert "No version" in message
    assert their_v1.manifest_sha256[:12] not in message
    assert not Version.objects.filter(artifact=target).exists()


def test_a_platform_administrator_may_not_pin_across_tenants_either(
    acme, globex, prompt_class, make_user
):
    root = make_user("root")
    root.is_superuser = True
    root.save(update_fields=["is_superuser"])
    theirs = services.artifact_create(
        artifact_class=prompt_class, tenant=globex, slug="x", title="Theirs", actor=None
    )
    their_v1 = publish(theirs, "Globex secret.", "major")
    target = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="reply", title="Reply", actor=None
    )
    with pytest.raises(DomainError) as err:
        services.version_publish(
            artifact=target,
            content=services.Content(text="Reply."),
            impact="major",
            reason="x",
            actor=root,
            dependencies=[their_v1.pinned],
        )
    assert "No version" in err.value.message
