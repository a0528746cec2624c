"""Verification of the live log: the chain, the signatures, and every index column against the
signed bytes (compared in SQL on PostgreSQL); queued runs that a worker executes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from governance.kernel.events import selectors
from governance.kernel.events.models import (
    GENESIS_HASH,
    Checkpoint,
    Event,
    VerificationRun,
)
from governance.kernel.events.services.appending import iso_time
from governance.kernel.events.services.checkpoints import checkpoint_record
from governance.kernel.verify import Result, verify_entries


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


class _Columns(NamedTuple):
    """An event row's index columns, in the signed header's terms."""

    kind: str
    time: str
    tenant: str | None
    actor_id: str | None
    actor_name: str
    via: str
    subject: tuple[str, str, str]
    prev_hash: str


def _actor_differs(header: Any, columns: _Columns) -> bool:
    actor = header["actor"]
    return bool(
        actor["id"] != columns.actor_id
        or (actor["name"] or "") != columns.actor_name
        or (actor.get("via") or "") != columns.via
    )


def _subject_differs(header: Any, columns: _Columns) -> bool:
    signed_subject = header["subject"] or {}
    signed = tuple(signed_subject.get(k) or "" for k in ("type", "id", "label"))
    return signed != columns.subject


#: The header checks, in order: the first that differs names the problem (each reads only
#: what it compares, so a header missing a later field still reports the earlier difference).
_HEADER_CHECKS: tuple[tuple[str, Callable[[Any, _Columns], bool]], ...] = (
    ("kind column differs from the signed entry", lambda h, c: bool(h["kind"] != c.kind)),
    ("time column differs from the signed entry", lambda h, c: bool(h["time"] != c.time)),
    ("tenant column differs from the signed entry", lambda h, c: bool(h["tenant"] != c.tenant)),
    ("actor columns differ from the signed entry", _actor_differs),
    ("subject columns differ from the signed entry", _subject_differs),
    (
        "previous-hash column differs from the signed entry",
        lambda h, c: bool(h["prev"] != c.prev_hash),
    ),
)


def _header_problem(header_bytes: bytes, columns: _Columns) -> str | None:
    """What differs between the signed header and the columns (already in the header's terms)."""
    import json

    try:
        header = json.loads(header_bytes)
        for problem, differs in _HEADER_CHECKS:
            if differs(header, columns):
                return problem
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
    columns = _Columns(
        kind=kind,
        time=iso_time(time),
        tenant=slugs.get(tenant_id) if tenant_id else None,
        actor_id=str(actor_id) if actor_id else None,
        actor_name=actor_name,
        via=via,
        subject=(s_type, s_id, s_label),
        prev_hash=prev_hash,
    )
    return _header_problem(header_bytes, columns) or _payload_problem(payload_bytes, payload)


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


def _psycopg() -> Any:
    """psycopg (3), or None under psycopg2 (the same query, with bytea as text)."""
    try:
        import psycopg
    except ImportError:
        return None
    return psycopg


class _PostgresqlPages:
    """The same check, fast: pages of rows by primary key, columns compared in SQL."""

    def __init__(self, from_seq: int) -> None:
        from accounts.models import Tenant

        self.from_seq = from_seq
        self.psycopg = _psycopg()
        # The raw psycopg cursor raises psycopg's errors, not Django's wrappers of them.
        self.failures: tuple[type[Exception], ...] = (DatabaseError,) + (
            (self.psycopg.Error,) if self.psycopg is not None else ()
        )
        qn = connection.ops.quote_name
        self.sql = _PAGE_SQL.format(
            events=qn(Event._meta.db_table), tenants=qn(Tenant._meta.db_table)
        )
        self.slugs: dict[Any, str] | None = None
        self.problems: dict[int, str] = {}

    def recheck(self, low: int, high: int, limit: int) -> None:
        """``_compare`` on rows the SQL did not pass (or could not check: bytes that are not
        UTF-8 JSON make the casts fail, and the chain pass then says where)."""
        from accounts.models import Tenant

        if self.slugs is None:
            self.slugs = dict(Tenant.objects.values_list("id", "slug"))
        rows = (
            Event.objects.order_by("seq")
            .filter(seq__gte=low, seq__lte=high)
            .values_list(*_CHECKED_COLUMNS)[:limit]
        )
        for row in rows:
            found = _compare(bytes(row[1]), bytes(row[2]), (row[0], *row[6:]), self.slugs)
            if found is not None:
                self.problems[row[0]] = found

    def fetch(self, low: int, high: int) -> list[tuple[Any, ...]]:
        """One page of rows from ``low``, each with the SQL's verdict on its columns."""
        with transaction.atomic():
            connection.ensure_connection()
            raw = connection.connection
            psycopg = self.psycopg
            if psycopg is not None and isinstance(raw, psycopg.Connection):
                # Binary results: bytea arrives as bytes, not as hex text to decode.
                with psycopg.Cursor(raw) as cursor:
                    cursor.execute(self.sql, [low, high, VERIFY_PAGE], binary=True)
                    return list(cursor.fetchall())
            with connection.cursor() as cursor:
                cursor.execute(self.sql, [low, high, VERIFY_PAGE])
                return list(cursor.fetchall())

    def page(self, low: int, high: int) -> list[tuple[Any, ...]]:
        try:
            return self.fetch(low, high)
        except self.failures:
            high = min(high, low + VERIFY_PAGE - 1)
            self.recheck(low, high, VERIFY_PAGE)
            return [(*entry, True) for entry in selectors.entries_from(low, upto=high)]

    def pages(self, high: int) -> Iterator[list[Entry]]:
        """Pages of entries, any column problem of theirs recorded before the page is given."""
        low = self.from_seq
        while low <= high:
            rows = self.page(low, high)
            if not rows:
                return
            for row in rows:
                if not row[6]:
                    self.recheck(row[0], row[0], 1)
            yield [(r[0], bytes(r[1]), bytes(r[2]), r[3], r[4], r[5]) for r in rows]
            low = rows[-1][0] + 1

    def entries(self) -> Iterator[Entry]:
        high = Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        if connection.in_atomic_block:
            # Inside the caller's transaction: read what it sees, on its own connection.
            for rows in self.pages(high):
                yield from rows
            return
        yield from _read_ahead(self.pages(high))

    def check(self, entry: Entry) -> str | None:
        return self.problems.pop(entry[0], None)


def _entries_with_column_check_postgresql(
    from_seq: int,
) -> tuple[Iterator[Entry], Callable[[Entry], str | None]]:
    """The same check, fast: pages of rows by primary key, columns compared in SQL."""
    pages = _PostgresqlPages(from_seq)
    return pages.entries(), pages.check


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
        revoked=selectors.revoked_keys(),
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
    said = result.line()
    if result.ok and result.passkey_approvals:  # the approvers' own signatures, proved too
        said += f"; {result.passkey_approvals} passkey approval(s) verified"
    VerificationRun.objects.filter(pk=run.pk).update(
        status=VerificationRun.Status.PASSED if result.ok else VerificationRun.Status.FAILED,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        reason=said,
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
    return run
