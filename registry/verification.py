"""Re-verify published versions: manifest hash, signature, content digest, and dependencies ("pack verification")."""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db.models import Prefetch, prefetch_related_objects

from governance.kernel.errors import DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event, SigningKey
from governance.kernel.events.services import canonical, events_pending
from registry.choices import ContentKind
from registry.models import Version, VersionDependency
from registry.storage import blob_exists, blob_path


@dataclass
class VersionCheck:
    version: Version
    ok: bool
    reason: str


def _content_bytes(version: Version) -> bytes | None:
    if version.content_kind == ContentKind.TEXT:
        return version.content_text.encode()
    if version.content_kind == ContentKind.JSON:
        return canonical(version.content_json)
    if not blob_exists(version.content_sha256):
        return None
    return blob_path(version.content_sha256).read_bytes()


#: Manifest keys written from the version's own columns; every other key is a metadata entry.
_COLUMN_KEYS = frozenset(
    {
        "v",
        "artifact",
        "version",
        "content",
        "input_variables",
        "change_reason",
        "impact",
        "detected_changes",
        "dependencies",
        "created_by",
        "created_at",
    }
)


def _same(column: Any, signed: Any) -> bool:
    """Equal as canonical JSON (so ``true`` never passes for ``1``, nor ``1.0`` for ``1``)."""
    # The common cases without serialising: two nulls, or an ASCII text and a text (canonical
    # JSON of text is one-to-one, and ASCII always serialises, so ``==`` gives the same answer).
    if column is None and signed is None:
        return True
    if type(column) is str and type(signed) is str and column.isascii():
        return column == signed
    try:
        return canonical(column) == canonical(signed)
    except DomainError:
        return False


def manifest_problem(version: Version, body: dict[str, Any]) -> str | None:
    """Which column, if any, differs from the signed manifest (every column the manifest covers).

    Reads the version's dependency rows (prefetch ``dependencies`` to share the query) and
    its author (select ``created_by``).
    """
    if not isinstance(body, dict):
        return "manifest is not a JSON object"
    columns: list[tuple[str, str, Any]] = [
        ("artifact", "artifact", version.artifact.path),
        ("version", "version", version.version),
        (
            "content",
            "content kind, size or digest",
            {
                "kind": version.content_kind,
                "sha256": version.content_sha256,
                "size": version.content_size,
            },
        ),
        ("input_variables", "input_variables", version.input_variables),
        ("change_reason", "change_reason", version.change_reason),
        ("impact", "declared_impact", version.declared_impact),
        ("detected_changes", "detected_changes", version.detected_changes),
        (
            "dependencies",
            "dependency list",
            sorted(d.reference for d in version.dependencies.all()),
        ),
        ("created_by", "created_by", version.created_by.username if version.created_by else None),
        ("created_at", "created_at", version.created_at.isoformat()),
    ]
    for key, label, value in columns:
        if key not in body or not _same(value, body[key]):
            return f"{label} differs from the signed manifest (column rewritten)"
    signed_metadata = {k: v for k, v in body.items() if k not in _COLUMN_KEYS}
    if not isinstance(version.metadata, dict) or not _same(version.metadata, signed_metadata):
        return "metadata differs from the signed manifest (column rewritten)"
    return None


def _signature_problem(version: Version, manifest: bytes, keys: dict[str, str]) -> str | None:
    """What is wrong with the manifest's hash or signature (None: both verify)."""
    if hashlib.sha256(manifest).hexdigest() != version.manifest_sha256:
        return "manifest does not hash to the version's hash"
    public = keys.get(version.key_id)
    if public is None:
        return f"signed by unknown key {version.key_id}"
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(version.signature), bytes.fromhex(version.manifest_sha256)
        )
    except (InvalidSignature, ValueError):
        return f"signature does not verify with key {version.key_id}"
    return None


def check_version(version: Version, keys: dict[str, str] | None = None) -> VersionCheck:
    """One version on its own: what the API lets anyone recompute.

    The manifest's hash and signature, then every column the manifest covers against it
    (metadata, input variables, dependencies...), then the content against its digest.
    """
    keys = keys if keys is not None else dict(SigningKey.objects.values_list("kid", "public_key"))
    manifest = bytes(version.manifest)
    problem = _signature_problem(version, manifest, keys)
    if problem is not None:
        return VersionCheck(version, False, problem)
    body = json.loads(manifest)
    if body.get("artifact") != version.artifact.path or body.get("version") != version.version:
        return VersionCheck(version, False, "manifest names another artifact or version")
    # Cached on the version, so a serializer listing its dependencies reads them only once.
    prefetch_related_objects([version], "dependencies")
    problem = manifest_problem(version, body)
    if problem is not None:
        return VersionCheck(version, False, problem)
    content = _content_bytes(version)
    if content is None:
        return VersionCheck(
            version, False, f"content file {version.content_sha256[:12]}… is missing from the store"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != version.content_sha256 or body["content"]["sha256"] != digest:
        return VersionCheck(version, False, "content does not match its signed digest")
    return VersionCheck(version, True, "hash, signature, columns and content verify")


#: Versions whose dependencies ``verify_versions`` reads in one query.
PREFETCH_CHUNK = 500

_UPSTREAMS = Prefetch(
    "dependencies",
    queryset=VersionDependency.objects.select_related(
        "upstream__artifact__artifact_class", "upstream__artifact__tenant", "upstream__created_by"
    ),
)


def _signed_publication(payload_bytes: bytes) -> tuple[str, str]:
    """(path, manifest hash) named by a ``version_published`` event's signed payload."""
    try:
        body = json.loads(payload_bytes)
        return str(body.get("path", "")), str(body.get("sha256", ""))
    except (ValueError, AttributeError):
        return "", ""


def _without_event(versions: Sequence[Version]) -> Version | None:
    """The first version that no ``version_published`` event names with its hash."""
    published: set[tuple[str, str]] = set()
    ids = [str(v.pk) for v in versions]
    for start in range(0, len(ids), 500):
        rows = Event.objects.filter(
            kind=EventKind.ARTIFACT_VERSION_PUBLISHED,
            subject_type="registry.version",
            subject_id__in=ids[start : start + 500],
        ).values_list("subject_id", "payload_bytes")
        for subject_id, payload in rows:
            published.add((subject_id, _signed_publication(bytes(payload))[1]))
    for event in events_pending():  # published earlier in this transaction, appended at its end
        if event.kind == EventKind.ARTIFACT_VERSION_PUBLISHED:
            published.add((event.subject_id, _signed_publication(bytes(event.payload_bytes))[1]))
    for version in versions:
        if (str(version.pk), version.manifest_sha256) not in published:
            return version
    return None


def verify_versions(versions: Iterable[Version]) -> tuple[int, VersionCheck | None]:
    """Check each version and, transitively, everything it depends on. Returns (checked, first failure).

    Then the log: each checked version must have the ``version_published`` event that names
    it with its hash (a row inserted behind the services' back has none).
    """
    keys = dict(SigningKey.objects.values_list("kid", "public_key"))
    seen: set[object] = set()
    pending = deque(versions)
    # Their dependencies in one query per PREFETCH_CHUNK versions, not one per version (a
    # restore verifies every version); an upstream met later is fetched on its own below.
    given = list(pending)
    for start in range(0, len(given), PREFETCH_CHUNK):
        prefetch_related_objects(given[start : start + PREFETCH_CHUNK], _UPSTREAMS)
    done: list[Version] = []
    checked = 0
    while pending:
        version = pending.popleft()
        if version.pk in seen:
            continue
        seen.add(version.pk)
        prefetch_related_objects([version], _UPSTREAMS)  # no query when already fetched
        result = check_version(version, keys)
        checked += 1
        done.append(version)
        if not result.ok:
            return checked, result
        for dep in version.dependencies.all():
            if not dep.reference.endswith("#" + dep.upstream.manifest_sha256):
                return checked, VersionCheck(
                    version, False, f"dependency {dep.reference} no longer matches its hash"
                )
            pending.append(dep.upstream)
    orphan = _without_event(done)
    if orphan is not None:
        return checked, VersionCheck(
            orphan, False, "no version_published event in the log names this version and hash"
        )
    return checked, None


def log_problem() -> str | None:
    """Cross-check the whole log against the registry: every ``version_published`` event's
    version still has its row, at the path and with the hash the signed event names.

    (The other direction, every row has its event, is part of ``verify_versions``.)
    """
    rows = {
        sha: f"{cls}/{tenant}/{slug}/{number}"
        for sha, cls, tenant, slug, number in Version.objects.values_list(
            "manifest_sha256",
            "artifact__artifact_class__slug",
            "artifact__tenant__slug",
            "artifact__slug",
            "version",
        ).iterator(chunk_size=5000)
    }
    events = (
        Event.objects.filter(kind=EventKind.ARTIFACT_VERSION_PUBLISHED)
        .order_by("seq")
        .values_list("seq", "payload_bytes")
    )
    for seq, payload in events.iterator(chunk_size=5000):
        path, sha = _signed_publication(bytes(payload))
        if sha not in rows:
            return (
                f"event #{seq} published {path}#{sha} but no version row has that hash "
                "(the version was deleted or rewritten)"
            )
        if rows[sha] != path:
            return f"event #{seq} published {path}#{sha} but the row with that hash is {rows[sha]}"
    return None
