"""`make bench` workload for backups: back up and restore 10,000 versions and 100,000 events.

1. Build a registry through the services (production settings, a fresh database):
   10,000 versions (9 prompts with 1,000 text versions each, one model with 1,000
   file versions in the content store), then events appended in batches until the log
   holds 100,000, and a signed checkpoint.
2. Time `manage.py backup create --out DIR` (the whole command, Django start included) and
   report the backup's seconds and bytes.
3. Time `manage.py backup restore DIR` into a fresh, migrated, empty database (its own
   content store; the same signing keys), verification after the restore included, and
   check that the restored log's root is the manifest's.
4. PASS when the restore takes at most 2x the backup's time; exit 1 otherwise.

Run: .venv/bin/python bench/backup_bench.py
     .venv/bin/python bench/backup_bench.py --database-url postgres://postgres@127.0.0.1:5432/governance_bench_backup
     (that database, and the same name with ``_restore``, are dropped and recreated)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BENCH, ROOT, fresh_app, manage, run_worker

#: A built SQLite registry is kept here (database file, content store, keys) and copied
#: into the next run's folder: building it takes minutes, backing it up seconds.
CACHE = BENCH / "results"

BUILD = r"""
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from django.db import transaction
from accounts.models import Tenant
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.selectors import log_size
from governance.kernel.events.services import EventSpec, checkpoint_create, events_record
from registry import services
from registry.models import ArtifactClass

versions, events = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
services.install_builtin_classes()
tenant = Tenant.objects.get(slug="acme")
prompt = ArtifactClass.objects.get(slug="prompt")
model = ArtifactClass.objects.get(slug="model")
per = max(1, versions // 10)
text = "Qualify leads for {{ product }}. Customer: {{ customer }}. Revision %d of %s."
made = 0
for a in range(10):
    cls = model if a == 9 else prompt
    artifact = services.artifact_create(
        artifact_class=cls, tenant=tenant, slug=f"bench-{a}", title=f"Bench {a}", actor=None
    )
    for start in range(0, per, 250):
        with transaction.atomic():
            for i in range(start, min(per, start + 250)):
                if cls is model:
                    content = services.Content(
                        file_bytes=os.urandom(4096), file_name="weights.bin"
                    )
                else:
                    content = services.Content(text=text % (i, artifact.slug))
                services.version_publish(
                    artifact=artifact, content=content, impact="patch", reason="bench", actor=None
                )
                made += 1
print(f"published {made} versions in {time.perf_counter() - started:.1f}s", flush=True)
started = time.perf_counter()
payload = {"username": "bench", "role": "reviewer", "scope": "acme", "reason": "bench"}
missing = events - log_size() - 1  # the checkpoint is not an event; keep one for the backup's own
n = 0
while n < missing:
    batch = min(5000, missing - n)
    with transaction.atomic():
        events_record(
            [EventSpec(EventKind.ROLE_GRANTED, None, tenant=tenant, payload={**payload, "n": n + i}) for i in range(batch)]
        )
    n += batch
checkpoint_create()
print(f"appended {n} more events in {time.perf_counter() - started:.1f}s; log size {log_size()}", flush=True)
"""

ROOT_OF = r"""
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from governance.kernel import merkle
from governance.kernel.events.selectors import leaf_hashes
from registry.models import Version
print(merkle.root_from_leaf_hashes(leaf_hashes(int(sys.argv[1]))).hex(), Version.objects.count())
"""


def timed(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run ``manage.py <args>`` (must succeed); its wall-clock seconds and stdout."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return seconds, proc.stdout


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def build(source: dict[str, str], versions: int, events: int, *, reuse: bool, keep: bool) -> None:
    """The registry to back up, in ``source``: copied from the cache when ``reuse`` and it
    is there, else built (and copied to the cache when ``keep``)."""
    var = Path(source["GOVERNANCE_VAR_DIR"])
    kept = CACHE / f"backup-source-{versions}-{events}"
    parts = ("governance.sqlite3", "blobs", "keys")
    if reuse and (kept / "governance.sqlite3").exists():
        for part in parts:
            if (kept / part).is_dir():
                shutil.copytree(kept / part, var / part, dirs_exist_ok=True)
            else:
                shutil.copyfile(kept / part, var / part)
        manage(source, "migrate", "-v0")
        print(f"registry copied from {kept} (--rebuild to build it again)")
        return
    manage(source, "keys", "generate", quiet=True)
    manage(source, "accounts", "tenant-add", "acme", "--name", "Acme", quiet=True)
    run_worker(source, BUILD, str(versions), str(events))
    if keep:
        shutil.rmtree(kept, ignore_errors=True)
        kept.mkdir(parents=True)
        for part in parts:
            if (var / part).is_dir():
                shutil.copytree(var / part, kept / part)
            else:
                shutil.copyfile(var / part, kept / part)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--archive", action="store_true", help="back up as one .tar.gz")
    parser.add_argument(
        "--rebuild", action="store_true", help="build the SQLite registry again, not from the cache"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (dropped and recreated; the restore goes to <name>_restore)",
    )
    args = parser.parse_args()
    label = "PostgreSQL" if args.database_url else "SQLite"
    restore_url = f"{args.database_url}_restore" if args.database_url else None
    with tempfile.TemporaryDirectory() as out, fresh_app(args.database_url) as source:
        print(f"backup bench on {label}, production settings")
        sqlite = not args.database_url
        build(source, args.versions, args.events, reuse=sqlite and not args.rebuild, keep=sqlite)
        extra = ["--archive"] if args.archive else []
        backup_s, said = timed(source, "backup", "create", "--out", out, *extra)
        backup = next(Path(out).glob("backup-*"))
        size = size_of(backup)
        print(said.strip())
        keys = {"SIGNING_KEY_DIR": str(Path(source["GOVERNANCE_VAR_DIR"]) / "keys")}
        with fresh_app(restore_url, **keys) as target:
            restore_s, said = timed(target, "backup", "restore", str(backup))
            print(said.strip())
            if backup.is_dir():
                manifest = json.loads((backup / "manifest.json").read_bytes())
                log = manifest["log"]
                root, versions = subprocess.run(
                    [sys.executable, "-c", ROOT_OF, str(log["size"])],
                    cwd=ROOT,
                    env=target,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                same = "yes" if root == log["root"] else "NO"
                print(
                    f"restored: {versions} versions, log {log['size']} events, root equals the manifest's: {same}"
                )
                if root != log["root"]:
                    raise SystemExit(1)
    ratio = restore_s / backup_s
    verdict = "PASS" if ratio <= 2 else "FAIL"
    print(f"backup create:  {backup_s:7.2f}s  {size / 1e6:8.1f} MB ({size:,} bytes)")
    print(f"backup restore: {restore_s:7.2f}s  (verification after the restore included)")
    print(f"restore / backup = {ratio:.2f} (limit 2.00): {verdict}")
    if verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
