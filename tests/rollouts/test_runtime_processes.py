"""A pointer move is seen by another server process that holds a warm answer, within a second
(the runtime generation: a Redis counter with REDIS_URL, else a file's modification time)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import event_record
from rollouts.models import Override
from tests.conftest import subprocess_database_url
from tests.redis_db import redis_url
from tests.rollouts.runtime_world import build_world

ROOT = Path(__file__).resolve().parents[2]

SERVER = textwrap.dedent(
    """
    import sys, time, django
    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rollouts.runtime import answer

    def ask():
        return answer("acme", "sales-agent", "qualifyLead", subject="u").version

    ask()
    with CaptureQueriesContext(connection) as queries:
        first = ask()
    print("warm", first, len(queries), flush=True)
    sys.stdin.readline()
    start = time.monotonic()
    while ask() == first and time.monotonic() - start < 5:
        time.sleep(0.01)
    print("moved", ask(), f"{time.monotonic() - start:.3f}", flush=True)
    """
)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("source", ["file", "redis"])
def test_pointer_move_is_seen_by_another_process_within_a_second(
    settings: Any, tmp_path: Path, source: str
) -> None:
    settings.RUNTIME_GENERATION_FILE = str(tmp_path / "runtime-generation")
    settings.REDIS_URL = ""
    if source == "redis":
        settings.REDIS_URL = redis_url()  # this run's own database; skips without Redis
    world = build_world()
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "DJANGO_SETTINGS_MODULE": "governance.settings",
        "RUNTIME_GENERATION_FILE": settings.RUNTIME_GENERATION_FILE,
        "REDIS_URL": settings.REDIS_URL,
        "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),  # it signs its snapshots too
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdin is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(proc.communicate(timeout=60)[1])
        assert line.split() == ["warm", "1.0.0", "0"]
        with transaction.atomic():  # what override_set does: the row and its event
            Override.objects.create(
                slot=world.slot, tenant=world.acme, version=world.v["v3"], reason="move"
            )
            event_record(
                kind=EventKind.POINTER_MOVED,
                actor=None,
                tenant=world.acme,
                payload={"slot": "qualifyLead", "to": "1.7.0"},
            )
        moved_at = time.monotonic()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        word, version, elapsed = proc.stdout.readline().split()
        assert (word, version) == ("moved", "1.7.0")
        assert float(elapsed) < 1.0
        print(f"{source}: the other process saw the move after {float(elapsed) * 1000:.0f} ms")
        assert time.monotonic() - moved_at < 2.0
    finally:
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, stderr
