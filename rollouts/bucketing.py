"""Sticky canary buckets: the one function the server, the snapshot and every client agree on.

bucket = first 8 bytes (big-endian) of SHA-256 of ``salt:slot:tenant:subject``, modulo
100,000. A subject gets the canary when its bucket is below the weight, so raising the
weight only adds subjects, and the same salt keeps the same set. The published golden
vectors (``rollouts/spec/bucketing-vectors.json``) pin this down for other implementations.
"""

from __future__ import annotations

import hashlib

from rollouts.choices import BUCKETS


def bucket(*, salt: str, slot: str, tenant: str, subject: str) -> int:
    """The subject's bucket, 0..BUCKETS-1."""
    digest = hashlib.sha256(f"{salt}:{slot}:{tenant}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_canary(*, salt: str, slot: str, tenant: str, subject: str, weight: int) -> bool:
    """True when the subject's bucket is below ``weight`` (a count of buckets, 0..BUCKETS)."""
    return bucket(salt=salt, slot=slot, tenant=tenant, subject=subject) < weight
