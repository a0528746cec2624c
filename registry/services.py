"""Every change to the registry: classes, artifacts, and publishing versions.

Publishing hashes and signs a canonical manifest, records lineage, and appends
``artifact.version_published`` (and ``prompt_published`` for prompts) in the
same transaction. Versions are never edited or deleted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jsonschema
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from accounts.selectors import is_member, is_platform_admin
from governance.kernel.errors import Conflict, DomainError, Forbidden
from governance.kernel.events import keys as keystore
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    EventSpec,
    active_key,
    canonical,
    event_record,
    events_record,
)
from governance.kernel.inputs import clean_text
from registry import hooks, permissions, selectors
from registry.choices import BUILTIN_CLASSES, ContentKind, Stage
from registry.models import (
    SLUG_RE,
    Artifact,
    ArtifactClass,
    Deprecation,
    Retirement,
    Version,
    VersionDependency,
    VersionState,
)
from registry.storage import blob_put
from registry.versioning import (
    ContractChange,
    Impact,
    SemanticVersioner,
    Variable,
    VersioningError,
    schema_changes,
    template_variables,
    variable_changes,
)

TEXT_CLASSES_WITH_VARIABLES = {"prompt", "prompt-template", "response-template"}
versioner = SemanticVersioner()


def _require_author(actor: User | None, tenant: Tenant) -> None:
    """Any member of a tenant may author; the system (CLI, import) may too."""
    permissions.can_publish(actor, tenant).require()


def _check_slug(slug: str) -> None:
    if not re.match(SLUG_RE, slug or ""):
        raise DomainError("Use lowercase letters, digits and hyphens (1-100).", field="slug")


def install_builtin_classes() -> int:
    """Make sure the built-in classes exist (idempotent; the migration does the same)."""
    made = 0
    for slug, name, kind, pointer, description in BUILTIN_CLASSES:
        _, created = ArtifactClass.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "content_kind": kind,
                "interface_pointer": pointer,
                "description": description,
                "builtin": True,
            },
        )
        made += int(created)
    return made


def artifact_class_check(*, content_schema: Any, interface_pointer: str) -> None:
    """The rules a class's schema and interface pointer follow (forms call this too)."""
    if content_schema is not None:
        if not isinstance(content_schema, dict):
            raise DomainError("A JSON Schema is a JSON object.", field="content_schema")
        try:
            jsonschema.validators.validator_for(content_schema).check_schema(content_schema)
        except jsonschema.SchemaError as exc:
            raise DomainError(
                f"Not a valid JSON Schema: {exc.message}", field="content_schema"
            ) from exc
    if interface_pointer and not interface_pointer.startswith("/"):
        raise DomainError("A JSON pointer starts with '/'.", field="interface_pointer")


@transaction.atomic
def artifact_class_create(
    *,
    slug: str,
    name: str,
    content_kind: str,
    actor: User | None,
    content_schema: dict[str, Any] | None = None,
    interface_pointer: str = "",
    description: str = "",
) -> ArtifactClass:
    """Add a class without code (platform administrators)."""
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can add artifact classes.")
    _check_slug(slug)
    if content_kind not in ContentKind.values:
        raise DomainError(
            f"Content kind must be one of: {', '.join(ContentKind.values)}.", field="content_kind"
        )
    artifact_class_check(content_schema=content_schema, interface_pointer=interface_pointer)
    if ArtifactClass.objects.filter(slug=slug).exists():
        raise Conflict(f"Artifact class '{slug}' already exists.", field="slug")
    made = ArtifactClass.objects.create(
        slug=slug,
        name=name.strip() or slug,
        content_kind=content_kind,
        content_schema=content_schema,
        interface_pointer=interface_pointer,
        description=description,
        created_by=actor,
    )
    event_record(
        kind=EventKind.ARTIFACT_CLASS_CREATED,
        actor=actor,
        subject=made,
        payload={
            "slug": slug,
            "content_kind": content_kind,
            "has_schema": content_schema is not None,
        },
    )
    return made


_UNCHANGED: Any = object()


@transaction.atomic
def artifact_class_update(
    *,
    artifact_class: ArtifactClass,
    actor: User | None,
    name: str | None = None,
    description: str | None = None,
    content_schema: Any = _UNCHANGED,
    interface_pointer: str | None = None,
    reason: str = "",
) -> ArtifactClass:
    """Change a class's name, description, content schema or interface pointer.

    Platform administrators only; the slug and content kind never change. The
    event holds the old and new value of every field that changed (none: no
    event). A new schema applies to versions published from now on.
    """
    if actor is not None and not is_platform_admin(actor):
        raise Forbidden("Only a platform administrator can change artifact classes.")
    reason = clean_text(reason, "reason", required=False, limit=500)
    current = ArtifactClass.objects.select_for_update().get(pk=artifact_class.pk)
    wanted: dict[str, Any] = {}
    if name is not None:
        wanted["name"] = clean_text(name, "name", limit=200)
    if description is not None:
        wanted["description"] = clean_text(description, "description", required=False)
    if interface_pointer is not None:
        wanted["interface_pointer"] = clean_text(
            interface_pointer, "interface_pointer", required=False, limit=200
        )
    if content_schema is not _UNCHANGED:
        wanted["content_schema"] = content_schema
    artifact_class_check(
        content_schema=wanted.get("content_schema", current.content_schema),
        interface_pointer=wanted.get("interface_pointer", current.interface_pointer),
    )
    changes = {
        field: {"old": getattr(current, field), "new": value}
        for field, value in wanted.items()
        if getattr(current, field) != value
    }
    if not changes:
        return current
    for field, change in changes.items():
        setattr(current, field, change["new"])
    current.save(update_fields=sorted(changes))
    event_record(
        kind=EventKind.ARTIFACT_CLASS_UPDATED,
        actor=actor,
        subject=current,
        payload={"slug": current.slug, "changes": changes, "reason": reason},
    )
    return current


@transaction.atomic
def artifact_create(
    *,
    artifact_class: ArtifactClass,
    tenant: Tenant,
    slug: str,
    title: str,
    actor: User | None,
    summary: str = "",
    license: str = "proprietary",
    owner: User | None = None,
) -> Artifact:
    _require_author(actor, tenant)
    _check_slug(slug)
    if not (title or "").strip():
        raise DomainError("An artifact needs a title that says what it is for.", field="title")
    owner = owner or actor
    if owner is not None and not (is_member(owner, tenant) or is_platform_admin(owner)):
        raise DomainError(f"The owner '{owner}' is not a member of '{tenant.slug}'.", field="owner")
    if Artifact.objects.filter(artifact_class=artifact_class, tenant=tenant, slug=slug).exists():
        raise Conflict(f"{artifact_class.slug}/{tenant.slug}/{slug} already exists.", field="slug")
    artifact = Artifact.objects.create(
        artifact_class=artifact_class,
        tenant=tenant,
        slug=slug,
        title=title.strip(),
        summary=summary,
        license=license or "proprietary",
        owner=owner,
        created_by=actor,
    )
    event_record(
        kind=EventKind.ARTIFACT_CREATED,
        actor=actor,
        tenant=tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "title": artifact.title,
            "owner": owner.username if owner else None,
        },
    )
    return artifact


@dataclass
class Content:
    """What a publish carries, before it is validated for its class."""

    text: str | None = None
    data: Any = None  # JSON value
    file_bytes: bytes | None = None
    file_name: str = ""


@dataclass
class PublishPlan:
    """What a publish would do: the version it gets and the contract changes found."""

    version: str
    previous: Version | None
    changes: list[ContractChange]
    detected: Impact | None


def _normalise_content(
    artifact_class: ArtifactClass, content: Content
) -> tuple[dict[str, Any], bytes]:
    """Validate content for the class; return the stored fields and the bytes its digest covers."""
    kind = artifact_class.content_kind
    if kind == ContentKind.TEXT:
        if content.text is None:
            raise DomainError(f"{artifact_class.slug} versions hold text.", field="content")
        if not content.text.strip():
            raise DomainError(
                f"Content is required: a {artifact_class.slug} version cannot be empty.",
                field="content",
            )
        raw = content.text.encode()
        if len(raw) > settings.REGISTRY_MAX_TEXT_BYTES:
            raise DomainError(
                f"Text is {len(raw)} bytes; the limit is {settings.REGISTRY_MAX_TEXT_BYTES}.",
                field="content",
            )
        return {"content_text": content.text, "content_size": len(raw)}, raw
    if kind == ContentKind.JSON:
        data = content.data
        if data is None and content.text is not None:
            try:
                data = json.loads(content.text)
            except ValueError as exc:
                raise DomainError(f"Content is not valid JSON: {exc}", field="content") from exc
        if data is None:
            raise DomainError(f"{artifact_class.slug} versions hold JSON.", field="content")
        if artifact_class.content_schema:
            validator = jsonschema.validators.validator_for(artifact_class.content_schema)(
                artifact_class.content_schema
            )
            error = jsonschema.exceptions.best_match(validator.iter_errors(data))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise DomainError(
                    f"Content fails the class schema at {where}: {error.message}", field="content"
                )
        raw = canonical(data)
        if len(raw) > settings.REGISTRY_MAX_TEXT_BYTES:
            raise DomainError(
                f"JSON is {len(raw)} bytes; the limit is {settings.REGISTRY_MAX_TEXT_BYTES}.",
                field="content",
            )
        return {"content_json": data, "content_size": len(raw)}, raw
    if not content.file_bytes:  # None, or an empty upload
        raise DomainError(
            f"{artifact_class.slug} versions hold an uploaded file, and it cannot be empty.",
            field="file",
        )
    if len(content.file_bytes) > settings.REGISTRY_MAX_FILE_BYTES:
        raise DomainError(
            f"File is {len(content.file_bytes)} bytes; the limit is {settings.REGISTRY_MAX_FILE_BYTES}.",
            field="file",
        )
    return {
        "content_name": content.file_name[:255],
        "content_size": len(content.file_bytes),
    }, content.file_bytes


def _variables(
    artifact_class: ArtifactClass, content: Content, declared: Sequence[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    if artifact_class.slug not in TEXT_CLASSES_WITH_VARIABLES:
        return []
    if declared is not None:
        seen = set()
        out = []
        for item in declared:
            name = str(item.get("name", "")).strip()
            if not name or not name.replace("_", "a").replace(".", "a").isalnum():
                raise DomainError(f"'{name}' is not a variable name.", field="input_variables")
            if name in seen:
                raise DomainError(f"Variable '{name}' is declared twice.", field="input_variables")
            seen.add(name)
            out.append({"name": name, "required": bool(item.get("required", True))})
        used = set(template_variables(content.text or ""))
        missing = [name for name in seen if name not in used]
        if missing:
            raise DomainError(
                "Declared variable(s) not used in the content: "
                + ", ".join(f"'{n}'" for n in sorted(missing))
                + "; use each as {{ name }} or do not declare it.",
                field="input_variables",
            )
        return out
    return [{"name": n, "required": True} for n in template_variables(content.text or "")]


def _interface(artifact_class: ArtifactClass, data: Any) -> Any:
    pointer = artifact_class.interface_pointer
    if not pointer or data is None:
        return None
    node = data
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node if isinstance(node, dict) else None


def _contract_changes(
    artifact: Artifact,
    previous: Version | None,
    fields: dict[str, Any],
    variables: list[dict[str, Any]],
) -> list[ContractChange]:
    if previous is None:
        return []
    cls = artifact.artifact_class
    if cls.slug in TEXT_CLASSES_WITH_VARIABLES:
        old = [Variable(v["name"], v.get("required", True)) for v in previous.input_variables]
        new = [Variable(v["name"], v.get("required", True)) for v in variables]
        return variable_changes(old, new)
    if cls.content_kind == ContentKind.JSON and cls.interface_pointer:
        return schema_changes(
            _interface(cls, previous.content_json), _interface(cls, fields.get("content_json"))
        )
    return []


def _parse_impact(impact: str | Impact) -> Impact:
    if isinstance(impact, Impact):
        return impact
    try:
        return Impact.parse(impact)
    except VersioningError as exc:
        raise DomainError(str(exc), field="impact") from exc


def _metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    metadata = dict(metadata or {})
    allowed = {
        "pinned_models",
        "policy_pack_hash",
        "environment_fingerprint",
        "labels",
        "template_refs",
    }
    unknown = set(metadata) - allowed
    if unknown:
        raise DomainError(f"Unknown metadata: {', '.join(sorted(unknown))}.", field="metadata")
    if not isinstance(metadata.get("pinned_models", []), list):
        raise DomainError(
            "pinned_models is a list of model identifiers.", field="metadata.pinned_models"
        )
    if not isinstance(metadata.get("labels", {}), dict):
        raise DomainError("labels is an object of name: value.", field="metadata.labels")
    if not isinstance(metadata.get("template_refs", []), list):
        raise DomainError("template_refs is a list of references.", field="metadata.template_refs")
    return metadata


TEMPLATE_CLASSES = ("prompt-template", "response-template")
SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _in_scope_version(tenant: Tenant, text: Any, field: str) -> Version:
    """The version a pinned reference names, in ``tenant`` only.

    Another tenant's version reads exactly like a missing one: same message, no hash.
    """
    if not isinstance(text, str):
        raise DomainError(f"'{text}' is not a reference.", field=field)
    ref = selectors.parse(text, tenant=tenant.slug)
    if not ref.version or not ref.sha256 or len(ref.sha256) != 64:
        raise DomainError(
            f"'{text}' must be pinned with a version and its full hash (slug:version#sha256).",
            field=field,
        )
    if ref.tenant != tenant.slug:
        raise DomainError(f"No version '{ref}'.", field=field)
    try:
        return selectors.version_in_tenant(ref, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _checked_metadata_refs(tenant: Tenant, meta: dict[str, Any]) -> dict[str, Any]:
    """Check what the manifest will sign: template references and the policy pack hash.

    Each template reference must name a template version of this tenant by its full hash
    (stored in its pinned form); ``policy_pack_hash`` must be the hash of a policy-pack
    version of this tenant. Nothing unchecked is signed.
    """
    field = "metadata.template_refs"
    refs = []
    for text in meta.get("template_refs", []):
        found = _in_scope_version(tenant, text, field)
        if found.artifact.artifact_class.slug not in TEMPLATE_CLASSES:
            raise DomainError(
                f"'{text}' is a {found.artifact.artifact_class.slug}, not a template "
                f"({' or '.join(TEMPLATE_CLASSES)}).",
                field=field,
            )
        refusal = selectors.lifecycle_refusal(found)
        if refusal is not None:
            raise DomainError(f"'{text}': {refusal}.", field=field)
        refs.append(found.pinned)
    if "template_refs" in meta:
        meta["template_refs"] = refs
    if "policy_pack_hash" in meta:
        digest = meta["policy_pack_hash"]
        if not isinstance(digest, str) or not SHA256_RE.fullmatch(digest):
            raise DomainError(
                "policy_pack_hash must be the full SHA-256 (64 lowercase hex digits) of a "
                "policy-pack version.",
                field="metadata.policy_pack_hash",
            )
        if not Version.objects.filter(
            artifact__tenant=tenant,
            artifact__artifact_class__slug="policy-pack",
            manifest_sha256=digest,
        ).exists():
            raise DomainError(
                f"No policy-pack version with hash {digest}.", field="metadata.policy_pack_hash"
            )
    return meta


def _resolve_dependencies(tenant: Tenant, references: Sequence[str]) -> list[tuple[str, Version]]:
    resolved = []
    for text in references:
        ref = selectors.parse(text, tenant=tenant.slug)
        if not ref.version or not ref.sha256 or len(ref.sha256) != 64:
            raise DomainError(
                f"Dependency '{text}' must be pinned with a version and its full hash (slug:version#sha256).",
                field="dependencies",
            )
        try:
            upstream = selectors.version_in_tenant(ref, tenant=tenant)
        except DomainError as exc:
            raise DomainError(f"Dependency '{text}': {exc.message}", field="dependencies") from exc
        refusal = selectors.lifecycle_refusal(upstream)
        if refusal is not None:
            raise DomainError(f"Dependency '{text}': {refusal}.", field="dependencies")
        resolved.append((upstream.pinned, upstream))
    return resolved


def version_plan(
    *,
    artifact: Artifact,
    content: Content,
    impact: str | Impact,
    version: str | None = None,
    input_variables: Sequence[dict[str, Any]] | None = None,
) -> PublishPlan:
    """Dry run: the version a publish would get, and the contract changes it carries."""
    declared = _parse_impact(impact)
    fields, _ = _normalise_content(artifact.artifact_class, content)
    variables = _variables(artifact.artifact_class, content, input_variables)
    previous = selectors.latest_version(artifact)
    changes = _contract_changes(artifact, previous, fields, variables)
    try:
        versioner.check_impact(declared, changes)
        number = versioner.accept(previous.version if previous else None, declared, version)
    except VersioningError as exc:
        raise DomainError(str(exc), field=getattr(exc, "field", "version")) from exc
    detected = max((c.impact for c in changes), default=None)
    return PublishPlan(number, previous, changes, detected)


@transaction.atomic
def version_publish(
    *,
    artifact: Artifact,
    content: Content,
    impact: str | Impact,
    reason: str,
    actor: User | None,
    version: str | None = None,
    input_variables: Sequence[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    dependencies: Sequence[str] = (),
) -> tuple[Version, bool]:
    """Publish a version. Returns (version, created): the same content and metadata again is a no-op."""
    _require_author(actor, artifact.tenant)
    if not (reason or "").strip():
        raise DomainError("Say why this version exists (the change reason).", field="reason")
    declared = _parse_impact(impact)
    cls = artifact.artifact_class
    fields, digest_bytes = _normalise_content(cls, content)
    content_sha256 = hashlib.sha256(digest_bytes).hexdigest()
    variables = _variables(cls, content, input_variables)
    meta = _checked_metadata_refs(artifact.tenant, _metadata(metadata))
    deps = _resolve_dependencies(artifact.tenant, dependencies)
    # Serialise publishes of one artifact so two never get the same number.
    artifact = (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("artifact_class", "tenant", "owner")
        .get(pk=artifact.pk)
    )
    if version is not None:
        existing = Version.objects.filter(artifact=artifact, version=version).first()
        if existing is not None:
            same = (
                existing.content_sha256 == content_sha256
                and existing.input_variables == variables
                and existing.metadata == meta
                and existing.declared_impact == declared.label
                and existing.change_reason == reason.strip()
                and sorted(d.reference for d in existing.dependencies.all())
                == sorted(p for p, _ in deps)
            )
            if same:
                return existing, False
            raise Conflict(
                f"{artifact.path}/{version} is already published with different content or metadata; "
                "published versions never change: publish a new version.",
                field="version",
            )
    previous = selectors.latest_version(artifact)
    changes = _contract_changes(artifact, previous, fields, variables)
    try:
        versioner.check_impact(declared, changes)
        number = versioner.accept(previous.version if previous else None, declared, version)
    except VersioningError as exc:
        raise DomainError(str(exc), field=getattr(exc, "field", "version")) from exc
    if content.file_bytes is not None and cls.content_kind == ContentKind.FILE:
        blob_put(content.file_bytes)
    now = timezone.now()
    key = active_key()
    manifest_obj = {
        "v": 1,
        "artifact": artifact.path,
        "version": number,
        "content": {
            "kind": cls.content_kind,
            "sha256": content_sha256,
            "size": fields["content_size"],
        },
        "input_variables": variables,
        "change_reason": reason.strip(),
        "impact": declared.label,
        "detected_changes": [{"impact": c.impact.label, "change": c.description} for c in changes],
        "dependencies": sorted(p for p, _ in deps),
        "created_by": actor.username if actor else None,
        "created_at": now.isoformat(),
        **{k: meta[k] for k in sorted(meta)},
    }
    manifest = canonical(manifest_obj)
    manifest_sha256 = hashlib.sha256(manifest).hexdigest()
    # The artifact row is locked, so (artifact, ordinal) and (artifact, version) are free.
    published = Version.objects.create(
        artifact=artifact,
        version=number,
        ordinal=(previous.ordinal if previous else 0) + 1,
        content_kind=cls.content_kind,
        content_sha256=content_sha256,
        input_variables=variables,
        change_reason=reason.strip(),
        declared_impact=declared.label,
        detected_changes=manifest_obj["detected_changes"],
        metadata=meta,
        manifest=manifest,
        manifest_sha256=manifest_sha256,
        key_id=key.kid,
        signature=keystore.sign(key.kid, bytes.fromhex(manifest_sha256)),
        created_at=now,
        created_by=actor,
        **fields,
    )
    for pinned, upstream in deps:
        VersionDependency.objects.create(version=published, upstream=upstream, reference=pinned)
    if artifact.recommended_version_id is None:
        # The first version is recommended until its owner or an administrator picks another.
        Artifact.objects.filter(pk=artifact.pk).update(recommended_version=published.pk)
    payload = {
        "path": published.path,
        "version": number,
        "sha256": manifest_sha256,
        "impact": declared.label,
        "reason": published.change_reason,
        "detected_changes": manifest_obj["detected_changes"],
        "dependencies": manifest_obj["dependencies"],
    }
    specs = [
        EventSpec(
            EventKind.ARTIFACT_VERSION_PUBLISHED,
            actor,
            tenant=artifact.tenant,
            subject=published,
            payload=payload,
        )
    ]
    if cls.slug == "prompt":
        specs.append(
            EventSpec(
                EventKind.PROMPT_PUBLISHED,
                actor,
                tenant=artifact.tenant,
                subject=published,
                payload={
                    "prompt": f"{artifact.slug}@{number}",
                    "rationale": published.change_reason,
                    "owner": artifact.owner.username if artifact.owner else None,
                    "related_manifests": manifest_obj["dependencies"]
                    + list(meta.get("template_refs", [])),
                },
            )
        )
    events_record(specs)  # both under one lock of the chain head
    return published, True


@transaction.atomic
def artifact_recommend(*, artifact: Artifact, version: Version, actor: User | None) -> Artifact:
    """Set the version users should take by default (owner or tenant administrator)."""
    if version.artifact_id != artifact.pk:
        raise DomainError(f"{version.path} is not a version of {artifact.path}.", field="version")
    permissions.can_recommend(actor, artifact).require()
    refusal = selectors.lifecycle_refusal(version)
    if refusal is not None:  # deprecated, removed or retired: never recommended
        raise Conflict(f"Cannot recommend it: {refusal}.", field="version")
    Artifact.objects.filter(pk=artifact.pk).update(recommended_version=version)
    event_record(
        kind=EventKind.ARTIFACT_RECOMMENDED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={
            "path": artifact.path,
            "version": version.version,
            "sha256": version.manifest_sha256,
        },
    )
    artifact.refresh_from_db()
    return artifact


# --- lifecycle: stages, deprecation, removal, retirement, ownership -------------------------


def version_stage_set(
    *, version: Version, stage: str, actor: User | None, change: Any | None = None
) -> bool:
    """Record a version's new lifecycle stage (and its event); False if it already stands there."""
    state, _ = VersionState.objects.select_for_update().get_or_create(version=version)
    if state.stage == stage:
        return False
    before = state.stage
    VersionState.objects.filter(pk=state.pk).update(stage=stage, changed_at=timezone.now())
    event_record(
        kind=EventKind.VERSION_STAGE_CHANGED,
        actor=actor,
        tenant=version.artifact.tenant,
        subject=version,
        payload={
            "path": version.path,
            "from": before,
            "to": stage,
            "change": change.reference if change else None,
        },
    )
    return True


def _in_tenant(tenant: Tenant, item: Version | str, field: str) -> Version:
    """A version of ``tenant`` by object or reference; other tenants' versions read as missing."""
    if isinstance(item, Version):
        if item.artifact.tenant_id != tenant.pk:
            raise DomainError(f"No version '{item.path}' in {tenant.slug}.", field=field)
        return item
    try:
        ref = selectors.parse(str(item), tenant=tenant.slug)
        if ref.tenant != tenant.slug or not ref.version:
            raise DomainError(f"No version '{item}' in {tenant.slug}.", field=field)
        return selectors.version_in_tenant(ref, tenant=tenant)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _recommendation_withdraw(*, version: Version, actor: User | None, why: str) -> list[EventSpec]:
    """Move the recommendation off a version that is being deprecated or retired.

    It goes to the artifact's active version when there is one (never the version itself,
    which may not be deprecated or retired while active), else nowhere. Returns the event
    of the move (none if it was not recommended), for the caller to record after its own.
    """
    artifact = Artifact.objects.select_related("active_version").get(pk=version.artifact_id)
    if artifact.recommended_version_id != version.pk:
        return []
    to = artifact.active_version
    Artifact.objects.filter(pk=artifact.pk).update(recommended_version=to)
    return [
        EventSpec(
            EventKind.ARTIFACT_RECOMMENDED,
            actor,
            tenant=version.artifact.tenant,
            subject=artifact,
            payload={
                "path": version.artifact.path,
                "version": to.version if to else None,
                "sha256": to.manifest_sha256 if to else None,
                "previous": version.version,
                "reason": why,
            },
        )
    ]


@transaction.atomic
def version_deprecate(
    *,
    version: Version,
    replacement: Version | str,
    reason: str,
    remove_after_days: int,
    actor: User | None,
    override_reason: str = "",
) -> Deprecation:
    """Deprecate a version: its replacement, why, and when it stops resolving (after a grace period).

    Refused while it is the active version (promote the replacement first), and while
    active versions still depend on it unless an administrator overrides with a reason.
    """
    version = (
        Version.objects.select_for_update(of=("self",))
        .select_related("artifact__tenant", "artifact__artifact_class", "artifact__owner")
        .get(pk=version.pk)
    )
    tenant = version.artifact.tenant
    permissions.can_deprecate(actor, version).require()
    if Deprecation.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is already deprecated.", field="version")
    if Retirement.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is retired (simulation-only).", field="version")
    if version.artifact.active_version_id == version.pk:
        raise Conflict(
            f"{version.path} is the active version; promote its replacement first.",
            field="version",
        )
    new = _in_tenant(tenant, replacement, "replacement")
    if new.pk == version.pk:
        raise DomainError("A version cannot replace itself.", field="replacement")
    if new.artifact.artifact_class_id != version.artifact.artifact_class_id:
        raise DomainError(
            f"{new.path} is a {new.artifact.artifact_class.slug}, not a "
            f"{version.artifact.artifact_class.slug}.",
            field="replacement",
        )
    if (
        Deprecation.objects.filter(version=new).exists()
        or Retirement.objects.filter(version=new).exists()
    ):
        raise DomainError(f"{new.path} is itself deprecated or retired.", field="replacement")
    reason = clean_text(reason, "reason")
    if isinstance(remove_after_days, bool) or not isinstance(remove_after_days, int):
        raise DomainError("Give the grace period as a whole number of days.", field="remove_after")
    if remove_after_days < settings.DEPRECATION_MIN_GRACE_DAYS:
        raise DomainError(
            f"The grace period is at least {settings.DEPRECATION_MIN_GRACE_DAYS} days.",
            field="remove_after",
        )
    if remove_after_days > 3650:
        raise DomainError("The grace period is at most 3650 days.", field="remove_after")
    dependents = sorted(
        d.version.path
        for d in VersionDependency.objects.filter(upstream=version).select_related(
            "version__artifact__artifact_class", "version__artifact__tenant"
        )
        if d.version.artifact.active_version_id == d.version_id
    )
    override_reason = (override_reason or "").strip()
    if dependents and not override_reason:
        raise Conflict(
            f"{version.path} is still used by active versions: {', '.join(dependents)}. "
            "An administrator can override with a reason.",
            field="override_reason",
        )
    if override_reason and len(override_reason) > 2000:
        raise DomainError("At most 2000 characters.", field="override_reason")
    now = timezone.now()
    deprecation = Deprecation.objects.create(
        version=version,
        replacement=new,
        reason=reason,
        deprecated_at=now,
        deprecated_by=actor,
        remove_after=now + timedelta(days=remove_after_days),
        override_reason=override_reason if dependents else "",
        dependents=dependents,
    )
    moved = _recommendation_withdraw(
        version=version, actor=actor, why=f"{version.version} was deprecated"
    )
    version_stage_set(version=version, stage=Stage.DEPRECATED, actor=actor)
    deprecated = EventSpec(
        EventKind.VERSION_DEPRECATED,
        actor,
        tenant=tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "replacement": new.pinned,
            "reason": reason,
            "remove_after": deprecation.remove_after.isoformat(),
            "dependents": dependents,
            "override_reason": deprecation.override_reason or None,
        },
    )
    events_record([deprecated, *moved])
    return deprecation


class StillServing(Conflict):
    """A deprecated version is not removed while it still serves (no silent removals)."""

    def __init__(self, message: str, *, version: Version, requests: int) -> None:
        super().__init__(message, field="version", code="still_serving")
        self.version = version
        self.requests = requests


@transaction.atomic
def deprecation_remove(*, deprecation_id: Any, now: Any = None) -> Deprecation | None:
    """Remove one deprecated version from resolution, with its ``version.removed`` event.

    None when there is nothing to do: already removed (another sweep got there first) or
    active again (a rollback brought it back; the dashboard shows it as overdue). Refused
    with :class:`StillServing` (409, field ``version``, naming the count) while the version
    served requests in the last 24 hours, as runtime telemetry tells (``registry.hooks``):
    removing it would break its consumers silently. The refusal rolls this transaction back;
    the caller alerts the owner afterwards (:func:`removal_held_alert`).
    """
    now = now or timezone.now()
    deprecation = (
        Deprecation.objects.select_for_update(of=("self",))
        .select_related(
            "version__artifact__tenant",
            "version__artifact__artifact_class",
            "replacement__artifact__tenant",
            "replacement__artifact__artifact_class",
        )
        .get(pk=deprecation_id)
    )
    if deprecation.removed_at is not None:
        return None
    version = deprecation.version
    if version.artifact.active_version_id == version.pk:
        return None
    served = hooks.recent_traffic([version.pk], hours=24, now=now).get(version.pk, 0)
    if served:
        raise StillServing(
            f"{version.path} served {served} requests in the last 24 hours; it is not removed "
            f"while it serves. Move its consumers to {deprecation.replacement.path} first.",
            version=version,
            requests=served,
        )
    Deprecation.objects.filter(pk=deprecation.pk).update(removed_at=now)
    deprecation.removed_at = now
    event_record(
        kind=EventKind.VERSION_REMOVED,
        actor=None,
        tenant=version.artifact.tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "deprecated_at": deprecation.deprecated_at.isoformat(),
            "remove_after": deprecation.remove_after.isoformat(),
        },
    )
    return deprecation


@transaction.atomic
def removal_held_alert(*, refusal: StillServing, now: Any = None) -> int:
    """Tell the artifact's owner that a due removal was held because the version still serves.

    Its own transaction, run after the refused removal rolled back (a notification written
    inside the refused transaction would vanish with it). At most one a day per version
    (the dedupe key holds the date), however often the sweep runs. Returns notifications made.
    """
    from governance.kernel.notifications import (
        notification_send,  # the project floor's notifications
    )

    now = now or timezone.now()
    version = refusal.version
    owner = version.artifact.owner
    if owner is None:
        return 0
    made = notification_send(
        users=[owner],
        tenant=version.artifact.tenant,
        title=f"{version.path} is past its removal date but still serves",
        body=refusal.message,
        url=version.get_absolute_url(),
        dedupe_key=f"removal-held:{version.pk}:{now:%Y-%m-%d}",
    )
    return len(made)


def deprecations_remove_due(
    *, now: Any = None, held: list[StillServing] | None = None
) -> list[Deprecation]:
    """Remove from resolution the deprecated versions whose grace period is over (the sweep).

    Each in its own transaction with its own event (:func:`deprecation_remove`); a version
    that is active again is left alone, and one that still served traffic in the last 24
    hours is held and its owner alerted (``held`` collects those refusals): never removed
    silently.
    """
    now = now or timezone.now()
    removed = []
    due = Deprecation.objects.filter(removed_at__isnull=True, remove_after__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due):
        try:
            deprecation = deprecation_remove(deprecation_id=pk, now=now)
        except StillServing as refusal:
            removal_held_alert(refusal=refusal, now=now)
            if held is not None:
                held.append(refusal)
            continue
        if deprecation is not None:
            removed.append(deprecation)
    return removed


@transaction.atomic
def version_retire(*, version: Version, rationale: str, actor: User | None) -> Retirement:
    """Move a version that fell below its gates or was superseded to simulation-only.

    It can no longer be proposed or restored; its evaluation reports and provenance are
    kept at least until the retention period (EVIDENCE_RETENTION_DAYS) ends.
    """
    version = (
        Version.objects.select_for_update(of=("self",))
        .select_related("artifact__tenant", "artifact__artifact_class")
        .get(pk=version.pk)
    )
    tenant = version.artifact.tenant
    permissions.can_retire(actor, version).require()
    if Retirement.objects.filter(version=version).exists():
        raise Conflict(f"{version.path} is already retired.", field="version")
    if version.artifact.active_version_id == version.pk:
        raise Conflict(
            f"{version.path} is the active version; promote or roll back to another first.",
            field="version",
        )
    rationale = clean_text(rationale, "rationale")
    now = timezone.now()
    retirement = Retirement.objects.create(
        version=version,
        rationale=rationale,
        retired_at=now,
        retired_by=actor,
        retain_until=now + timedelta(days=settings.EVIDENCE_RETENTION_DAYS),
    )
    moved = _recommendation_withdraw(
        version=version, actor=actor, why=f"{version.version} was retired"
    )
    version_stage_set(version=version, stage=Stage.SIMULATION_ONLY, actor=actor)
    retired = EventSpec(
        EventKind.VERSION_RETIRED,
        actor,
        tenant=tenant,
        subject=version,
        payload={
            "path": version.path,
            "sha256": version.manifest_sha256,
            "rationale": rationale,
            "retain_until": retirement.retain_until.isoformat(),
        },
    )
    events_record([retired, *moved])
    return retirement


@transaction.atomic
def artifact_owner_set(
    *, artifact: Artifact, owner: User, actor: User | None, reason: str
) -> Artifact:
    """Hand an artifact to a new owner (an active member of its tenant); the owner or an administrator may."""
    artifact = (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("tenant", "artifact_class", "owner")
        .get(pk=artifact.pk)
    )
    permissions.can_change_owner(actor, artifact).require()
    if owner is None or not owner.is_active or not is_member(owner, artifact.tenant):
        name = owner.username if owner is not None else "nobody"
        raise DomainError(
            f"{name} is not an active member of {artifact.tenant.slug}.", field="owner"
        )
    reason = clean_text(reason, "reason", limit=2000)
    if artifact.owner_id == owner.pk:
        raise Conflict(f"{owner.username} already owns {artifact.path}.", field="owner")
    before = artifact.owner.username if artifact.owner else None
    Artifact.objects.filter(pk=artifact.pk).update(owner=owner)
    event_record(
        kind=EventKind.OWNERSHIP_CHANGED,
        actor=actor,
        tenant=artifact.tenant,
        subject=artifact,
        payload={"path": artifact.path, "from": before, "to": owner.username, "reason": reason},
    )
    artifact.refresh_from_db()
    return artifact
