"""Verification finds every kind of tampering, in the database and in exported bundles."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from accounts import services as accounts
from governance.kernel.events.models import Checkpoint, Event
from governance.kernel.events.services import (
    checkpoint_create,
    checkpoint_record,
    key_rotate,
    verify_database,
)
from governance.kernel.verify import CheckpointRecord, verify_bundle, verify_bundle_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def log(acme, globex, make_user):
    """About 30 events across a key rotation, with a checkpoint, then 4 events past it."""
    boss = make_user("boss", acme="administrator")
    for i in range(6):
        accounts.role_grant(
            user=make_user(f"u{i}"), role="reviewer", tenant=acme if i % 2 else globex, actor=None
        )
    key_rotate(actor=None)
    make_user("deputy", acme="administrator")  # a tenant keeps at least one administrator
    accounts.role_revoke(user=boss, role="administrator", tenant=acme, actor=None, reason="left")
    cp = checkpoint_create()
    assert cp is not None
    accounts.role_grant(user=make_user("late1"), role="reviewer", tenant=acme, actor=None)
    accounts.tenant_create(slug="initech", name="Initech", actor=None)
    return cp


def tamper(sql: str, params: list[Any]) -> None:
    """What an attacker with database access would do (bypassing the PostgreSQL triggers)."""
    guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if connection.vendor == "postgresql":
        import pgtrigger

        guard = pgtrigger.ignore(
            "governance.Event:event_append_only", "governance.Checkpoint:checkpoint_append_only"
        )
    with guard, connection.cursor() as cursor:
        cursor.execute(sql, params)


def last_seq() -> int:
    return Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def expect_failure(seq: int | None, reason: str) -> None:
    result = verify_database()
    assert not result.ok
    assert reason in result.reason, result.reason
    assert result.first_bad_seq == seq
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("events", "verify", stdout=out, stderr=err)
    assert code.value.code == 1
    assert err.getvalue().startswith(f"FAILED at {'seq ' + str(seq) if seq else 'log'}: ")
    assert out.getvalue() == ""


def test_clean_log_verifies(log):
    out = io.StringIO()
    call_command("events", "verify", stdout=out)
    assert out.getvalue().splitlines() == [
        f"OK: {last_seq()} events verified",
        "0 passkey approval(s) verified (0 with user verification)",
        "0 stored passkey approval(s) match their signed events",
    ]
    result = verify_database()
    assert result.checkpoints_verified == 1
    assert (
        result.signatures_checked == last_seq() - log.tree_size
    )  # the rest are covered by the checkpoint
    assert verify_database(all_signatures=True).signatures_checked == last_seq()
    from_mid = verify_database(from_seq=10)
    assert from_mid.ok
    assert from_mid.checked == last_seq() - 9


@pytest.mark.usefixtures("log")
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE governance_event SET payload = %s WHERE seq = %s", "payload column differs"),
        ("UPDATE governance_event SET actor_name = %s WHERE seq = %s", "actor columns differ"),
        ("UPDATE governance_event SET kind = %s WHERE seq = %s", "kind column differs"),
    ],
)
def test_altered_columns(sql, reason):
    value = {
        "payload": json.dumps({"username": "mallory"}),
        "actor": "mallory",
        "kind": "role.revoked",
    }
    tamper(
        sql, [value["payload" if "payload" in sql else "actor" if "actor" in sql else "kind"], 5]
    )
    expect_failure(5, reason)


@pytest.mark.usefixtures("log")
def test_altered_time():
    event = Event.objects.get(seq=7)
    from datetime import timedelta

    tamper(
        "UPDATE governance_event SET time = %s WHERE seq = %s", [event.time - timedelta(hours=1), 7]
    )
    expect_failure(7, "time column differs")


@pytest.mark.usefixtures("log")
def test_altered_signed_bytes():
    header = bytes(Event.objects.get(seq=6).header).replace(b'"type":"system"', b'"type":"user"  ')
    tamper("UPDATE governance_event SET header = %s WHERE seq = %s", [header, 6])
    expect_failure(6, "entry hash does not match")


@pytest.mark.usefixtures("log")
def test_rewritten_entry_with_matching_hash_breaks_the_next_link():
    import hashlib

    event = Event.objects.get(seq=8)
    forged = bytes(event.header).replace(b'"v":1', b'"v":2')
    tamper(
        "UPDATE governance_event SET header = %s, entry_hash = %s WHERE seq = %s",
        [forged, hashlib.sha256(forged).hexdigest(), 8],
    )
    expect_failure(9, "previous-hash link broken")


@pytest.mark.usefixtures("log")
def test_altered_previous_hash_column():
    tamper("UPDATE governance_event SET prev_hash = %s WHERE seq = %s", ["f" * 64, 4])
    expect_failure(4, "previous-hash column differs")


@pytest.mark.usefixtures("log")
def test_deleted_row_is_a_gap():
    tamper("DELETE FROM governance_event WHERE seq = %s", [10])
    expect_failure(10, "expected sequence number 10, found 11")


@pytest.mark.usefixtures("log")
def test_swapped_rows():
    tamper("UPDATE governance_event SET seq = %s WHERE seq = %s", [999999, 11])
    tamper("UPDATE governance_event SET seq = %s WHERE seq = %s", [11, 12])
    tamper("UPDATE governance_event SET seq = %s WHERE seq = %s", [12, 999999])
    expect_failure(11, "names another sequence number")


@pytest.mark.usefixtures("log")
def test_signature_by_unknown_key():
    tamper("UPDATE governance_event SET key_id = %s WHERE seq = %s", ["0123456789abcdef", 3])
    expect_failure(3, "signed by unknown key '0123456789abcdef'")


@pytest.mark.usefixtures("log")
def test_bad_signature_past_the_checkpoint():
    seq = last_seq()
    sig = Event.objects.get(seq=seq).signature
    tamper(
        "UPDATE governance_event SET signature = %s WHERE seq = %s",
        [sig[:-1] + ("0" if sig[-1] != "0" else "1"), seq],
    )
    expect_failure(seq, "signature does not verify")


def test_bad_signature_under_a_checkpoint_breaks_its_root(log):
    sig = Event.objects.get(seq=2).signature
    tamper(
        "UPDATE governance_event SET signature = %s WHERE seq = %s",
        [sig[:-1] + ("0" if sig[-1] != "0" else "1"), 2],
    )
    expect_failure(log.tree_size, f"checkpoint at size {log.tree_size}: Merkle root differs")
    assert verify_database(all_signatures=True).first_bad_seq == 2


def test_log_cut_back_before_a_checkpoint(log):
    tamper("DELETE FROM governance_event WHERE seq >= %s", [log.tree_size])
    expect_failure(None, f"covers {log.tree_size}: the log was cut back")


# --- bundles and the offline verifier ---------------------------------------------


def export(tmp_path: Path, name: str = "log.bundle") -> Path:
    path = tmp_path / name
    call_command("events", "export", "--out", str(path), stdout=io.StringIO())
    return path


def run_offline_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m governance.verify` with Django made unimportable, as an auditor would."""
    code = (
        "import sys, runpy; sys.modules['django'] = None; sys.modules['rest_framework'] = None; "
        f"sys.argv = ['governance.verify', *{list(args)!r}]; "
        "runpy.run_module('governance.verify', run_name='__main__')"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.usefixtures("log")
def test_offline_verifier_needs_no_django(tmp_path):
    bundle = export(tmp_path)
    proc = run_offline_verifier(str(bundle))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"OK: {last_seq()} events verified"
    assert "1 checkpoint(s)" in proc.stdout


@pytest.mark.usefixtures("log")
def test_offline_verifier_detects_a_log_cut_back_below_a_kept_checkpoint(tmp_path, make_user, acme):
    kept = tmp_path / "kept.json"
    accounts.role_grant(user=make_user("more"), role="reviewer", tenant=acme, actor=None)
    latest = checkpoint_create()
    assert latest is not None
    kept.write_text(json.dumps(checkpoint_record(latest).as_json()))
    bundle = export(tmp_path)
    assert run_offline_verifier(str(bundle), "--checkpoint", str(kept)).returncode == 0
    # The operator rewrites history: cut the log back and drop the newer checkpoint.
    lines = bundle.read_bytes().split(b"\n")
    head = json.loads(lines[0])
    head["checkpoints"] = [c for c in head["checkpoints"] if c["size"] < latest.tree_size - 2]
    cut = tmp_path / "cut.bundle"
    cut.write_bytes(
        b"\n".join([json.dumps(head).encode(), *lines[1 : latest.tree_size - 2]]) + b"\n"
    )
    assert run_offline_verifier(str(cut)).returncode == 0  # alone, a shorter log looks fine...
    proc = run_offline_verifier(str(cut), "--checkpoint", str(kept))
    assert proc.returncode == 1  # ...but not to an auditor who kept a checkpoint
    assert "the log was cut back" in proc.stderr


@pytest.mark.usefixtures("log")
def test_offline_verifier_rejects_untrusted_keys_and_garbage(tmp_path):
    bundle = export(tmp_path)
    proc = run_offline_verifier(str(bundle), "--trust-key", "0123456789abcdef")
    assert proc.returncode == 1
    assert "unknown key" in proc.stderr
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a bundle\n")
    proc = run_offline_verifier(str(junk))
    assert proc.returncode == 1
    assert "not a log bundle" in proc.stderr


def _mutate(rng: random.Random, lines: list[bytes]) -> tuple[str, list[bytes]]:
    """One random corruption of a bundle (line 0 is metadata, the rest are entries)."""
    out = list(lines)
    n = len(out) - 1
    kind = rng.choice(
        [
            "bitflip",
            "bitflip",
            "bitflip",
            "seq",
            "kid",
            "truncate",
            "drop",
            "swap",
            "dup",
            "checkpoint",
        ]
    )
    i = rng.randint(1, n)
    if kind == "bitflip":
        line = bytearray(out[i])
        pos = rng.randrange(len(line))
        line[pos] ^= 1 << rng.randrange(8)
        out[i] = bytes(line)
    elif kind == "seq":
        fields = out[i].split(b"\t")
        fields[0] = str(int(fields[0]) + rng.choice([-1, 1])).encode()
        out[i] = b"\t".join(fields)
    elif kind == "kid":
        fields = out[i].split(b"\t")
        keys = [k["kid"].encode() for k in json.loads(out[0])["keys"]]
        fields[2] = rng.choice(
            [k for k in keys if k != fields[2]] + [b"%016x" % rng.getrandbits(64)]
        )
        out[i] = b"\t".join(fields)
    elif kind == "truncate":
        out = out[: rng.randint(1, n)]
    elif kind == "drop":
        del out[i]
    elif kind == "swap":
        j = i + 1 if i < n else i - 1
        out[i], out[j] = out[j], out[i]
    elif kind == "dup":
        out.insert(i, out[i])
    else:
        head = json.loads(out[0])
        cp = rng.choice(head["checkpoints"])
        field = rng.choice(["root", "signature", "body", "size", "time"])
        if field == "size":
            cp["size"] += rng.choice([-1, 1])
        else:
            text = bytearray(cp[field].encode())
            pos = rng.randrange(len(text))
            text[pos] ^= 1 << rng.randrange(7)
            cp[field] = text.decode("latin-1")
        out[0] = json.dumps(head).encode()
    return kind, out


@pytest.mark.usefixtures("log")
def test_mutation_testing_accepts_no_corruption(tmp_path):
    latest = checkpoint_create()
    assert latest is not None
    kept = [
        CheckpointRecord.from_json(checkpoint_record(c).as_json()) for c in Checkpoint.objects.all()
    ]
    lines = export(tmp_path).read_bytes().rstrip(b"\n").split(b"\n")
    original = b"\n".join(lines) + b"\n"
    assert verify_bundle(io.BytesIO(original), kept=kept).ok
    rng = random.Random(20261122)
    tried: dict[str, int] = {}
    accepted = []
    for _ in range(1200):
        kind, mutated = _mutate(rng, lines)
        data = b"\n".join(mutated) + b"\n"
        if data == original:
            continue  # a no-op (e.g. swapping identical lines) is not a corruption
        tried[kind] = tried.get(kind, 0) + 1
        result = verify_bundle(io.BytesIO(data), kept=kept)
        if result.ok:
            accepted.append((kind, data))
    assert sum(tried.values()) >= 1000, tried
    assert set(tried) == {"bitflip", "seq", "kid", "truncate", "drop", "swap", "dup", "checkpoint"}
    assert accepted == []


@pytest.mark.usefixtures("log")
def test_parallel_file_verification_joins_its_slices_and_rejects_corruptions(tmp_path):
    """The offline verifier splits a big bundle across processes; every seam is checked."""
    latest = checkpoint_create()
    assert latest is not None
    kept = [
        CheckpointRecord.from_json(checkpoint_record(c).as_json()) for c in Checkpoint.objects.all()
    ]
    path = export(tmp_path)
    for workers in (2, 3, 5):
        result = verify_bundle_file(str(path), kept=kept, workers=workers, min_parallel_bytes=0)
        assert result.ok, result.line()
        assert result.checked == last_seq()
        assert result.tree_size == last_seq()
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    rng = random.Random(7)
    corrupt = tmp_path / "corrupt.bundle"
    tried = 0
    for _ in range(120):
        _, mutated = _mutate(rng, lines)
        data = b"\n".join(mutated) + b"\n"
        if data == path.read_bytes():
            continue
        corrupt.write_bytes(data)
        result = verify_bundle_file(str(corrupt), kept=kept, workers=3, min_parallel_bytes=0)
        assert not result.ok, f"accepted corruption: {data[:200]!r}"
        tried += 1
    assert tried >= 100


def test_export_keeps_checkpoints_newer_than_a_cut_back_log(log, tmp_path):
    """Cut the log's tail and rewind the head: the export still carries the newer checkpoint."""
    tamper("DELETE FROM governance_event WHERE seq >= %s", [log.tree_size - 3])
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE governance_eventchainhead SET seq = %s, entry_hash = "
            "(SELECT entry_hash FROM governance_event WHERE seq = %s)",
            [log.tree_size - 4, log.tree_size - 4],
        )
    path = tmp_path / "cut.bundle"
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("events", "export", "--out", str(path), stdout=io.StringIO(), stderr=err)
    assert code.value.code == 1
    assert f"covers {log.tree_size}: the log was cut back" in err.getvalue()
    head = json.loads(path.read_bytes().split(b"\n", 1)[0])
    assert [c["size"] for c in head["checkpoints"]] == [log.tree_size]
    proc = run_offline_verifier(str(path))
    assert proc.returncode == 1
    assert f"a checkpoint covers {log.tree_size}: the log was cut back" in proc.stderr


@pytest.mark.usefixtures("log")
def test_altered_tenant_and_subject_columns(globex):
    event = Event.objects.filter(tenant__slug="acme").order_by("seq").first()
    assert event is not None
    tamper(
        "UPDATE governance_event SET tenant_id = %s WHERE seq = %s",
        [globex.pk.hex if connection.vendor == "sqlite" else str(globex.pk), event.seq],
    )
    expect_failure(event.seq, "tenant column differs")


@pytest.mark.usefixtures("log")
def test_altered_subject_column():
    event = Event.objects.exclude(subject_type="").order_by("seq").first()
    assert event is not None
    tamper("UPDATE governance_event SET subject_id = %s WHERE seq = %s", ["other", event.seq])
    expect_failure(event.seq, "subject columns differ")


@pytest.mark.usefixtures("log")
@pytest.mark.parametrize(
    ("column", "reason"),
    [("via", "actor columns differ"), ("subject_label", "subject columns differ")],
)
def test_altered_via_and_subject_label_columns(column, reason):
    """The channel (``via``) and the subject's label are signed too: a rewritten column fails
    (on SQLite through the generic comparison, on PostgreSQL through the SQL one)."""
    from governance.kernel.events.services import column_problem

    event = Event.objects.exclude(subject_type="").exclude(via="").order_by("seq").first()
    assert event is not None
    assert column_problem(event) is None
    tamper(f"UPDATE governance_event SET {column} = %s WHERE seq = %s", ["forged", event.seq])  # noqa: S608
    assert reason in (column_problem(Event.objects.get(seq=event.seq)) or "")
    expect_failure(event.seq, reason)


@pytest.mark.usefixtures("log")
@pytest.mark.postgres
@pytest.mark.parametrize("column", ["via", "subject_label"])
def test_postgresql_sql_comparison_flags_altered_via_and_subject_label(column, monkeypatch):
    """The fast path's SQL itself finds the rewritten column: that row, and only that row, is
    handed to ``_compare`` (which would otherwise never see it)."""
    from governance.kernel.events.services import verification as services

    event = Event.objects.exclude(subject_type="").exclude(via="").order_by("seq").first()
    assert event is not None
    tamper(f"UPDATE governance_event SET {column} = %s WHERE seq = %s", ["forged", event.seq])  # noqa: S608
    rechecked: list[int] = []
    original = services._compare

    def counting(header: bytes, payload: bytes, row: tuple[Any, ...], slugs: Any) -> Any:
        rechecked.append(row[0])
        return original(header, payload, row, slugs)

    monkeypatch.setattr(services, "_compare", counting)
    result = verify_database()
    assert not result.ok
    assert result.first_bad_seq == event.seq
    assert rechecked == [event.seq]


@pytest.mark.usefixtures("log")
def test_payload_bytes_that_are_not_json_fail_cleanly():
    """On PostgreSQL the verifier compares payloads in SQL; bytes that are not UTF-8 JSON must
    not break the query but be reported where they are."""
    tamper("UPDATE governance_event SET payload_bytes = %s WHERE seq = %s", [b"\xff\xfe{", 9])
    expect_failure(9, "payload does not match its signed digest")


@pytest.mark.usefixtures("log")
@pytest.mark.postgres
def test_postgresql_verifier_parses_no_json_for_rows_that_agree(make_user, acme, monkeypatch):
    """The fast path rebuilds each header from its columns; only a row that differs is parsed."""
    from governance.kernel.events import services
    from governance.kernel.events.kinds import EventKind
    from governance.kernel.events.services import verification

    boss = make_user('zoë-"o\'neil"\\', acme="administrator")
    with transaction.atomic():
        services.event_record(
            kind=EventKind.ROLE_GRANTED,
            actor=boss,
            tenant=acme,
            subject=("accounts.user", "x\ty", 'label "quoted" \u2028 ünïcode \U0001f600'),
            payload={"float": 1.5, "big": 2**40, "nested": {"b": [True, None], "a": "é"}},
            via="token:ci",
        )
    parsed: list[int] = []
    original = verification._compare

    def counting(*args: Any, **kwargs: Any) -> Any:
        parsed.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(verification, "_compare", counting)
    assert verify_database().ok
    assert parsed == []
