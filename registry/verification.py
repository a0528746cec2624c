"""Re-verify published versions: manifest hash, signature, content digest, and dependencies ("pack verification")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from governance.events.models import SigningKey
from governance.events.services import canonical
from registry.choices import ContentKind
from registry.models import Version
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


def check_version(version: Version, keys: dict[str, str] | None = None) -> VersionCheck:
    """One version on its own: what the API lets anyone recompute."""
    keys = keys if keys is not None else dict(SigningKey.objects.values_list("kid", "public_key"))
    manifest = bytes(version.manifest)
    if hashlib.sha256(manifest).hexdigest() != version.manifest_sha256:
        return VersionCheck(version, False, "manifest does not hash to the version's hash")
    public = keys.get(version.key_id)
    if public is None:
        return VersionCheck(version, False, f"signed by unknown key {version.key_id}")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(
            bytes.fromhex(version.signature), bytes.fromhex(version.manifest_sha256)
        )
    except (InvalidSignature, ValueError):
        return VersionCheck(version, False, f"signature does not verify with key {version.key_id}")
    body = json.loads(manifest)
    if body.get("artifact") != version.artifact.path or body.get("version") != version.version:
        return VersionCheck(version, False, "manifest names another artifact or version")
    content = _content_bytes(version)
    if content is None:
        return VersionCheck(
            version, False, f"content file {version.content_sha256[:12]}… is missing from the store"
        )
    digest = hashlib.sha256(content).hexdigest()
    if digest != version.content_sha256 or body["content"]["sha256"] != digest:
        return VersionCheck(version, False, "content does not match its signed digest")
    return VersionCheck(version, True, "hash, signature and content verify")


def verify_versions(versions: Iterable[Version]) -> tuple[int, VersionCheck | None]:
    """Check each version and, transitively, everything it depends on. Returns (checked, first failure)."""
    keys = dict(SigningKey.objects.values_list("kid", "public_key"))
    seen: set[object] = set()
    pending = list(versions)
    checked = 0
    while pending:
        version = pending.pop(0)
        if version.pk in seen:
            continue
        seen.add(version.pk)
        result = check_version(version, keys)
        checked += 1
        if not result.ok:
            return checked, result
        for dep in version.dependencies.select_related(
            "upstream__artifact__artifact_class", "upstream__artifact__tenant"
        ):
            if not dep.reference.endswith("#" + dep.upstream.manifest_sha256):
                return checked, VersionCheck(
                    version, False, f"dependency {dep.reference} no longer matches its hash"
                )
            pending.append(dep.upstream)
    return checked, None
