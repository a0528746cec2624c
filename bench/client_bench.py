"""`make bench` workload for the Python client (issue 13): cached resolve and memory.

No registry: the snapshot is built here in the runtime format (`governance-runtime/1`), signed
with a throwaway Ed25519 key, and served once by a throwaway local HTTP server to a
`RegistryClient` pinned to that key (one fetch, so its answers are LIVE; no refresher
thread). Then, on one core:
  - resolve, no canary rule: `client.resolve("slot-0", subject)` over 1,000 subjects
    (target >= 1,000,000 per second);
  - resolve, canary rule (10% live canary: each call hashes the subject):
    (target >= 300,000 per second);
  - for information, the canary rule while the registry is unreachable (reason CACHED);
  - memory for 10,000 slots: tracemalloc's growth while the client loads a 10,000-slot
    snapshot (its parsed document and its compiled answers), and the document's size.
Rates are the best of --rounds rounds of --calls calls (a shared machine's other processes
only ever slow a round down).

Run:
  .venv/bin/python bench/client_bench.py [--calls 1000000] [--rounds 5] [--slots 10000] [--strict]
(--strict: exit 1 when a rate is under its target.)
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ROOT = Path(__file__).resolve().parents[1]
try:
    from registry_client import RegistryClient
except ImportError:  # a venv without `pip install -e clients/python`
    sys.path.insert(0, str(ROOT / "clients" / "python"))
    from registry_client import RegistryClient

TENANT, APPLICATION = "acme", "bench-agent"


def _version(slug: str, version: str) -> tuple[str, dict[str, Any]]:
    sha = hashlib.sha256(f"{slug}@{version}".encode()).hexdigest()
    body = {
        "path": f"prompt/platform/{slug}/{version}",
        "version": version,
        "sha256": sha,
        "stage": "active",
        "content_kind": "text",
        "content": f"You are {slug} {version}. Help {{{{ customer }}}}.",
        "content_sha256": hashlib.sha256(f"{slug}{version}".encode()).hexdigest(),
        "warning": None,
    }
    return f"{slug}:{version}#{sha}", body


def build_snapshot(slots: int, *, canary_weight: int = 10_000) -> tuple[bytes, dict[str, str]]:
    """A signed runtime document with ``slots`` slots; ``slot-1`` has a live canary rule."""
    versions: dict[str, Any] = {}
    body_slots: dict[str, Any] = {}
    for i in range(slots):
        slug = f"prompt-{i}"
        stable, stable_body = _version(slug, "1.0.0")
        versions[stable] = stable_body
        rules = []
        if i == 1:
            candidate, candidate_body = _version(slug, "1.1.0")
            versions[candidate] = candidate_body
            rules.append(
                {
                    "rollout": "RO-1",
                    "rollout_id": "00000000-0000-0000-0000-000000000001",
                    "strategy": "canary",
                    "state": "progressing",
                    "target": "live",
                    "step": 1,
                    "weight": canary_weight,
                    "salt": "bench-salt",
                    "cohort": [],
                    "stable": stable,
                    "candidate": candidate,
                    "flag": None,
                }
            )
        body_slots[f"slot-{i}"] = {
            "artifact": f"prompt/platform/{slug}",
            "disabled": False,
            "default": stable,
            "override": None,
            "rules": rules,
            "warnings": [],
        }
    snapshot: dict[str, Any] = {
        "format": "governance-runtime/1",
        "tenant": TENANT,
        "application": APPLICATION,
        "application_tenant": "platform",
        "sequence": 1,
        "buckets": 100_000,
        "slots": body_slots,
        "versions": versions,
    }
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()
    key_id = hashlib.sha256(bytes.fromhex(public)).hexdigest()[:16]
    canonical = rfc8785.dumps(snapshot)
    digest = hashlib.sha256(canonical).digest()
    envelope: dict[str, Any] = {
        "sha256": digest.hex(),
        "signature": {
            "algorithm": "ed25519",
            "key_id": key_id,
            "signed": "sha256(rfc8785(snapshot))",
            "value": key.sign(digest).hex(),
        },
    }
    head = rfc8785.dumps(envelope)
    return head[:-1] + b',"snapshot":' + canonical + b"}", {key_id: public}


def client_for(document: bytes, keys: dict[str, str]) -> RegistryClient:
    """A client that fetched ``document`` once (LIVE) from a throwaway local HTTP server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("ETag", '"1-bench"')
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        return RegistryClient(
            f"http://127.0.0.1:{server.server_address[1]}",
            "bench-token",
            application=APPLICATION,
            tenant=TENANT,
            public_keys=keys,
            background=False,  # no refresher: the snapshot stays LIVE for the bench
            stale_after_seconds=1e12,
            timeout=30,
        )
    finally:
        server.shutdown()
        server.server_close()


def rate(client: RegistryClient, slot: str, calls: int, rounds: int) -> float:
    subjects = [f"user-{n}" for n in range(1000)]
    resolve = client.resolve
    loops = max(1, calls // len(subjects))
    best = 0.0
    for _ in range(rounds):
        gc.collect()
        started = time.perf_counter()
        for _ in range(loops):
            for subject in subjects:
                resolve(slot, subject)
        best = max(best, loops * len(subjects) / (time.perf_counter() - started))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slots", type=int, default=10_000)
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args()

    document, keys = build_snapshot(2)
    client = client_for(document, keys)
    plain = client.resolve("slot-0", "user-1")
    split = client.resolve("slot-1", "user-1")
    assert plain.freshness == "LIVE", (plain, client.last_error)
    assert plain.version == "1.0.0", plain
    assert plain.reason == "DEFAULT", plain
    assert split.reason == "SPLIT", split
    assert split.arm in ("canary", "stable"), split
    arms = {client.resolve("slot-1", f"u{n}").arm for n in range(200)}
    assert arms == {"canary", "stable"}, arms
    no_canary = rate(client, "slot-0", args.calls, args.rounds)
    with_canary = rate(client, "slot-1", args.calls // 2, args.rounds)
    client.close()
    # The same snapshot from a bootstrap file, the registry never reached: reason CACHED.
    with tempfile.TemporaryDirectory() as tmp:
        bootstrap = Path(tmp) / "bootstrap.json"
        bootstrap.write_bytes(document)
        offline = RegistryClient(
            "http://127.0.0.1:9",  # nothing listens
            None,
            application=APPLICATION,
            tenant=TENANT,
            public_keys=keys,
            bootstrap=bootstrap,
            initial_fetch=False,
            background=False,
            stale_after_seconds=1e12,
        )
        assert offline.resolve("slot-1", "user-1").reason == "CACHED"
        cached_canary = rate(offline, "slot-1", args.calls // 4, args.rounds)
        offline.close()

    document, keys = build_snapshot(args.slots)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    big = client_for(document, keys)
    for i in range(0, args.slots, 997):
        big.resolve(f"slot-{i}", "user-1")
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert big.resolve(f"slot-{args.slots - 1}", "u").version == "1.0.0"
    big.close()

    print("python client bench (in process, one thread, snapshot signed with a throwaway key)")
    ok = True
    for label, value, target in (
        ("resolve, no canary rule", no_canary, 1_000_000),
        ("resolve, canary rule (hashes the subject)", with_canary, 300_000),
    ):
        met = value >= target
        ok &= met
        print(f"  {label:44} {value:>12,.0f}/s  target >= {target:,}/s  {'ok' if met else 'UNDER'}")
    print(f"  {'resolve, canary rule, CACHED (registry down)':44} {cached_canary:>12,.0f}/s")
    print(
        f"  memory for {args.slots:,} slots: {held / 2**20:,.1f} MiB held by the client "
        f"({held / args.slots:,.0f} B a slot); signed document {len(document) / 2**20:,.1f} MiB"
    )
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
