"""What a backup must carry across databases, read from one: ``python -m tests.governance.recovery.fingerprint [--upto N]``.

Prints one JSON object (run it with Django set up on the database to read, e.g. in a
subprocess whose ``DATABASE_URL`` points there):

- ``versions``: every version's path, manifest hash, content hash, key id and signature,
  and the SHA-256 of its stored manifest bytes;
- ``pointers``: every artifact's active and recommended version, every slot's default
  (its artifact's active version) and every tenant override;
- ``blobs``: every file version's blob, re-hashed from the content store;
- ``log``: the log's size, the Merkle root of its first ``--upto`` events (all when not
  given), the checkpoints and the signing keys;
- ``tables``: per model (label), its row count and a digest of its rows, each field read
  as a value that does not depend on the database (JSON as RFC 8785, since PostgreSQL's
  jsonb reorders keys and reads -0.0 back as 0 as the signed log does; UTC times, bytes
  as hex). ``governance.event`` counts only the first ``--upto`` events.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import hashlib
import json
import os
import sys
import uuid
from typing import Any

import rfc8785

#: The apps a backup holds (governance-backup/1).
APPS = ("accounts", "governance", "registry", "reviews", "rollouts")


def plain(value: Any) -> Any:
    """A field's value as JSON that reads the same from SQLite and from PostgreSQL."""
    if isinstance(value, dt.datetime) and value.tzinfo:
        value = value.astimezone(dt.UTC)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID | decimal.Decimal | dt.timedelta):
        return str(value)
    if isinstance(value, dict | list | float):
        try:
            return rfc8785.dumps(value).decode()
        except (rfc8785.CanonicalizationError, TypeError, ValueError):
            return json.dumps(value, sort_keys=True, default=str)
    return value


def table_digests(upto: int) -> dict[str, list[Any]]:
    """``{label: [rows, sha256]}`` for every model (and m2m table) of the backed-up apps."""
    from django.apps import apps

    models = []
    for app in APPS:
        for model in apps.get_app_config(app).get_models():
            models.append(model)
            for m2m in model._meta.local_many_to_many:
                through = m2m.remote_field.through
                if through is not None and through._meta.auto_created:
                    models.append(through)
    out: dict[str, list[Any]] = {}
    for model in models:
        fields = [f.attname for f in model._meta.concrete_fields]
        rows = model._base_manager.all()
        if model._meta.label_lower == "governance.event":
            rows = rows.filter(seq__lte=upto)
        lines = sorted(
            json.dumps([plain(v) for v in row], sort_keys=True, default=str)
            for row in rows.values_list(*fields).iterator(chunk_size=2000)
        )
        digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        out[model._meta.label_lower] = [len(lines), digest]
    return out


def artifact_path(artifact: Any) -> str:
    tenant = artifact.tenant.slug if artifact.tenant_id else "-"
    return f"{artifact.artifact_class.slug}/{tenant}/{artifact.slug}"


def fingerprint(upto: int | None = None) -> dict[str, Any]:
    """Everything listed in the module docstring, as one JSON-able dict."""
    from governance.kernel import merkle
    from governance.kernel.events import selectors as events
    from governance.kernel.events.models import Checkpoint, SigningKey
    from registry import storage
    from registry.models import Artifact, Version
    from rollouts.models import Override, Slot

    size = events.log_size()
    upto = size if upto is None else upto
    versions = sorted(
        [
            f"{artifact_path(v.artifact)}@{v.version}",
            v.manifest_sha256,
            v.content_sha256,
            v.key_id,
            v.signature,
            hashlib.sha256(bytes(v.manifest)).hexdigest(),
        ]
        for v in Version.objects.select_related(
            "artifact__tenant", "artifact__artifact_class"
        ).iterator(chunk_size=2000)
    )
    artifacts = Artifact.objects.select_related(
        "tenant", "artifact_class", "active_version", "recommended_version"
    )
    pointers: dict[str, Any] = {
        "active": {
            artifact_path(a): a.active_version.manifest_sha256 if a.active_version else None
            for a in artifacts
        },
        "recommended": {
            artifact_path(a): (
                a.recommended_version.manifest_sha256 if a.recommended_version else None
            )
            for a in artifacts
        },
        "slot_defaults": {
            f"{s.application.tenant.slug}/{s.application.slug}.{s.name}": (
                s.artifact.active_version.manifest_sha256 if s.artifact.active_version else None
            )
            for s in Slot.objects.select_related("application__tenant", "artifact__active_version")
        },
        "overrides": {
            f"{o.slot.application.slug}.{o.slot.name}/{o.tenant.slug}": o.version.manifest_sha256
            for o in Override.objects.select_related("slot__application", "tenant", "version")
        },
    }
    blobs = {}
    for sha in (
        Version.objects.filter(content_kind="file")
        .values_list("content_sha256", flat=True)
        .distinct()
    ):
        path = storage.blob_path(sha)
        blobs[sha] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
    leaves = events.leaf_hashes(upto)
    return {
        "versions": versions,
        "pointers": pointers,
        "blobs": blobs,
        "log": {
            "size": size,
            "upto": upto,
            "root": merkle.root_from_leaf_hashes(leaves).hex() if leaves else "",
            "checkpoints": [
                [c.tree_size, c.root_hash, c.key_id, c.signature]
                for c in Checkpoint.objects.order_by("tree_size", "id")
            ],
            "keys": sorted(
                [k.kid, k.public_key, k.status] for k in SigningKey.objects.order_by("kid")
            ),
        },
        "tables": table_digests(upto),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upto", type=int, default=None, help="read the log's first N events")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    import django

    django.setup()
    json.dump(fingerprint(args.upto), sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
