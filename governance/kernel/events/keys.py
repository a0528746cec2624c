"""Ed25519 signing keys: private halves from a key directory or the environment, public halves in the DB.

Key id = the first 16 hex digits of SHA-256 over the raw 32-byte public key,
so anyone holding the public key can recompute it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from governance.kernel.errors import DomainError

_cache: dict[str, Ed25519PrivateKey] = {}
_lock = threading.Lock()


def public_hex(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def key_id_for(public_key_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:16]


def _parse_private(text: str | bytes) -> Ed25519PrivateKey:
    raw = text.encode() if isinstance(text, str) else text
    if b"BEGIN" in raw:
        key = serialization.load_pem_private_key(raw, password=None)
    else:  # base64 of the raw 32-byte seed
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw.strip()))
    if not isinstance(key, Ed25519PrivateKey):
        raise DomainError("Signing keys must be Ed25519.", field="signing_key")
    return key


def key_dir() -> Path:
    return Path(settings.SIGNING_KEY_DIR)


def load_private_keys() -> dict[str, Ed25519PrivateKey]:
    """Every private key this process can use, by key id (directory ``*.pem`` plus ``SIGNING_KEY``)."""
    keys: dict[str, Ed25519PrivateKey] = {}
    folder = key_dir()
    if folder.is_dir():
        for path in sorted(folder.glob("*.pem")):
            key = _parse_private(path.read_bytes())
            keys[key_id_for(public_hex(key))] = key
    if settings.SIGNING_KEY:
        key = _parse_private(settings.SIGNING_KEY)
        keys[key_id_for(public_hex(key))] = key
    return keys


def private_key(kid: str) -> Ed25519PrivateKey:
    """The private key ``kid``, cached per process; DomainError if this process does not hold it."""
    with _lock:
        if kid not in _cache:
            _cache.update(load_private_keys())
        if kid not in _cache:
            raise DomainError(
                f"The active signing key {kid} is not available to this process: put its PEM file "
                f"in SIGNING_KEY_DIR ({key_dir()}) or set SIGNING_KEY.",
                field="signing_key",
            )
        return _cache[kid]


def write_new_key() -> tuple[str, str]:
    """Create a key file (mode 0600) in the key directory; returns (kid, public key hex)."""
    key = Ed25519PrivateKey.generate()
    pub = public_hex(key)
    kid = key_id_for(pub)
    folder = key_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kid}.pem"
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    with _lock:
        _cache[kid] = key
    return kid, pub


def sign(kid: str, message: bytes) -> str:
    return private_key(kid).sign(message).hex()


def clear_cache() -> None:
    with _lock:
        _cache.clear()
