"""Sticky canary buckets, exactly as the registry computes them (``rollouts/bucketing.py``).

bucket = first 8 bytes (big-endian) of SHA-256 of ``salt:slot:tenant:subject``, modulo
100,000. A subject gets the canary when its bucket is below the rule's weight. The registry's
golden vectors (``rollouts/spec/bucketing-vectors.json``) pin this down.
"""

from __future__ import annotations

from hashlib import sha256

__all__ = ["BUCKETS", "bucket", "in_canary"]

#: Buckets per rule: a weight is a count of these (0..BUCKETS).
BUCKETS = 100_000


def bucket(*, salt: str, slot: str, tenant: str, subject: str) -> int:
    """The subject's bucket, 0..BUCKETS-1."""
    digest = sha256(f"{salt}:{slot}:{tenant}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def in_canary(*, salt: str, slot: str, tenant: str, subject: str, weight: int) -> bool:
    """True when the subject's bucket is below ``weight``."""
    return bucket(salt=salt, slot=slot, tenant=tenant, subject=subject) < weight
