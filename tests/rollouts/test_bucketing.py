"""Sticky canary buckets: the published golden vectors, the share, stickiness across calls,
processes, weights and pause/resume."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rollouts import runtime
from rollouts.bucketing import bucket
from rollouts.choices import BUCKETS, RolloutState
from tests.rollouts.runtime_world import World, build_world, canary, set_weight

VECTORS = Path(__file__).resolve().parents[2] / "rollouts" / "spec" / "bucketing-vectors.json"
SUBJECTS = [f"subject-{i}" for i in range(100_000)]


def test_golden_vectors_match_the_function() -> None:
    vectors = json.loads(VECTORS.read_text(encoding="utf-8"))
    assert len(vectors) >= 50
    for v in vectors:
        assert set(v) == {"salt", "slot", "tenant", "subject", "bucket"}
        got = bucket(salt=v["salt"], slot=v["slot"], tenant=v["tenant"], subject=v["subject"])
        assert got == v["bucket"], v
        assert 0 <= got < BUCKETS
    subjects = [v["subject"] for v in vectors]
    assert any(not s.isascii() for s in subjects)  # unicode (UTF-8 bytes, not normalised)
    assert "" in subjects
    assert any(s.strip() == "" and s for s in subjects)
    assert any(v["bucket"] < 10 for v in vectors)
    assert any(v["bucket"] > 99_990 for v in vectors)
    assert {"e\u0301", "\u00e9"} <= set(subjects)  # not normalised: two different buckets


def test_bucket_is_the_published_formula() -> None:
    digest = hashlib.sha256(b"salt:slot:tenant:subject").digest()
    assert bucket(salt="salt", slot="slot", tenant="tenant", subject="subject") == (
        int.from_bytes(digest[:8], "big") % 100_000
    )


def _canary_set(snap: runtime.Snapshot) -> set[str]:
    return {s for s in SUBJECTS if runtime.resolve(snap, "qualifyLead", s).arm == "canary"}


@pytest.fixture
def world(db: None) -> World:
    return build_world()


def _digest(subjects: set[str]) -> str:
    return hashlib.sha256("\n".join(sorted(subjects)).encode()).hexdigest()


CHILD = """
import hashlib, sys
from rollouts.bucketing import bucket
inside = sorted(f"subject-{i}" for i in range(100_000)
                if bucket(salt="sticky", slot="qualifyLead", tenant="acme", subject=f"subject-{i}") < 10_000)
print(hashlib.sha256("\\n".join(inside).encode()).hexdigest())
"""


def test_ten_percent_is_ten_percent_and_sticky_everywhere(world: World) -> None:
    rollout = canary(world, weight=10_000, salt="sticky")
    snap = runtime.snapshot("acme", "sales-agent")
    at_10 = _canary_set(snap)
    assert abs(len(at_10) / len(SUBJECTS) - 0.10) <= 0.005
    # The same answer on every call...
    assert {
        s for s in SUBJECTS[:20_000] if runtime.resolve(snap, "qualifyLead", s).arm == "canary"
    } == {s for s in at_10 if int(s.rsplit("-", 1)[1]) < 20_000}
    # ... and in another process (only the published function, no database).
    env = {
        **os.environ,
        "PYTHONPATH": str(VECTORS.parents[2]),
        "DJANGO_SETTINGS_MODULE": "governance.settings",
    }
    child = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + CHILD],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    assert child.stdout.strip() == _digest(at_10)
    # Raising the weight only adds subjects; pause and resume keep the set.
    set_weight(rollout, 25_000)
    at_25 = _canary_set(runtime.snapshot("acme", "sales-agent"))
    set_weight(rollout, 50_000)
    at_50 = _canary_set(runtime.snapshot("acme", "sales-agent"))
    assert at_10 < at_25 < at_50
    assert abs(len(at_25) / len(SUBJECTS) - 0.25) <= 0.005
    type(rollout).objects.filter(pk=rollout.pk).update(state=RolloutState.PAUSED)
    from tests.rollouts.runtime_world import changed

    changed()
    assert _canary_set(runtime.snapshot("acme", "sales-agent")) == at_50
    type(rollout).objects.filter(pk=rollout.pk).update(state=RolloutState.PROGRESSING)
    changed()
    assert _canary_set(runtime.snapshot("acme", "sales-agent")) == at_50
