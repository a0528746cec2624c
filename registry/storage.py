"""A content-addressed store for uploaded version files: a file's name is its SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


def blob_path(sha256: str) -> Path:
    return Path(settings.REGISTRY_BLOB_DIR) / sha256[:2] / sha256


def blob_put(data: bytes) -> str:
    """Store bytes once (writing to a temp file and renaming, so a reader never sees half a file)."""
    digest = hashlib.sha256(data).hexdigest()
    path = blob_path(digest)
    if path.exists():
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
    return digest


def blob_get(sha256: str) -> bytes:
    return blob_path(sha256).read_bytes()


def blob_exists(sha256: str) -> bool:
    return blob_path(sha256).exists()
