"""Writes to the event log: append an event, make a checkpoint, manage keys, run verification.

``event_record`` is the one way in. Every other service calls it inside its
own transaction, so an event exists exactly when its state change does.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from governance.kernel import merkle
from governance.kernel.errors import DomainError
from governance.kernel.events import deferral, generation, selectors
from governance.kernel.events import keys as keystore
from governance.kernel.events.context import current_channel
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import (
    GENESIS_HASH,
    Checkpoint,
    Event,
    EventChainHead,
    SigningKey,
    VerificationRun,
)
from governance.kernel.verify import CheckpointRecord, Result, checkpoint_body, verify_entries

log = logging.getLogger(__name__)

Subject = Model | tuple[str, str, str] | None

#: PostgreSQL advisory lock key that serialises appends ("gov-log" as an int).
APPEND_LOCK_ID = 0x676F762D6C6F67

#: Events per INSERT when a transaction appends many at its end.
APPEND_BATCH = 1000


def _iso(moment: datetime) -> str:
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
    deferral.defer(connection, drafts, _append)
    return [event for event, _, _ in drafts]


def events_pending() -> list[Event]:
    """Events this transaction recorded that will be appended when it ends (not in the table yet)."""
    return deferral.pending_events(connection)


def _append(drafts: Sequence[tuple[Event, bytes, bytes]]) -> None:
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
            _iso(event.time).encode(),
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


# --- keys ------------------------------------------------------------------------


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
    _append(
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


# --- checkpoints ------------------------------------------------------------------


@transaction.atomic
def checkpoint_create(*, actor: Any | None = None, force: bool = False) -> Checkpoint | None:
    """Sign the current tree head. Skipped (None) when the log has not grown since the last one.

    ``actor`` is who asked for it on demand (a platform administrator); None is the schedule.
    """
    from governance.kernel.permissions import can_make_checkpoint

    can_make_checkpoint(actor).require()
    size = selectors.log_size()
    last = Checkpoint.objects.order_by("-tree_size").first()
    if size == 0 or (last is not None and last.tree_size >= size and not force):
        return None
    if last is not None and last.tree_size == size:
        return last
    root = merkle.root_from_leaf_hashes(selectors.leaf_hashes(size)).hex()
    now = _iso(timezone.now())
    body = canonical({"size": size, "root": root, "time": now})
    assert body == checkpoint_body(size, root, now)  # the verifier rebuilds it by hand
    signer = active_key()
    try:
        with transaction.atomic():
            return Checkpoint.objects.create(
                tree_size=size,
                root_hash=root,
                time=timezone.now(),
                key_id=signer.kid,
                signature=keystore.sign(signer.kid, body),
                body=body,
            )
    except IntegrityError:
        return Checkpoint.objects.get(tree_size=size)  # made concurrently: same size, same root


# --- verification -----------------------------------------------------------------


def column_problem(event: Event) -> str | None:
    """What, if anything, differs between one event's index columns and its signed bytes."""
    row = (
        event.seq,
        event.time,
        event.kind,
        event.tenant_id,
        event.actor_id,
        event.actor_name,
        event.via,
        event.subject_type,
        event.subject_id,
        event.subject_label,
        event.payload,
        event.prev_hash,
    )
    slugs = {event.tenant_id: event.tenant.slug} if event.tenant is not None else {}
    return _compare(bytes(event.header), bytes(event.payload_bytes), row, slugs)


def _header_problem(
    header_bytes: bytes,
    *,
    kind: str,
    time: str,
    tenant: str | None,
    actor_id: str | None,
    actor_name: str,
    via: str,
    subject: tuple[str, str, str],
    prev_hash: str,
) -> str | None:
    """What differs between the signed header and the columns (already in the header's terms)."""
    import json

    try:
        header = json.loads(header_bytes)
        if header["kind"] != kind:
            return "kind column differs from the signed entry"
        if header["time"] != time:
            return "time column differs from the signed entry"
        if header["tenant"] != tenant:
            return "tenant column differs from the signed entry"
        actor = header["actor"]
        if (
            actor["id"] != actor_id
            or (actor["name"] or "") != actor_name
            or (actor.get("via") or "") != via
        ):
            return "actor columns differ from the signed entry"
        signed_subject = header["subject"] or {}
        signed = tuple(signed_subject.get(k) or "" for k in ("type", "id", "label"))
        if signed != subject:
            return "subject columns differ from the signed entry"
        if header["prev"] != prev_hash:
            return "previous-hash column differs from the signed entry"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "the signed entry is not an event header"
    return None


def _payload_problem(payload_bytes: bytes, payload: Any) -> str | None:
    import json

    try:
        if json.loads(payload_bytes) == payload:
            return None
    except ValueError:
        pass
    return "payload column differs from the signed entry"


def _compare(
    header_bytes: bytes, payload_bytes: bytes, row: tuple[Any, ...], slugs: dict[Any, str]
) -> str | None:
    (
        _,
        time,
        kind,
        tenant_id,
        actor_id,
        actor_name,
        via,
        s_type,
        s_id,
        s_label,
        payload,
        prev_hash,
    ) = row
    return _header_problem(
        header_bytes,
        kind=kind,
        time=_iso(time),
        tenant=slugs.get(tenant_id) if tenant_id else None,
        actor_id=str(actor_id) if actor_id else None,
        actor_name=actor_name,
        via=via,
        subject=(s_type, s_id, s_label),
        prev_hash=prev_hash,
    ) or _payload_problem(payload_bytes, payload)


Entry = tuple[int, bytes, bytes, str, str, str]


def _entries_with_column_check(
    from_seq: int,
) -> tuple[Iterator[Entry], Callable[[Entry], str | None]]:
    """One pass over the table yielding the signed bytes, and a check that its columns agree with them."""
    if connection.vendor == "postgresql":
        return _entries_with_column_check_postgresql(from_seq)
    from accounts.models import Tenant

    slugs = dict(Tenant.objects.values_list("id", "slug"))
    current: dict[int, tuple[Any, ...]] = {}
    rows = Event.objects.order_by("seq").filter(seq__gte=from_seq).values_list(*_CHECKED_COLUMNS)

    def entries() -> Iterator[Entry]:
        for row in rows.iterator(chunk_size=5000):
            current.clear()
            current[row[0]] = (row[0], *row[6:])
            yield row[0], bytes(row[1]), bytes(row[2]), row[3], row[4], row[5]

    def check(entry: Entry) -> str | None:
        row = current.get(entry[0])
        if row is None:
            return "index columns missing for this entry"
        return _compare(entry[1], entry[2], row, slugs)

    return entries(), check


#: Rows per round trip of the PostgreSQL verifier (keyset pages on the primary key).
VERIFY_PAGE = 10_000

#: The columns the generic check reads, in ``_compare``'s order after the six entry fields.
_CHECKED_COLUMNS = (
    "seq",
    "header",
    "payload_bytes",
    "entry_hash",
    "key_id",
    "signature",
    "time",
    "kind",
    "tenant_id",
    "actor_id",
    "actor_name",
    "via",
    "subject_type",
    "subject_id",
    "subject_label",
    "payload",
    "prev_hash",
)

# PostgreSQL compares each row's columns with its signed header (parsed once, as jsonb) and
# its payload column with the signed payload bytes: the same comparisons as ``_compare``, in
# C, so the rows cross the wire with one boolean and Python parses no JSON for a row that
# agrees. A row that does not is checked again by ``_compare``, which says what differs.
_PAGE_SQL = """
WITH page AS (
    SELECT e.*, convert_from(e.header, 'UTF8')::jsonb AS signed
    FROM {events} e WHERE e.seq >= %s AND e.seq <= %s ORDER BY e.seq LIMIT %s
)
SELECT p.seq, p.header, p.payload_bytes, p.entry_hash, p.key_id, p.signature, COALESCE(
    (p.signed ->> 'kind') = p.kind
    AND (p.signed ->> 'time')
        = to_char(p.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    AND (p.signed ->> 'tenant') IS NOT DISTINCT FROM t.slug
    AND (p.signed -> 'actor' ->> 'id') IS NOT DISTINCT FROM p.actor_id::text
    AND COALESCE(p.signed -> 'actor' ->> 'name', '') = p.actor_name
    AND COALESCE(p.signed -> 'actor' ->> 'via', '') = p.via
    AND COALESCE(p.signed -> 'subject' ->> 'type', '') = p.subject_type
    AND COALESCE(p.signed -> 'subject' ->> 'id', '') = p.subject_id
    AND COALESCE(p.signed -> 'subject' ->> 'label', '') = p.subject_label
    AND (p.signed ->> 'prev') = p.prev_hash
    AND p.payload = convert_from(p.payload_bytes, 'UTF8')::jsonb,
    false)
FROM page p LEFT JOIN {tenants} t ON t.id = p.tenant_id
ORDER BY p.seq
"""


def _read_ahead(source: Iterator[list[Entry]]) -> Iterator[Entry]:
    """Run ``source`` one page ahead in a thread with its own database connection, so that
    PostgreSQL reads and checks the next page while this thread walks the chain."""
    import queue
    import threading

    from django.db import connections

    ready: queue.Queue[list[Entry] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: list[Entry] | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for rows in source:
                if not put(rows):
                    return
            put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, raised there
            put(exc)
        finally:
            connections.close_all()  # this thread's connections only

    worker = threading.Thread(target=produce, name="verify-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
        worker.join()


def _entries_with_column_check_postgresql(
    from_seq: int,
) -> tuple[Iterator[Entry], Callable[[Entry], str | None]]:
    """The same check, fast: pages of rows by primary key, columns compared in SQL."""
    from accounts.models import Tenant

    try:
        import psycopg
    except ImportError:  # psycopg2: the same query, with bytea as text
        psycopg = None  # type: ignore[assignment]
    # The raw psycopg cursor raises psycopg's errors, not Django's wrappers of them.
    failures: tuple[type[Exception], ...] = (DatabaseError,) + (
        (psycopg.Error,) if psycopg is not None else ()
    )
    qn = connection.ops.quote_name
    sql = _PAGE_SQL.format(events=qn(Event._meta.db_table), tenants=qn(Tenant._meta.db_table))
    slugs: dict[Any, str] | None = None
    problems: dict[int, str] = {}

    def recheck(low: int, high: int, limit: int) -> None:
        """``_compare`` on rows the SQL did not pass (or could not check: bytes that are not
        UTF-8 JSON make the casts fail, and the chain pass then says where)."""
        nonlocal slugs
        if slugs is None:
            slugs = dict(Tenant.objects.values_list("id", "slug"))
        rows = (
            Event.objects.order_by("seq")
            .filter(seq__gte=low, seq__lte=high)
            .values_list(*_CHECKED_COLUMNS)[:limit]
        )
        for row in rows:
            found = _compare(bytes(row[1]), bytes(row[2]), (row[0], *row[6:]), slugs)
            if found is not None:
                problems[row[0]] = found

    def page(low: int, high: int) -> list[tuple[Any, ...]]:
        try:
            with transaction.atomic():
                connection.ensure_connection()
                raw = connection.connection
                if psycopg is not None and isinstance(raw, psycopg.Connection):
                    # Binary results: bytea arrives as bytes, not as hex text to decode.
                    with psycopg.Cursor(raw) as cursor:
                        cursor.execute(sql, [low, high, VERIFY_PAGE], binary=True)
                        return list(cursor.fetchall())
                with connection.cursor() as cursor:
                    cursor.execute(sql, [low, high, VERIFY_PAGE])
                    return list(cursor.fetchall())
        except failures:
            high = min(high, low + VERIFY_PAGE - 1)
            recheck(low, high, VERIFY_PAGE)
            return [(*entry, True) for entry in selectors.entries_from(low, upto=high)]

    def pages(high: int) -> Iterator[list[Entry]]:
        """Pages of entries, any column problem of theirs recorded before the page is given."""
        low = from_seq
        while low <= high:
            rows = page(low, high)
            if not rows:
                return
            for row in rows:
                if not row[6]:
                    recheck(row[0], row[0], 1)
            yield [(r[0], bytes(r[1]), bytes(r[2]), r[3], r[4], r[5]) for r in rows]
            low = rows[-1][0] + 1

    def entries() -> Iterator[Entry]:
        high = Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        if connection.in_atomic_block:
            # Inside the caller's transaction: read what it sees, on its own connection.
            for rows in pages(high):
                yield from rows
            return
        yield from _read_ahead(pages(high))

    def check(entry: Entry) -> str | None:
        return problems.pop(entry[0], None)

    return entries(), check


def verify_database(
    *,
    from_seq: int = 1,
    all_signatures: bool = False,
    columns: bool = True,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
) -> Result:
    """Verify the live log (read-only). See ``governance.verify`` for what is checked."""
    start_prev = GENESIS_HASH
    if from_seq > 1:
        before = Event.objects.filter(seq=from_seq - 1).values_list("entry_hash", flat=True).first()
        if before is None:
            return Result(False, 0, from_seq - 1, "no such entry to start after")
        start_prev = before
    checkpoints = [checkpoint_record(c) for c in Checkpoint.objects.order_by("tree_size")]
    if columns:
        entries, extra_check = _entries_with_column_check(from_seq)
    else:
        entries, extra_check = selectors.entries_from(from_seq), None
    return verify_entries(
        entries,
        public_keys=selectors.public_keys(),
        checkpoints=checkpoints,
        all_signatures=all_signatures,
        start_seq=from_seq,
        start_prev=start_prev,
        extra_check=extra_check,
        progress=progress,
        progress_every=progress_every,
    )


def checkpoint_record(checkpoint: Checkpoint) -> CheckpointRecord:
    """The verifier's view of a checkpoint; its time is the one inside the signed body."""
    import json

    body = bytes(checkpoint.body)
    try:
        signed_time = str(json.loads(body).get("time", ""))
    except ValueError:
        signed_time = ""
    return CheckpointRecord(
        checkpoint.tree_size,
        checkpoint.root_hash,
        signed_time,
        checkpoint.key_id,
        checkpoint.signature,
        body,
    )


def verification_start(*, actor: Any | None) -> VerificationRun:
    """Queue a verification run for a worker; the page and API poll its progress.

    Administrators (of any tenant, or the platform) may start one; None is the system.
    """
    from governance.kernel.permissions import can_start_verification

    can_start_verification(actor).require()
    with transaction.atomic():
        run = VerificationRun.objects.create(requested_by=actor, total=selectors.log_size())
        from governance.kernel.tasks import verify_log

        verify_log.delay_on_commit(str(run.pk))  # type: ignore[attr-defined]
    return run


def verification_execute(*, run: VerificationRun, progress_every: int = 10_000) -> VerificationRun:
    """Run a queued verification, saving progress as it goes (called by the task or inline)."""
    if run.status not in {VerificationRun.Status.QUEUED, VerificationRun.Status.RUNNING}:
        return run
    VerificationRun.objects.filter(pk=run.pk).update(
        status=VerificationRun.Status.RUNNING,
        started_at=timezone.now(),
        total=selectors.log_size(),
    )

    def progress(done: int) -> None:
        VerificationRun.objects.filter(pk=run.pk).update(checked=done)

    result = verify_database(progress=progress, progress_every=progress_every)
    VerificationRun.objects.filter(pk=run.pk).update(
        status=VerificationRun.Status.PASSED if result.ok else VerificationRun.Status.FAILED,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        reason=result.line(),
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run
