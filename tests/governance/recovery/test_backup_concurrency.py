"""A backup taken on PostgreSQL while 4 processes keep writing shows one moment.

Four writer processes publish versions, create tenants and grant roles through the services
(each write appends its events) from before ``backup create`` starts until after it ends.
The backup must be consistent: the manifest's log size equals the event rows it holds (seq
1..N, no gap), the chain head and checkpoints agree with it, every foreign key in every table
file points at a row the backup holds, and restoring it into a fresh database verifies, with
the manifest's log root.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps

from tests.governance.recovery.sites import ROOT, Site, Sites, new_prefix

pytestmark = pytest.mark.postgres

WRITERS = 4

#: A registry with some weight, so that the backup's snapshot is open while writers commit.
SETUP = """
from django.db import transaction
from accounts import services as accounts
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import EventSpec, events_record
from registry import services
from registry.models import ArtifactClass
services.install_builtin_classes()
acme = accounts.tenant_create(slug="acme", name="Acme", actor=None)
accounts.user_create(username="writer", actor=None, validate=False)
prompt = ArtifactClass.objects.get(slug="prompt")
for w in range(%(writers)d):
    artifact = services.artifact_create(
        artifact_class=prompt, tenant=acme, slug=f"writer-{w}", title=f"Writer {w}", actor=None
    )
    with transaction.atomic():
        for i in range(%(versions)d):
            services.version_publish(
                artifact=artifact, content=services.Content(text=f"Hello {{{{ name }}}} #{i}"),
                impact="patch", reason="load", actor=None,
            )
payload = {"username": "writer", "role": "reviewer", "scope": "acme", "reason": "load"}
for start in range(0, %(events)d, 2000):
    with transaction.atomic():
        events_record([EventSpec(EventKind.ROLE_GRANTED, None, payload={**payload, "n": start + i}) for i in range(2000)])
"""

#: One writer: publishes, creates a tenant and grants a role in it, until the stop file exists.
WRITER = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
django.setup()
from pathlib import Path
from accounts import services as accounts
from registry import services
from registry.models import Artifact
worker, stop, started = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
artifact = Artifact.objects.get(slug=f"writer-{worker}")
i = 0
while not stop.exists():
    services.version_publish(
        artifact=artifact, content=services.Content(text=f"Busy {{{{ name }}}} {worker}.{i}"),
        impact="patch", reason="busy", actor=None,
    )
    tenant = accounts.tenant_create(slug=f"w{worker}-{i}", name=f"Writer {worker} #{i}", actor=None)
    accounts.role_grant(user="writer", role="reviewer", tenant=tenant, actor=None)
    i += 1
    if i == 1:
        started.touch()
print(i)
"""


def table_rows(backup: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table file's rows, by model label."""
    manifest = json.loads((backup / "manifest.json").read_bytes())
    out = {}
    for table in manifest["tables"]:
        lines = (backup / table["file"]).read_text().splitlines()
        out[table["model"]] = [json.loads(line) for line in lines if line.strip()]
        assert len(out[table["model"]]) == table["rows"], table
    return out


def dangling_keys(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every foreign key value in the backup whose target row the backup does not hold."""
    held: dict[tuple[str, str], set[str]] = defaultdict(set)
    wanted = []
    for label in rows:
        model = apps.get_model(label)
        for field in model._meta.concrete_fields:
            if field.many_to_one or field.one_to_one:
                target = field.related_model._meta.label_lower
                column = field.target_field.attname
                wanted.append((label, field.attname, target, column))
    for _, _, target, column in wanted:
        if (target, column) not in held:
            held[target, column] = {str(r[column]) for r in rows.get(target, [])}
    problems = []
    for label, attname, target, column in wanted:
        for row in rows[label]:
            value = row.get(attname)
            if value is not None and str(value) not in held[target, column]:
                problems.append(f"{label}.{attname}={value} -> {target}.{column} missing")
    return problems


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    made = Sites(tmp_path_factory.mktemp("busy"), new_prefix())
    try:
        yield made
    finally:
        made.drop_all()


def log_size(site: Site) -> int:
    out = site.python("from governance.kernel.events.selectors import log_size; print(log_size())")
    return int(out)


def test_backup_while_four_processes_write_is_one_moment(sites: Sites, tmp_path: Path) -> None:
    site = sites.postgres("busy")
    site.ok("keys", "generate")
    site.python(SETUP % {"writers": WRITERS, "versions": 50, "events": 10000})
    stop = tmp_path / "stop"
    (tmp_path / "backups").mkdir()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(stop), str(tmp_path / f"started-{w}")],
            cwd=ROOT,
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / f"started-{w}").exists() for w in range(WRITERS)):
            assert time.monotonic() < deadline, "the writers did not start"
            assert all(p.poll() is None for p in writers), [p.communicate() for p in writers]
            time.sleep(0.1)
        before = log_size(site)
        made = site.manage("backup", "create", "--out", str(tmp_path / "backups"))
        after = log_size(site)
        time.sleep(1)  # and the writers go on after it
    finally:
        stop.touch()
        outcomes = [p.communicate(timeout=120) for p in writers]
    assert made.returncode == 0, made.stderr
    assert [p.returncode for p in writers] == [0] * WRITERS, outcomes
    written = [int(out) for out, _ in outcomes]
    assert all(n > 0 for n in written), written
    assert after > before, "no event was appended while the backup ran"

    backup = next((tmp_path / "backups").glob("backup-*"))
    manifest = json.loads((backup / "manifest.json").read_bytes())
    size = manifest["log"]["size"]
    assert before <= size <= after
    rows = table_rows(backup)
    seqs = sorted(int(r["seq"]) for r in rows["governance.event"])
    assert seqs == list(range(1, size + 1))  # exactly the log's first N events
    assert [int(r["seq"]) for r in rows["governance.eventchainhead"]] == [size]
    assert all(int(r["tree_size"]) <= size for r in rows.get("governance.checkpoint", []))
    assert dangling_keys(rows) == []

    # Every version the snapshot holds has its publish event in the snapshot's log, and the
    # other way round: the tables and the log are the same moment.
    def subjects(kind: str) -> set[str]:
        return {str(r["subject_id"]) for r in rows["governance.event"] if r["kind"] == kind}

    version_ids = {str(r["id"]) for r in rows["registry.version"]}
    assert subjects("artifact.version_published") == version_ids
    assert subjects("tenant.created") == {str(r["id"]) for r in rows["accounts.tenant"]}

    fresh = sites.postgres("busy-restored")
    restored = fresh.manage("backup", "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    events, registry = fresh.verify()
    assert events.startswith("OK"), events
    assert registry.startswith("OK"), registry
    seen = fresh.fingerprint(upto=size)
    assert seen["log"]["root"] == manifest["log"]["root"]
    assert seen["tables"]["registry.version"][0] == len(version_ids)
    assert seen["tables"]["governance.event"][0] == size
