"""The event log's services: one way in, atomic with its change, chained, signed, append-only."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import transaction

from accounts import services as accounts
from governance.kernel import merkle
from governance.kernel.errors import DomainError, Forbidden
from governance.kernel.events import keys as keystore
from governance.kernel.events import selectors
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import (
    AppendOnlyError,
    Checkpoint,
    Event,
    EventChainHead,
    SigningKey,
)
from governance.kernel.events.services import checkpoint_create, event_record, key_rotate
from governance.kernel.verify import leaf_input

pytestmark = pytest.mark.django_db


def verify_signature(event: Event) -> bool:
    key = SigningKey.objects.get(kid=event.key_id)
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key)).verify(
            bytes.fromhex(event.signature), bytes.fromhex(event.entry_hash)
        )
        return True
    except Exception:  # noqa: BLE001
        return False


def test_grant_writes_one_chained_signed_event(acme, make_user):
    boss = make_user("boss")  # a platform administrator may bring a new member in
    accounts.role_grant(user=boss, role="administrator", tenant=None, actor=None)
    alice = make_user("alice")
    before = Event.objects.count()
    grant, _ = accounts.role_grant(
        user=alice, role="reviewer", tenant=acme, actor=boss, reason="rota"
    )
    new = list(Event.objects.filter(seq__gt=before).order_by("seq"))
    assert [e.kind for e in new] == [EventKind.MEMBERSHIP_ADDED, EventKind.ROLE_GRANTED]
    event = new[-1]
    assert (event.actor, event.actor_name, event.tenant) == (boss, "boss", acme)
    assert (event.subject_type, event.subject_id) == ("accounts.rolegrant", str(grant.pk))
    assert event.payload == {
        "username": "alice",
        "role": "reviewer",
        "scope": "acme",
        "reason": "rota",
    }
    header = json.loads(bytes(event.header))
    # The stored bytes are exactly RFC 8785 of what they say, and the hash covers them.
    assert bytes(event.header) == rfc8785.dumps(header)
    assert event.entry_hash == hashlib.sha256(bytes(event.header)).hexdigest()
    assert header["prev"] == new[0].entry_hash == event.prev_hash
    assert header["seq"] == event.seq == new[0].seq + 1
    assert header["payload_sha256"] == hashlib.sha256(bytes(event.payload_bytes)).hexdigest()
    assert header["actor"] == {"type": "user", "id": str(boss.pk), "name": "boss", "via": ""}
    assert verify_signature(event)
    assert EventChainHead.objects.get().seq == event.seq


def test_idempotent_grant_writes_nothing(acme, make_user):
    alice = make_user("alice", acme="reviewer")
    count = Event.objects.count()
    accounts.role_grant(user=alice, role="reviewer", tenant=acme, actor=None)
    assert Event.objects.count() == count


def test_failed_transaction_leaves_no_event(acme, make_user):
    alice = make_user("alice")
    head = EventChainHead.objects.get().seq

    def grant_then_fail() -> None:
        with transaction.atomic():
            accounts.role_grant(user=alice, role="reviewer", tenant=acme, actor=None)
            # Not in the log yet: events are appended when the outermost transaction ends.
            assert not Event.objects.filter(kind=EventKind.ROLE_GRANTED).exists()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        grant_then_fail()
    assert EventChainHead.objects.get().seq == head
    assert not Event.objects.filter(payload__username="alice", kind=EventKind.ROLE_GRANTED).exists()


def test_refused_change_writes_no_event(acme, make_user):
    reviewer = make_user("rev", acme="reviewer")
    alice = make_user("alice")
    count = Event.objects.count()
    with pytest.raises(Forbidden):
        accounts.role_grant(user=alice, role="reviewer", tenant=acme, actor=reviewer)
    assert Event.objects.count() == count


@pytest.mark.django_db(transaction=True)
def test_event_record_needs_the_callers_transaction_and_a_known_kind():
    with pytest.raises(RuntimeError, match="inside the transaction"):
        event_record(kind=EventKind.TENANT_CREATED, actor=None)
    with pytest.raises(DomainError) as err, transaction.atomic():
        event_record(kind="made.up", actor=None)
    assert err.value.field == "kind"


@pytest.mark.usefixtures("db")
def test_payload_must_be_canonical_json():
    with pytest.raises(DomainError) as err, transaction.atomic():
        event_record(kind=EventKind.TENANT_CREATED, actor=None, payload={"n": float("nan")})
    assert err.value.field == "payload"


@pytest.mark.usefixtures("acme")
def test_events_cannot_be_updated_or_deleted(make_user):
    make_user("alice", acme="reviewer")
    event = Event.objects.order_by("-seq").first()
    assert event is not None
    event.kind = EventKind.ROLE_REVOKED
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        Event.objects.filter(seq=event.seq).update(kind="x")
    with pytest.raises(AppendOnlyError):
        Event.objects.all().delete()


@pytest.mark.usefixtures("acme")
def test_channel_is_recorded(make_user, client, token_client):
    boss = make_user("boss", acme="administrator")
    make_user("alice", acme="member")
    make_user("carol", acme="member")
    token_client(boss).post(
        "/api/v1/tenants/acme/grants/", {"username": "alice", "role": "reviewer"}, format="json"
    )
    via_token = Event.objects.filter(kind=EventKind.ROLE_GRANTED, payload__username="alice").get()
    assert via_token.via.startswith("token:gov_")
    client.force_login(boss)
    client.post("/tenants/acme/grant/", {"username": "carol", "role": "reviewer"})
    via_session = Event.objects.filter(kind=EventKind.ROLE_GRANTED, payload__username="carol").get()
    assert via_session.via.startswith("session:")
    assert json.loads(bytes(via_session.header))["actor"]["via"] == via_session.via


@pytest.mark.usefixtures("acme")
def test_rotation_is_signed_by_the_old_key_and_old_signatures_stay_valid(make_user):
    make_user("alice", acme="reviewer")
    old = SigningKey.objects.get(status="active")
    new = key_rotate(actor=None)
    rotation = Event.objects.filter(kind=EventKind.SIGNING_KEY_ROTATED).get()
    assert rotation.key_id == old.kid
    assert rotation.payload["new_kid"] == new.kid
    assert rotation.payload["old_kid"] == old.kid
    assert SigningKey.objects.get(kid=old.kid).status == "retired"
    make_user("bob", acme="reviewer")
    latest = Event.objects.order_by("-seq").first()
    assert latest is not None
    assert latest.key_id == new.kid
    assert all(verify_signature(e) for e in Event.objects.all())
    assert keystore.key_id_for(new.public_key) == new.kid


@pytest.mark.usefixtures("db", "tmp_path")
def test_production_refuses_to_write_without_a_key(settings):
    SigningKey.objects.all().delete()
    settings.SIGNING_KEY_AUTOGENERATE = False
    with pytest.raises(DomainError, match="keys generate"):
        accounts.tenant_create(slug="nokey", name="No key", actor=None)
    assert not Event.objects.filter(kind=EventKind.TENANT_CREATED, payload__slug="nokey").exists()


@pytest.mark.usefixtures("acme")
def test_checkpoint_signs_the_merkle_root(make_user):
    make_user("alice", acme="reviewer")
    cp = checkpoint_create()
    assert cp is not None
    assert cp.tree_size == selectors.log_size()
    leaves = [
        merkle.leaf_hash(leaf_input(e.entry_hash, e.key_id, e.signature))
        for e in Event.objects.order_by("seq")
    ]
    assert cp.root_hash == merkle.root_from_leaf_hashes(leaves).hex()
    key = SigningKey.objects.get(kid=cp.key_id)
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key.public_key)).verify(
        bytes.fromhex(cp.signature), bytes(cp.body)
    )
    assert json.loads(bytes(cp.body)) == {
        "size": cp.tree_size,
        "root": cp.root_hash,
        "time": json.loads(bytes(cp.body))["time"],
    }
    assert checkpoint_create() is None  # nothing new: no second checkpoint
    make_user("bob", acme="reviewer")
    assert checkpoint_create().tree_size > cp.tree_size
    assert Checkpoint.objects.count() == 2


@pytest.mark.usefixtures("db")
def test_header_bytes_are_exactly_rfc8785_for_awkward_inputs():
    """The header is assembled from canonical pieces; prove it equals RFC 8785 of the whole."""
    import random

    rng = random.Random(3)
    alphabet = [
        '"',
        "\\",
        "\n",
        "\t",
        "é",
        "€",
        "𝄞",
        "\u2028",
        "a",
        "Z",
        "0",
        " ",
        "{",
        "}",
        ":",
        ",",
    ]
    for i in range(60):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        payload = {
            text: [text, i, -i * 7, True, None, {"nested": text}],
            "n": rng.randint(-(2**40), 2**40),
        }
        with transaction.atomic():
            event = event_record(
                kind=EventKind.ROLE_GRANTED,
                actor=None,
                subject=("odd.type", text[:50] or "x", text),
                payload=payload,
                via=text[:30],
            )
        header = bytes(event.header)
        assert header == rfc8785.dumps(json.loads(header)), header
        assert json.loads(header)["subject"]["label"] == text
        assert json.loads(bytes(event.payload_bytes)) == payload
