"""``manage.py accounts passkeys list|revoke``: the operator's view of people's passkeys."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from accounts import services
from accounts.models import Passkey
from accounts.passkeys import RelyingParty
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from tests.cli import refused
from tests.passkey_authenticator import SoftAuthenticator

pytestmark = pytest.mark.django_db
PARTY = RelyingParty(rp_id="testserver", origin="http://testserver")


def register(user: Any, name: str, credential_id: bytes | None = None) -> Passkey:
    device = SoftAuthenticator()
    if credential_id is not None:
        device.credential_id = credential_id
    challenge, options = services.passkey_registration_begin(user=user, party=PARTY)
    return services.passkey_register(
        user=user, challenge_id=challenge.pk, credential=device.register(options), name=name
    )


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("accounts", "passkeys", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def keys(make_user: Any, acme: Any) -> dict[str, Passkey]:
    alice = make_user("alice", acme="member")
    bob = make_user("bob", acme="member")
    # The phone's credential id starts with "-" in base64url (0xf8), as about one in 32 do.
    return {
        "laptop": register(alice, "Laptop"),
        "phone": register(bob, "Phone", credential_id=b"\xf8" + bytes(31)),
    }


def test_list_all_and_one_person(keys: dict[str, Passkey]) -> None:
    lines = [line.split("\t") for line in run("list").splitlines()]
    assert [(r[0], r[1], r[2], r[3]) for r in lines] == [
        (str(keys["laptop"].pk), "alice", "Laptop", "active"),
        (str(keys["phone"].pk), "bob", "Phone", "active"),
    ]
    assert lines[0][5] == "-"  # never used
    assert lines[0][6] == keys["laptop"].credential_id
    only = [line.split("\t")[1] for line in run("list", "--user", "bob").splitlines()]
    assert only == ["bob"]


def test_revoke_by_id_or_credential(keys: dict[str, Passkey]) -> None:
    out = run("revoke", str(keys["laptop"].pk), "--reason", "Lost laptop")
    assert out.strip() == f"Revoked passkey {keys['laptop'].pk} of alice (Laptop)"
    laptop = Passkey.objects.get(pk=keys["laptop"].pk)
    assert (laptop.revoke_reason, laptop.revoked_by) == ("Lost laptop", None)
    event = Event.objects.get(kind=EventKind.PASSKEY_REVOKED)
    assert (event.actor_id, event.payload["reason"]) == (None, "Lost laptop")
    assert "\trevoked " in run("list", "--user", "alice")
    # By credential id (after "--": base64url may start with "-"); revoking twice changes nothing.
    assert keys["phone"].credential_id.startswith("-")
    run("revoke", "--reason", "Stolen", "--", keys["phone"].credential_id)
    assert Passkey.objects.get(pk=keys["phone"].pk).revoked_at is not None
    again = run("revoke", str(keys["laptop"].pk), "--reason", "Again")
    assert again.startswith("Already revoked: passkey")
    assert Event.objects.filter(kind=EventKind.PASSKEY_REVOKED).count() == 2


def test_refusals_are_one_line_exit_2(keys: dict[str, Passkey]) -> None:
    assert refused("accounts", "passkeys", "revoke", str(keys["laptop"].pk)) == (
        "reason: say why the passkey is revoked (--reason)"
    )
    assert refused("accounts", "passkeys", "revoke", "nope", "--reason", "x") == (
        "passkey: No passkey 'nope'."
    )
    assert refused("accounts", "passkeys", "list", "--user", "nobody") == (
        "username: No user 'nobody'."
    )
    assert Passkey.objects.filter(revoked_at__isnull=False).count() == 0
