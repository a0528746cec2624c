"""Appending to the chain, and the keys that sign it.

``event_record`` is the one way in. Every other service calls it inside its own transaction,
so an event exists exactly when its state change does; it is appended when the outermost
transaction ends (``deferral``) by ``append_drafts``, under one lock of the chain head."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from governance.kernel.errors import Conflict, DomainError, NotFound
from governance.kernel.events import deferral, generation
from governance.kernel.events import keys as keystore
from governance.kernel.events.context import current_channel
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import (
    GENESIS_HASH,
    Event,
    EventChainHead,
    SigningKey,
)
from governance.kernel.inputs import clean_text

log = logging.getLogger("governance.kernel.events.services")


Subject = Model | tuple[str, str, str] | None


#: PostgreSQL advisory lock key that serialises appends ("gov-log" as an int).
APPEND_LOCK_ID = 0x676F762D6C6F67


#: Events per INSERT when a transaction appends many at its end.
APPEND_BATCH = 1000


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _subject_fields(subject: Subject) -> tuple[str, str, str]:
    if subject is None:
        return "", "", ""
    if isinstance(subject, tuple):
        kind, ident, label = subject
        return kind[:100], str(ident)[:100], str(label)[:200]
    meta = subject._meta
    return f"{meta.app_label}.{meta.model_name}", str(subject.pk), str(subject)[:200]


def canonical(value: Any) -> bytes:
    """RFC 8785 bytes; a payload that cannot be canonicalised is refused with a clear error."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise DomainError(f"Event payload is not canonical JSON: {exc}", field="payload") from exc


def active_key() -> SigningKey:
    key = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).first()
    if key is not None:
        return key
    if not settings.SIGNING_KEY_AUTOGENERATE:
        raise DomainError(
            "No active signing key: run `python manage.py keys generate` before writing.",
            field="signing_key",
        )
    log.warning("No signing key: generating a development key in %s", keystore.key_dir())
    return key_generate(actor=None)


@dataclass
class EventSpec:
    """One event to append (see ``events_record``)."""

    kind: str
    actor: Any | None
    tenant: Any | None = None
    subject: Subject = None
    payload: dict[str, Any] | None = None
    via: str | None = None


def event_record(
    *,
    kind: str,
    actor: Any | None,
    tenant: Any | None = None,
    subject: Subject = None,
    payload: dict[str, Any] | None = None,
    via: str | None = None,
) -> Event:
    """Append one event to the log, in the caller's transaction, when that transaction ends.

    The event is checked and prepared now; it is appended when the outermost service
    transaction is about to commit (``governance.kernel.events.deferral``), so the log's lock
    is the last lock every transaction takes. Appending locks the chain head (an advisory
    lock and ``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock does the same),
    so concurrent appends never fork the chain or leave a gap; a rolled-back caller takes
    its event with it. The returned event gets its ``seq`` and hashes when it is appended.
    """
    return events_record([EventSpec(kind, actor, tenant, subject, payload, via)])[0]


def events_record(specs: Sequence[EventSpec]) -> list[Event]:
    """Append several events in order, at the end of the caller's transaction (see ``event_record``)."""
    if not connection.in_atomic_block:
        raise RuntimeError("event_record must be called inside the transaction of its state change")
    drafts = [_draft(spec) for spec in specs]
    deferral.defer(connection, drafts, append_drafts)
    return [event for event, _, _ in drafts]


def events_pending() -> list[Event]:
    """Events this transaction recorded that will be appended when it ends (not in the table yet)."""
    return deferral.pending_events(connection)


def append_drafts(drafts: Sequence[tuple[Event, bytes, bytes]]) -> None:
    """Append prepared events in order under one lock of the chain head.

    This is the hottest write path of the product, so it talks SQL directly: one
    locked read of the head, then one statement that inserts every event and moves
    the head (PostgreSQL; SQLite takes a statement per row).
    """
    if not drafts:
        return
    head_seq, head_hash, kid = _lock_head()
    if not kid:
        # First append since the head was (re)created: find the key (in development this may
        # generate one, which appends its own registration), then read the head again.
        kid = active_key().kid
        EventChainHead.objects.filter(pk=1).update(key_id=kid)
        head_seq, head_hash, kid = _lock_head()
    events = []
    for event, before, after in drafts:
        head_seq += 1
        event.seq = head_seq
        event.header = b'%s,"prev":"%s","seq":%d,%s,"time":"%s","v":1}' % (
            before,
            head_hash.encode(),
            event.seq,
            after,
            iso_time(event.time).encode(),
        )
        event.prev_hash = head_hash
        event.entry_hash = hashlib.sha256(event.header).hexdigest()
        event.key_id = kid
        event.signature = keystore.sign(kid, bytes.fromhex(event.entry_hash))
        head_hash = event.entry_hash
        events.append(event)
    # A transaction may have recorded thousands (a seed, an import): a statement holds at
    # most APPEND_BATCH of them, well inside PostgreSQL's 65,535 parameters.
    for start in range(0, len(events), APPEND_BATCH):
        _insert_and_advance(events[start : start + APPEND_BATCH])
    # Cached runtime answers and tokens are keyed by the generation (see its module).
    generation.bump()
    transaction.on_commit(generation.bump)


def _draft(spec: EventSpec) -> tuple[Event, bytes, bytes]:
    """Everything about an event that does not depend on the chain, prepared before the lock."""
    if spec.kind not in EventKind.values:
        raise DomainError(f"Unknown event kind '{spec.kind}'.", field="kind")
    actor, tenant = spec.actor, spec.tenant
    payload = spec.payload or {}
    payload_bytes = canonical(payload)
    subject_type, subject_id, subject_label = _subject_fields(spec.subject)
    channel = (spec.via if spec.via is not None else current_channel()) or (
        "system" if actor is None else ""
    )
    actor_name = actor.get_username() if actor is not None else ""
    # RFC 8785 sorts keys: actor, kind, payload_sha256 | prev, seq | subject, tenant | time, v.
    # Everything but prev, seq and time is canonicalised before the head is locked, so the
    # lock is held for a hash, a signature and one round trip, not for JSON encoding.
    before = canonical(
        {
            "actor": {
                "type": "system" if actor is None else "user",
                "id": str(actor.pk) if actor is not None else None,
                "name": actor_name or None,
                "via": channel,
            },
            "kind": spec.kind,
            "payload_sha256": hashlib.sha256(payload_bytes).hexdigest(),
        }
    )[:-1]
    after = canonical(
        {
            "subject": {"type": subject_type, "id": subject_id, "label": subject_label}
            if subject_type
            else None,
            "tenant": tenant.slug if tenant is not None else None,
        }
    )[1:-1]
    event = Event(
        kind=spec.kind,
        tenant=tenant,
        actor=actor,
        actor_name=actor_name,
        via=channel,
        subject_type=subject_type,
        subject_id=subject_id,
        subject_label=subject_label,
        payload=payload,
        payload_bytes=payload_bytes,
        # When the service recorded it, not when its transaction ended and appended it: the
        # time agrees with the rows the same change wrote.
        time=timezone.now(),
    )
    return event, before, after


def _head_table() -> str:
    return connection.ops.quote_name(EventChainHead._meta.db_table)


def _lock_head() -> tuple[int, str, str]:
    """(seq, entry hash, active key id) of the chain head, row-locked until the transaction ends."""
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    with connection.cursor() as cursor:
        select = f"SELECT seq, entry_hash, key_id FROM {_head_table()} WHERE id = 1{lock}"  # noqa: S608
        if connection.vendor == "postgresql":
            # Writers queue on an advisory lock first: it is granted to one waiter at a time,
            # where a contended row lock wakes every waiter on each commit to fight again.
            # Two statements, one round trip; the SELECT takes its snapshot after the lock.
            cursor.execute(f"SELECT pg_advisory_xact_lock({APPEND_LOCK_ID}); {select}")
            cursor.nextset()
        else:
            cursor.execute(select)
        row = cursor.fetchone()
    if row is not None:
        return int(row[0]), str(row[1]), str(row[2])
    head = _recreate_head()
    return head.seq, head.entry_hash, head.key_id


def _insert_and_advance(events: Sequence[Event]) -> None:
    """INSERT the events and move the head: one statement on PostgreSQL."""
    qn = connection.ops.quote_name
    fields = Event._meta.concrete_fields
    columns = ", ".join(qn(f.column) for f in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    values: list[Any] = []
    for event in events:
        values.extend(f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields)
    table = qn(Event._meta.db_table)
    advance = f"UPDATE {_head_table()} SET seq = %s, entry_hash = %s WHERE id = 1"  # noqa: S608
    last = events[-1]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            insert = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(events))}"  # noqa: S608
            cursor.execute(
                f"WITH appended AS ({insert} RETURNING 1) {advance}",
                [*values, last.seq, last.entry_hash],
            )
        else:
            insert = f"INSERT INTO {table} ({columns}) VALUES {row}"  # noqa: S608
            width = len(fields)
            for i in range(len(events)):
                cursor.execute(insert, values[i * width : (i + 1) * width])
            cursor.execute(advance, [last.seq, last.entry_hash])
    for event in events:
        event._state.adding = False
        event._state.db = connection.alias


def _recreate_head() -> EventChainHead:
    """Only after the head row was emptied (a test flush, a manual wipe): rebuild it from the log."""
    last = Event.objects.order_by("-seq").values_list("seq", "entry_hash").first()
    seq, entry_hash = last if last else (0, GENESIS_HASH)
    try:
        with transaction.atomic():
            EventChainHead.objects.create(pk=1, seq=seq, entry_hash=entry_hash)
    except IntegrityError:
        pass  # another writer recreated it first
    return EventChainHead.objects.select_for_update().get(pk=1)


@transaction.atomic
def key_generate(*, actor: Any | None) -> SigningKey:
    """Create and register a key. With no active key it becomes active (its first event signs itself)."""
    kid, pub = keystore.write_new_key()
    has_active = SigningKey.objects.filter(status=SigningKey.Status.ACTIVE).exists()
    status = SigningKey.Status.RETIRED if has_active else SigningKey.Status.ACTIVE
    try:
        with transaction.atomic():
            key = SigningKey.objects.create(kid=kid, public_key=pub, status=status)
    except IntegrityError:
        # Another process activated a key at the same moment: keep theirs, ours stays spare.
        key = SigningKey.objects.create(kid=kid, public_key=pub, status=SigningKey.Status.RETIRED)
    if key.status == SigningKey.Status.ACTIVE:
        EventChainHead.objects.filter(pk=1).update(key_id=kid)
        event_record(
            kind=EventKind.SIGNING_KEY_REGISTERED,
            actor=actor,
            subject=("governance.signingkey", kid, kid),
            payload={"kid": kid, "public_key": pub, "algorithm": "ed25519"},
        )
    return key


@transaction.atomic
def key_rotate(*, actor: Any | None) -> SigningKey:
    """Make a new key active. The rotation event is signed by the old key, which stays valid for what it signed."""
    old = SigningKey.objects.select_for_update().filter(status=SigningKey.Status.ACTIVE).first()
    if old is None:
        raise DomainError(
            "There is no active key to rotate: run `keys generate` first.", field="signing_key"
        )
    keystore.private_key(old.kid)  # fail before writing anything if the old key is not here
    kid, pub = keystore.write_new_key()
    # Appended now, not at the end: the old key, still the head's, must sign it. Every row
    # this takes afterwards (the keys, the head) is locked already.
    append_drafts(
        [
            _draft(
                EventSpec(
                    EventKind.SIGNING_KEY_ROTATED,
                    actor,
                    subject=("governance.signingkey", kid, kid),
                    payload={
                        "old_kid": old.kid,
                        "new_kid": kid,
                        "new_public_key": pub,
                        "algorithm": "ed25519",
                    },
                )
            )
        ]
    )
    SigningKey.objects.filter(pk=old.pk).update(
        status=SigningKey.Status.RETIRED, retired_at=timezone.now()
    )
    new = SigningKey.objects.create(kid=kid, public_key=pub, status=SigningKey.Status.ACTIVE)
    EventChainHead.objects.filter(pk=1).update(key_id=kid)  # appends sign with it from now on
    return new


@transaction.atomic
def key_revoke(*, kid: str, reason: str, actor: Any | None) -> SigningKey:
    """Revoke a compromised key: what it signs after now fails verification; what it signed before
    stays valid. The active key is refused: rotate first (``keys rotate``), then revoke the old one."""
    reason = clean_text(reason, "reason", limit=500)
    key = SigningKey.objects.select_for_update().filter(kid=str(kid).strip()).first()
    if key is None:
        raise NotFound(f"No signing key '{kid}'.", field="kid")
    if key.status == SigningKey.Status.ACTIVE:
        raise Conflict(
            f"Key {key.kid} is the active key: run `keys rotate` first, then revoke it.",
            field="kid",
        )
    if key.status == SigningKey.Status.REVOKED:
        raise Conflict(f"Key {key.kid} was already revoked at {key.revoked_at}.", field="kid")
    now = timezone.now()
    key.status, key.revoked_at, key.revoke_reason = SigningKey.Status.REVOKED, now, reason
    key.save(update_fields=["status", "revoked_at", "revoke_reason"])
    event_record(
        kind=EventKind.SIGNING_KEY_REVOKED,
        actor=actor,
        subject=("governance.signingkey", key.kid, key.kid),
        payload={"kid": key.kid, "revoked_at": iso_time(now), "reason": reason},
    )
    return key
