"""The event log on PostgreSQL: triggers that refuse rewrites, and many processes appending at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from accounts import services as accounts
from governance.kernel.events.models import Event, EventChainHead
from governance.kernel.events.services import verify_database
from tests.conftest import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITER = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
django.setup()
from accounts import services
worker, count = sys.argv[1], int(sys.argv[2])
for i in range(count):
    services.tenant_create(slug=f"w{worker}-{i}", name=f"Writer {worker} #{i}", actor=None)
"""


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE governance_event SET kind = 'role.revoked' WHERE seq = 1",
        "DELETE FROM governance_event WHERE seq = 1",
        "TRUNCATE governance_event",
        "UPDATE governance_checkpoint SET root_hash = 'x'",
    ],
)
def test_triggers_refuse_rewriting_history(sql):
    from governance.kernel.events.services import checkpoint_create

    accounts.tenant_create(slug="acme", name="Acme", actor=None)
    checkpoint_create()
    before = list(Event.objects.values_list("seq", "kind", "entry_hash"))
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)
    assert "pgtrigger: Cannot" in str(err.value)
    assert list(Event.objects.values_list("seq", "kind", "entry_hash")) == before


@pytest.mark.usefixtures("db")
def test_parallel_processes_never_fork_the_chain_or_leave_a_gap():
    accounts.tenant_create(slug="first", name="First", actor=None)  # registers the signing key
    start = EventChainHead.objects.get().seq
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "SIGNING_KEY_DIR": str(settings.SIGNING_KEY_DIR),
    }
    writers, each = 6, 25
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(w), str(each)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    errors = [p.communicate(timeout=180)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, errors
    seqs = list(Event.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, start + writers * each + 1))  # gapless, no duplicates
    hashes = list(Event.objects.order_by("seq").values_list("prev_hash", "entry_hash"))
    assert all(
        hashes[i][0] == hashes[i - 1][1] for i in range(1, len(hashes))
    )  # one chain, no fork
    assert EventChainHead.objects.get().seq == seqs[-1]
    result = verify_database(all_signatures=True)
    assert result.ok, result.line()
    assert result.checked == start + writers * each
