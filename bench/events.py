"""`make bench` workloads for the event log.

1. verify: build a synthetic log of N signed entries in memory (the same bytes
   `event_record` writes: RFC 8785 header naming seq, prev and payload digest;
   Ed25519 signature; checkpoints), then time the chain pass alone and the full
   verification (chain + Merkle tree + checkpoint signatures), and the same
   through `python -m governance.verify` on an exported bundle file. With
   --database-url (PostgreSQL) it also loads the same log into a fresh database
   and times `verify_database`, what `manage.py events verify` runs (chain,
   Merkle tree, checkpoints, and every row's index columns against its bytes).
2. append (PostgreSQL only): events/s from one writer process and from 8
   concurrent writer processes through the real `tenant_create` service, and
   their ratio.

Run: .venv/bin/python bench/events.py verify --events 1000000
     .venv/bin/python bench/events.py verify --events 100000 --database-url postgres://postgres@127.0.0.1:5432/governance_bench_verify
     (that database is dropped and recreated)
     .venv/bin/python bench/events.py append --database-url postgres://postgres@127.0.0.1:5432/governance_bench
     (the append benchmark drops and recreates that database)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from governance.kernel import merkle  # noqa: E402
from governance.kernel.verify import (  # noqa: E402
    GENESIS_HASH,
    CheckpointRecord,
    checkpoint_body,
    leaf_input,
    verify_entries,
    write_bundle,
)

CACHE = ROOT / "bench" / "results"


def build_log(n: int, checkpoint_every: int) -> tuple[list, dict[str, str], list[CheckpointRecord]]:
    """Entries shaped exactly like the app's (header bytes built as RFC 8785 by hand for speed)."""
    cache = CACHE / f"log-{n}-{checkpoint_every}.pickle"
    if cache.exists():
        with cache.open("rb") as fh:
            return pickle.load(fh)  # noqa: S301 - our own cache file
    key = Ed25519PrivateKey.generate()
    from governance.kernel.events.keys import key_id_for, public_hex

    pub = public_hex(key)
    kid = key_id_for(pub)
    entries = []
    checkpoints = []
    frontier = []  # leaf hashes, for checkpoint roots
    prev = GENESIS_HASH
    started = time.perf_counter()
    for seq in range(1, n + 1):
        payload = b'{"reason":"bench","role":"reviewer","scope":"acme","username":"user%d"}' % seq
        digest = hashlib.sha256(payload).hexdigest().encode()
        header = (
            b'{"actor":{"id":null,"name":null,"type":"system","via":"bench"},"kind":"role.granted",'
            b'"payload_sha256":"'
            + digest
            + b'","prev":"'
            + prev.encode()
            + b'","seq":%d,' % seq
            + b'"subject":null,"tenant":"acme","time":"2026-11-22T00:00:00.000000Z","v":1}'
        )
        entry_hash = hashlib.sha256(header).hexdigest()
        signature = key.sign(bytes.fromhex(entry_hash)).hex()
        entries.append((seq, header, payload, entry_hash, kid, signature))
        frontier.append(merkle.leaf_hash(leaf_input(entry_hash, kid, signature)))
        if seq % checkpoint_every == 0 or seq == n:
            root = merkle.root_from_leaf_hashes(frontier).hex()
            when = "2026-11-22T00:00:00.000000Z"
            body = checkpoint_body(seq, root, when)
            checkpoints.append(CheckpointRecord(seq, root, when, kid, key.sign(body).hex(), body))
        prev = entry_hash
    print(f"built {n} signed entries in {time.perf_counter() - started:.1f}s (cached in {cache})")
    CACHE.mkdir(exist_ok=True)
    data = (entries, {kid: pub}, checkpoints)
    with cache.open("wb") as fh:
        pickle.dump(data, fh)
    return data


def chain_pass(entries: list, keys: dict[str, str]) -> float:
    """Sequence, hash, link and payload-digest checks only (the real verify_entries, chain_only)."""
    started = time.perf_counter()
    result = verify_entries(iter(entries), public_keys=keys, chain_only=True)
    assert result.ok, result.line()
    return time.perf_counter() - started


def _bench_env(database_url: str, var_dir: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL"}},
        "DATABASE_URL": database_url,
        "GOVERNANCE_VAR_DIR": var_dir,
        "LOG_LEVEL": "WARNING",
        # Production settings: DEBUG off (no query log), persistent connections.
        "GOVERNANCE_ENV": "production",
        "SECRET_KEY": "bench-" + "x" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SIGNING_KEY_AUTOGENERATE": "1",
    }


def _fresh_database(env: dict[str, str], database_url: str) -> tuple[str, str]:
    db = database_url.rsplit("/", 1)[1]
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    subprocess.run(["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"], check=True, env=env)
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {db}"], check=True, env=env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    return admin, db


def load_and_verify_database(args: argparse.Namespace) -> None:
    """(In a process with Django set up on the bench database.) Load the synthetic log as
    `event_record` would have written it, then time `verify_database`."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    django.setup()
    from django.db import connection

    from accounts.models import Tenant
    from governance.kernel.events.models import Checkpoint, EventChainHead, SigningKey
    from governance.kernel.events.services import verify_database

    entries, keys, checkpoints = build_log(args.events, args.checkpoint_every)
    started = time.perf_counter()
    tenant = Tenant.objects.create(slug="acme", name="Acme")
    for kid, pub in keys.items():
        SigningKey.objects.create(kid=kid, public_key=pub)
    columns = (
        "seq, time, kind, tenant_id, actor_id, actor_name, via, subject_type, subject_id, "
        "subject_label, payload, header, payload_bytes, prev_hash, entry_hash, key_id, signature"
    )
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY governance_event ({columns}) FROM STDIN") as copy:
            prev = GENESIS_HASH
            for seq, header, payload, entry_hash, kid, signature in entries:
                copy.write_row(
                    (
                        seq,
                        "2026-11-22T00:00:00Z",
                        "role.granted",
                        tenant.pk,
                        None,
                        "",
                        "bench",
                        "",
                        "",
                        "",
                        payload.decode(),
                        header,
                        payload,
                        prev,
                        entry_hash,
                        kid,
                        signature,
                    )
                )
                prev = entry_hash
    Checkpoint.objects.bulk_create(
        Checkpoint(
            tree_size=c.tree_size,
            root_hash=c.root_hash,
            time="2026-11-22T00:00:00Z",
            key_id=c.key_id,
            signature=c.signature,
            body=c.body,
        )
        for c in checkpoints
    )
    EventChainHead.objects.update_or_create(
        pk=1, defaults={"seq": len(entries), "entry_hash": entries[-1][3]}
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE governance_event")
    print(f"loaded {len(entries)} events into the database in {time.perf_counter() - started:.1f}s")
    n = len(entries)
    for label, kwargs in (
        ("`events verify` (verify_database)", {}),
        ("verify_database(columns=False)", {"columns": False}),
    ):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            result = verify_database(**kwargs)  # type: ignore[arg-type]
            times.append(time.perf_counter() - started)
            assert result.ok, result.line()
            assert result.checked == n, result.line()
        best = min(times)
        print(f"{label + ':':<40}{best:6.2f}s  {n / best:>10,.0f} events/s")


def bench_verify_database(args: argparse.Namespace) -> None:
    build_log(args.events, args.checkpoint_every)  # cached for the child process
    with tempfile.TemporaryDirectory() as tmp:
        env = _bench_env(args.database_url, tmp)
        admin, db = _fresh_database(env, args.database_url)
        try:
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).resolve()),
                    "load-and-verify",
                    "--events",
                    str(args.events),
                    "--checkpoint-every",
                    str(args.checkpoint_every),
                    "--repeat",
                    str(args.repeat),
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
        finally:
            subprocess.run(
                ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"], check=False, env=env
            )


def bench_verify(args: argparse.Namespace) -> None:
    entries, keys, checkpoints = build_log(args.events, args.checkpoint_every)
    n = len(entries)
    chain = min(chain_pass(entries, keys) for _ in range(args.repeat))
    full_times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = verify_entries(iter(entries), public_keys=keys, checkpoints=checkpoints)
        full_times.append(time.perf_counter() - started)
        assert result.ok, result.line()
    full = min(full_times)
    started = time.perf_counter()
    sample = entries[: args.signature_sample]
    verify_entries(iter(sample), public_keys=keys, all_signatures=True)
    per_sig = (time.perf_counter() - started) / len(sample)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "log.bundle"
        with bundle.open("wb") as out:
            write_bundle(out, entries=entries, public_keys=keys, checkpoints=checkpoints, meta={})
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "governance.verify", str(bundle)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        offline = time.perf_counter() - started
        assert proc.returncode == 0, proc.stderr
        size_mb = bundle.stat().st_size / 1e6
    print(f"events: {n}, checkpoints: {len(checkpoints)} (every {args.checkpoint_every})")
    print(f"chain pass:                     {chain:6.2f}s  {n / chain:>10,.0f} events/s")
    print(
        f"full verification (in memory):  {full:6.2f}s  {n / full:>10,.0f} events/s  (chain + Merkle + {len(checkpoints)} checkpoint signatures)"
    )
    print(
        f"python -m governance.verify:    {offline:6.2f}s  ({size_mb:.0f} MB bundle, read + parse + verify)"
    )
    print(
        f"per-entry signature check:      {per_sig * 1e6:6.1f}us  ({1 / per_sig:,.0f}/s on one core)"
    )
    if args.database_url:
        bench_verify_database(args)


WRITER = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
django.setup()
from django.db import transaction
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
worker, count, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
payload = {"username": "bench", "role": "reviewer", "scope": "acme", "reason": "bench"}
while time.time() < start_at:
    time.sleep(0.001)
for i in range(count):
    with transaction.atomic():  # one transaction per event: the worst case for the head lock
        event_record(kind=EventKind.ROLE_GRANTED, actor=None, payload={**payload, "n": i})
"""


def run_writers(env: dict[str, str], writers: int, each: int) -> float:
    start_at = time.time() + 3.0  # let every process finish django.setup() first
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(each), str(start_at)], cwd=ROOT, env=env
        )
        for w in range(writers)
    ]
    for p in procs:
        if p.wait(timeout=600) != 0:
            raise SystemExit("a writer failed")
    return time.time() - start_at


def bench_append(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = _bench_env(args.database_url, tmp)
        admin, db = _fresh_database(env, args.database_url)
        subprocess.run(
            [sys.executable, "manage.py", "keys", "generate"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        one = run_writers(env, 1, args.per_writer * 8)
        one_rate = args.per_writer * 8 / one
        many = run_writers(env, 8, args.per_writer)
        many_rate = args.per_writer * 8 / many
        out = subprocess.run(
            [sys.executable, "manage.py", "events", "verify"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        subprocess.run(
            ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"], check=False, env=env
        )
    print(f"append: event_record, one transaction per event, {args.per_writer * 8} events per run")
    print(f"1 writer:   {one_rate:8.0f} events/s")
    print(f"8 writers:  {many_rate:8.0f} events/s  ratio {many_rate / one_rate:.2f}")
    print(f"verify after: {out.stdout.strip() or out.stderr.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--events", type=int, default=1_000_000)
    v.add_argument("--checkpoint-every", type=int, default=10_000)
    v.add_argument("--repeat", type=int, default=2)
    v.add_argument("--signature-sample", type=int, default=2000)
    v.add_argument(
        "--database-url",
        default=None,
        help="also time the database verifier on this PostgreSQL database (dropped and recreated)",
    )
    d = sub.add_parser("load-and-verify", help="(internal: run by verify --database-url)")
    d.add_argument("--events", type=int, default=100_000)
    d.add_argument("--checkpoint-every", type=int, default=10_000)
    d.add_argument("--repeat", type=int, default=2)
    a = sub.add_parser("append")
    a.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/governance_bench")
    a.add_argument("--per-writer", type=int, default=500)
    args = parser.parse_args()
    if args.what == "verify":
        bench_verify(args)
    elif args.what == "load-and-verify":
        load_and_verify_database(args)
    else:
        bench_append(args)


if __name__ == "__main__":
    main()
