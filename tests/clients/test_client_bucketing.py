"""The client's bucketing is the server's: it passes the published golden vectors."""

from __future__ import annotations

import json
from pathlib import Path

from registry_client import bucketing

from rollouts import bucketing as server_bucketing

VECTORS = Path(__file__).resolve().parents[2] / "rollouts" / "spec" / "bucketing-vectors.json"


def test_the_golden_vectors() -> None:
    vectors = json.loads(VECTORS.read_text())
    assert len(vectors) > 10
    for v in vectors:
        got = bucketing.bucket(
            salt=v["salt"], slot=v["slot"], tenant=v["tenant"], subject=v["subject"]
        )
        assert got == v["bucket"], v


def test_same_as_the_server_for_other_inputs() -> None:
    for i in range(2000):
        args = {"salt": f"s{i % 7}", "slot": "qualifyLead", "tenant": "acme", "subject": f"u-{i}"}
        assert bucketing.bucket(**args) == server_bucketing.bucket(**args)
        assert bucketing.in_canary(**args, weight=10_000) == (
            server_bucketing.bucket(**args) < 10_000
        )
