"""Revoking a compromised signing key: the service, the CLI, and what verification then says."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from accounts import services as accounts
from governance.kernel import merkle
from governance.kernel.errors import Conflict, DomainError, NotFound
from governance.kernel.events import keys as keystore
from governance.kernel.events import selectors
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Checkpoint, Event, EventChainHead, SigningKey
from governance.kernel.events.services import (
    checkpoint_create,
    iso_time,
    key_revoke,
    key_rotate,
    verify_database,
)
from governance.kernel.verify import checkpoint_body
from tests.cli import refused

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def rotated(acme, make_user) -> tuple[SigningKey, SigningKey]:
    """(old, new): events and a checkpoint signed by the old key, then a rotation."""
    make_user("alice", acme="reviewer")
    assert checkpoint_create() is not None
    make_user("bob", acme="reviewer")  # past the checkpoint: its own signature is checked
    old = SigningKey.objects.get(status="active")
    new = key_rotate(actor=None)
    return old, new


def forge_with(kid: str, tenant_slug: str) -> Event:
    """What a holder of the stolen key with database access would do: append signed with it."""
    EventChainHead.objects.filter(pk=1).update(key_id=kid)
    with transaction.atomic():
        accounts.tenant_create(slug=tenant_slug, name="Forged", actor=None)
    return Event.objects.order_by("-seq").first()  # type: ignore[return-value]


def run_offline_verifier(*args: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys, runpy; sys.modules['django'] = None; "
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


def export(path: Path) -> Path:
    call_command("events", "export", "--out", str(path), stdout=io.StringIO())
    return path


def test_revoking_marks_the_key_and_appends_a_signed_event(rotated):
    old, new = rotated
    key = key_revoke(kid=old.kid, reason="  laptop stolen ", actor=None)
    stored = SigningKey.objects.get(kid=old.kid)
    assert stored.revoked_at is not None
    assert stored.status == SigningKey.Status.REVOKED
    assert stored.revoked_at == key.revoked_at
    assert stored.revoke_reason == "laptop stolen"
    event = Event.objects.filter(kind=EventKind.SIGNING_KEY_REVOKED).get()
    assert event.payload == {
        "kid": old.kid,
        "revoked_at": iso_time(stored.revoked_at),
        "reason": "laptop stolen",
    }
    assert (event.subject_type, event.subject_id) == ("governance.signingkey", old.kid)
    assert event.key_id == new.kid  # signed by the key that replaced it
    # What the revoked key signed before stays valid, signatures and checkpoint alike.
    result = verify_database(all_signatures=True)
    assert result.ok, result.line()
    assert result.checkpoints_verified == 1


@pytest.mark.parametrize(
    ("which", "reason", "error", "message"),
    [
        ("active", "lost", Conflict, "active key: run `keys rotate` first"),
        ("nope", "lost", NotFound, "No signing key 'nope'"),
        ("old", "   ", DomainError, "reason is required"),
    ],
)
def test_revocation_refusals_write_nothing(rotated, which, reason, error, message):
    old, new = rotated
    kid = {"active": new.kid, "old": old.kid}.get(which, which)
    before = Event.objects.count()
    with pytest.raises(error, match=message):
        key_revoke(kid=kid, reason=reason, actor=None)
    assert not SigningKey.objects.filter(status=SigningKey.Status.REVOKED).exists()
    assert Event.objects.count() == before


def test_a_key_is_revoked_once(rotated):
    old, _ = rotated
    key_revoke(kid=old.kid, reason="lost", actor=None)
    with pytest.raises(Conflict, match="already revoked"):
        key_revoke(kid=old.kid, reason="again", actor=None)
    assert Event.objects.filter(kind=EventKind.SIGNING_KEY_REVOKED).count() == 1


def test_cli_revoke_and_list(rotated):
    old, new = rotated
    assert refused("keys", "revoke", new.kid, "--reason", "x").startswith(
        f"kid: Key {new.kid} is the active key"
    )
    out = io.StringIO()
    call_command("keys", "revoke", old.kid, "--reason", "leaked", stdout=out)
    assert out.getvalue().startswith(f"Revoked: {old.kid} at ")
    listing = io.StringIO()
    call_command("keys", "list", stdout=listing)
    row = next(line for line in listing.getvalue().splitlines() if line.startswith(old.kid))
    assert "\trevoked\t" in row
    assert " revoked " in row


def test_an_entry_signed_after_revocation_fails_everywhere(rotated, tmp_path):
    old, _ = rotated
    key_revoke(kid=old.kid, reason="leaked", actor=None)
    clean = export(tmp_path / "clean.bundle")
    forged = forge_with(old.kid, "forged")
    assert forged.key_id == old.kid
    assert keystore.private_key(old.kid)  # the forger holds it: the signature itself is valid
    result = verify_database()
    assert not result.ok
    assert result.first_bad_seq == forged.seq
    assert f"signed by key {old.kid} at " in result.reason
    assert "after its revocation at" in result.reason
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("events", "verify", stdout=io.StringIO(), stderr=err)
    assert code.value.code == 1
    assert err.getvalue().startswith(f"FAILED at seq {forged.seq}: signed by key {old.kid}")
    # Offline: the bundle's metadata carries the revocation.
    bundle = export(tmp_path / "forged.bundle")
    head = json.loads(bundle.read_bytes().splitlines()[0])
    revoked = [k for k in head["keys"] if k["kid"] == old.kid]
    assert revoked[0]["status"] == "revoked"
    revoked_at = SigningKey.objects.get(kid=old.kid).revoked_at
    assert revoked_at is not None
    assert revoked[0]["revoked_at"] == iso_time(revoked_at)
    proc = run_offline_verifier(str(bundle))
    assert proc.returncode == 1
    assert f"FAILED at seq {forged.seq}: signed by key {old.kid}" in proc.stderr
    # The export from before the forgery still verifies, with every signature checked.
    proc = run_offline_verifier(str(clean), "--all-signatures")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"OK: {forged.seq - 1} events verified")


def test_a_checkpoint_signed_after_revocation_fails(rotated, tmp_path):
    old, _ = rotated
    key_revoke(kid=old.kid, reason="leaked", actor=None)
    good = checkpoint_create()
    assert good is not None
    assert verify_database().ok
    # A forged tree head signed by the revoked key now, one event further (sizes are unique).
    later = iso_time(timezone.now())
    accounts.tenant_create(slug="more", name="More", actor=None)
    size = Event.objects.count()
    root = merkle.root_from_leaf_hashes(selectors.leaf_hashes(size)).hex()
    body = checkpoint_body(size, root, later)
    Checkpoint.objects.create(
        tree_size=size,
        root_hash=root,
        time=timezone.now(),
        key_id=old.kid,
        signature=keystore.sign(old.kid, body),
        body=body,
    )
    result = verify_database()
    assert not result.ok
    assert result.reason.startswith(f"checkpoint at size {size}: signed by key {old.kid}")
    proc = run_offline_verifier(str(export(tmp_path / "cp.bundle")))
    assert proc.returncode == 1
    assert f"checkpoint at size {size}: signed by key {old.kid}" in proc.stderr
