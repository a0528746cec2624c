"""Publishing versions.

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
from typing import Any

import jsonschema
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from accounts.models import Tenant, User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events import keys as keystore
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import (
    EventSpec,
    active_key,
    canonical,
    events_record,
)
from registry import selectors
from registry.choices import ArtifactClass as BuiltinClass
from registry.choices import ContentKind, Determinism
from registry.models import (
    Artifact,
    ArtifactClass,
    Version,
    VersionDependency,
)
from registry.references import Reference
from registry.services.common import require_author
from registry.storage import blob_put
from registry.versioning import (
    ContractChange,
    Impact,
    SemanticVersioner,
    Variable,
    VersioningError,
    io_schema_changes,
    schema_changes,
    template_variables,
    variable_changes,
)

#: Metadata keys that carry a version's lifecycle evidence and provenance (all optional, signed).
LIFECYCLE_METADATA_KEYS = (
    "determinism",
    "evaluation_plan",
    "risk_note",
    "no_datasets",
    "pr_url",
    "io_schema",
)
TEXT_CLASSES_WITH_VARIABLES = {
    BuiltinClass.PROMPT,
    BuiltinClass.PROMPT_TEMPLATE,
    BuiltinClass.RESPONSE_TEMPLATE,
}
versioner = SemanticVersioner()


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


def _text_content(artifact_class: ArtifactClass, content: Content) -> tuple[dict[str, Any], bytes]:
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


def _schema_check(artifact_class: ArtifactClass, data: Any) -> None:
    """JSON content follows its class's schema, when the class has one."""
    if not artifact_class.content_schema:
        return
    validator = jsonschema.validators.validator_for(artifact_class.content_schema)(
        artifact_class.content_schema
    )
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise DomainError(
            f"Content fails the class schema at {where}: {error.message}", field="content"
        )


def _json_content(artifact_class: ArtifactClass, content: Content) -> tuple[dict[str, Any], bytes]:
    data = content.data
    if data is None and content.text is not None:
        try:
            data = json.loads(content.text)
        except ValueError as exc:
            raise DomainError(f"Content is not valid JSON: {exc}", field="content") from exc
    if data is None:
        raise DomainError(f"{artifact_class.slug} versions hold JSON.", field="content")
    _schema_check(artifact_class, data)
    raw = canonical(data)
    if len(raw) > settings.REGISTRY_MAX_TEXT_BYTES:
        raise DomainError(
            f"JSON is {len(raw)} bytes; the limit is {settings.REGISTRY_MAX_TEXT_BYTES}.",
            field="content",
        )
    return {"content_json": data, "content_size": len(raw)}, raw


def _file_content(artifact_class: ArtifactClass, content: Content) -> tuple[dict[str, Any], bytes]:
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


def _normalise_content(
    artifact_class: ArtifactClass, content: Content
) -> tuple[dict[str, Any], bytes]:
    """Validate content for the class; return the stored fields and the bytes its digest covers."""
    kind = artifact_class.content_kind
    if kind == ContentKind.TEXT:
        return _text_content(artifact_class, content)
    if kind == ContentKind.JSON:
        return _json_content(artifact_class, content)
    return _file_content(artifact_class, content)


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


def interface_of(artifact_class: ArtifactClass, data: Any) -> Any:
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
    metadata: dict[str, Any] | None = None,
) -> list[ContractChange]:
    if previous is None:
        return []
    cls = artifact.artifact_class
    changes: list[ContractChange] = []
    if cls.slug in TEXT_CLASSES_WITH_VARIABLES:
        old = [Variable(v["name"], v.get("required", True)) for v in previous.input_variables]
        new = [Variable(v["name"], v.get("required", True)) for v in variables]
        changes = variable_changes(old, new)
    elif cls.content_kind == ContentKind.JSON and cls.interface_pointer:
        changes = schema_changes(
            interface_of(cls, previous.content_json), interface_of(cls, fields.get("content_json"))
        )
    if artifact.action_eligible:
        # Every class, models too: the declared input/output contract (only read here; its
        # shape is checked with the rest of the metadata).
        changes += io_schema_changes(
            (previous.metadata or {}).get("io_schema"), (metadata or {}).get("io_schema")
        )
    return changes


def _compatible_within_major(
    artifact: Artifact,
    previous: Version | None,
    declared: Impact,
    changes: list[ContractChange],
) -> None:
    """An action-eligible artifact keeps its inputs and outputs compatible within a major
    version: a breaking change in a minor or patch is refused, naming what broke."""
    if previous is None or not artifact.action_eligible or declared >= Impact.MAJOR:
        return
    breaking = [c for c in changes if c.impact >= Impact.MAJOR]
    if not breaking:
        return
    major = previous.version.split(".", 1)[0]
    field = "metadata.io_schema" if breaking[0].description.startswith("metadata.") else "impact"
    raise DomainError(
        f"{artifact.path} is action-eligible: its inputs and outputs stay compatible within "
        f"{major}.x, and this {declared.label} version breaks them ("
        + "; ".join(c.description for c in breaking)
        + f"). Publish a major version ({int(major) + 1}.0.0) with a migration plan.",
        field=field,
    )


def _parse_impact(impact: str | Impact) -> Impact:
    if isinstance(impact, Impact):
        return impact
    try:
        return Impact.parse(impact)
    except VersioningError as exc:
        raise DomainError(str(exc), field="impact") from exc


#: Free-text lifecycle evidence a version may carry, with its longest length (characters).
EVIDENCE_TEXT_LIMITS = {"evaluation_plan": 4000, "risk_note": 4000, "no_datasets": 2000}
PR_URL_MAX = 500
IO_SCHEMA_MAX_BYTES = 64 * 1024
_pr_url_validator = URLValidator(schemes=["http", "https"])


def _evidence_text(metadata: dict[str, Any], key: str, limit: int) -> None:
    value = metadata[key]
    if not isinstance(value, str):
        raise DomainError(f"{key} is text.", field=f"metadata.{key}")
    if not value.strip():
        raise DomainError(
            f"{key} is empty: write it, or leave the key out.", field=f"metadata.{key}"
        )
    if len(value) > limit:
        raise DomainError(
            f"{key} is {len(value)} characters; the limit is {limit}.", field=f"metadata.{key}"
        )


def _io_schema(value: Any) -> None:
    """``{"input": <JSON Schema>, "output": <JSON Schema>}``, each a valid schema."""
    field = "metadata.io_schema"
    if not isinstance(value, dict) or set(value) != {"input", "output"}:
        raise DomainError(
            'io_schema is an object with exactly "input" and "output", each a JSON Schema object.',
            field=field,
        )
    if len(canonical(value)) > IO_SCHEMA_MAX_BYTES:
        raise DomainError(f"io_schema is over {IO_SCHEMA_MAX_BYTES} bytes.", field=field)
    for side in ("input", "output"):
        schema = value[side]
        if not isinstance(schema, dict):
            raise DomainError(f"io_schema.{side} is a JSON Schema object.", field=field)
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.exceptions.SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            raise DomainError(
                f"io_schema.{side} is not a valid JSON Schema at {where}: {exc.message}",
                field=field,
            ) from exc


def _lifecycle_metadata(metadata: dict[str, Any]) -> None:
    """The lifecycle evidence keys (SPEC-lifecycle.md): right type, length and form."""
    if "determinism" in metadata and metadata["determinism"] not in Determinism.values:
        raise DomainError(
            f"determinism is one of {', '.join(Determinism.values)}.",
            field="metadata.determinism",
        )
    for key, limit in EVIDENCE_TEXT_LIMITS.items():
        if key in metadata:
            _evidence_text(metadata, key, limit)
    if "pr_url" in metadata:
        url = metadata["pr_url"]
        try:
            if not isinstance(url, str) or len(url) > PR_URL_MAX:
                raise ValidationError("")
            _pr_url_validator(url)
        except ValidationError as exc:
            raise DomainError(
                f"pr_url is the http(s) address of the pull request (at most {PR_URL_MAX} characters).",
                field="metadata.pr_url",
            ) from exc
    if "io_schema" in metadata:
        _io_schema(metadata["io_schema"])


def _metadata(metadata: dict[str, Any] | None) -> dict[str, Any]:
    metadata = dict(metadata or {})
    allowed = {
        "pinned_models",
        "policy_pack_hash",
        "environment_fingerprint",
        "labels",
        "template_refs",
        *LIFECYCLE_METADATA_KEYS,
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
    _lifecycle_metadata(metadata)
    return metadata


def _no_datasets_holds(meta: dict[str, Any], deps: list[tuple[str, Version]]) -> None:
    """A version that says it uses no dataset has no dataset dependency."""
    if "no_datasets" not in meta:
        return
    datasets = [p for p, up in deps if up.artifact.artifact_class.slug == BuiltinClass.DATASET]
    if datasets:
        raise DomainError(
            "no_datasets says this version uses no dataset, but it depends on "
            + ", ".join(datasets)
            + ": remove no_datasets or the dataset dependency.",
            field="metadata.no_datasets",
        )


TEMPLATE_CLASSES = (BuiltinClass.PROMPT_TEMPLATE, BuiltinClass.RESPONSE_TEMPLATE)
SHA256_RE = re.compile(r"[0-9a-f]{64}")


def _parsed(text: str, tenant: Tenant, field: str, *, prefix: str) -> Reference:
    """``text`` parsed as a reference; a malformed one is refused on ``field``."""
    try:
        return selectors.parse(text, tenant=tenant.slug)
    except DomainError as exc:
        raise DomainError(f"{prefix}{exc.message}", field=field) from exc


def _in_scope_version(tenant: Tenant, text: Any, field: str) -> Version:
    """The version a pinned reference names, in ``tenant`` only.

    Another tenant's version reads exactly like a missing one: same message, no hash.
    """
    if not isinstance(text, str):
        raise DomainError(f"'{text}' is not a reference.", field=field)
    ref = _parsed(text, tenant, field, prefix="")
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
            artifact__artifact_class__slug=BuiltinClass.POLICY_PACK,
            manifest_sha256=digest,
        ).exists():
            raise DomainError(
                f"No policy-pack version with hash {digest}.", field="metadata.policy_pack_hash"
            )
    return meta


def _resolve_dependencies(tenant: Tenant, references: Sequence[str]) -> list[tuple[str, Version]]:
    resolved = []
    for text in references:
        ref = _parsed(text, tenant, "dependencies", prefix=f"Dependency '{text}': ")
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


def _next_number(
    previous: Version | None, declared: Impact, changes: list[ContractChange], wanted: str | None
) -> str:
    """The number a publish gets: the declared impact must cover the changes found."""
    try:
        versioner.check_impact(declared, changes)
        return versioner.accept(previous.version if previous else None, declared, wanted)
    except VersioningError as exc:
        raise DomainError(str(exc), field=getattr(exc, "field", "version")) from exc


def version_plan(
    *,
    artifact: Artifact,
    content: Content,
    impact: str | Impact,
    version: str | None = None,
    input_variables: Sequence[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> PublishPlan:
    """Dry run: the version a publish would get, and the contract changes it carries."""
    declared = _parse_impact(impact)
    fields, _ = _normalise_content(artifact.artifact_class, content)
    variables = _variables(artifact.artifact_class, content, input_variables)
    previous = selectors.latest_version(artifact)
    changes = _contract_changes(artifact, previous, fields, variables, metadata)
    _compatible_within_major(artifact, previous, declared, changes)
    number = _next_number(previous, declared, changes, version)
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
    require_author(actor, artifact.tenant)
    if not (reason or "").strip():
        raise DomainError("Say why this version exists (the change reason).", field="reason")
    declared = _parse_impact(impact)
    cls = artifact.artifact_class
    fields, digest_bytes = _normalise_content(cls, content)
    content_sha256 = hashlib.sha256(digest_bytes).hexdigest()
    variables = _variables(cls, content, input_variables)
    meta = _checked_metadata_refs(artifact.tenant, _metadata(metadata))
    deps = _resolve_dependencies(artifact.tenant, dependencies)
    _no_datasets_holds(meta, deps)
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
    changes = _contract_changes(artifact, previous, fields, variables, meta)
    _compatible_within_major(artifact, previous, declared, changes)
    number = _next_number(previous, declared, changes, version)
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
    if cls.slug == BuiltinClass.PROMPT:
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
