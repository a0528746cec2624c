"""Events wait for the end of the outermost transaction, so the log's lock is always taken last.

The lock order of the product: take row locks first (in a fixed order: by primary key
within a table), and the event log's lock last. Appending an event locks the chain head
until the transaction ends, and every writer needs that lock; a transaction that held it
and then waited for a row lock could deadlock with one that held the row and waited for
the log (two evidence uploads to changes sharing a version did, every time).

So ``events_record`` only prepares an event (validated and canonicalised at once, errors
raised at the call) and keeps it on the connection; the events are appended, in the order
they were recorded and under one lock of the chain head, when the outermost service
transaction is about to commit. A block that rolls back (to its savepoint or entirely)
takes the events recorded inside it with it. No service has to remember anything.
A reader that must see the log as the transaction will commit it (pack verification
looking for a version's ``version_published`` event in a seed that publishes and
verifies in one transaction) adds ``events_pending()`` to what it reads.

"Outermost" means the outermost ``transaction.atomic`` block, not counting the blocks a
Django test case wraps around each test (``_from_testcase``), so tests see a service's
events as soon as the service returns, exactly as production sees them after its commit.
Outside any service block (a test's own body) an event is appended at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

_KEY = "_governance_pending_events"


@dataclass
class Pending:
    """Events recorded on one connection and not yet appended."""

    #: (depth of the innermost open block the event belongs to, prepared event), in recording order.
    items: list[tuple[int, Any]] = field(default_factory=list)
    #: True while the events are being appended: anything recorded then goes straight in.
    flushing: bool = False


def pending(connection: BaseDatabaseWrapper) -> Pending:
    """The connection's own state (``django.db.connection`` is a proxy: attributes go through)."""
    state: Pending | None = getattr(connection, _KEY, None)
    if state is None:
        state = Pending()
        setattr(connection, _KEY, state)
    return state


def pending_events(connection: BaseDatabaseWrapper) -> list[Any]:
    """This transaction's recorded events that are not in the log yet (in recording order)."""
    return [draft[0] for _, draft in pending(connection).items]


def _outside(connection: BaseDatabaseWrapper) -> int:
    """How many of the open atomic blocks a test case opened around the test."""
    count = 0
    for block in connection.atomic_blocks:
        if not getattr(block, "_from_testcase", False):
            break
        count += 1
    return count


def defer(
    connection: BaseDatabaseWrapper, drafts: list[Any], append: Callable[[list[Any]], None]
) -> None:
    """Keep ``drafts`` for the end of the outermost service block, or append them now if there is none."""
    state = pending(connection)
    depth = len(connection.atomic_blocks)
    if state.flushing or depth <= _outside(connection):
        append(drafts)
        return
    state.items.extend((depth, draft) for draft in drafts)


_append: Callable[[list[Any]], None] | None = None
_original_exit: Callable[..., Any] | None = None


def _exit(self: transaction.Atomic, exc_type: Any, exc_value: Any, traceback: Any) -> Any:
    assert _original_exit is not None
    assert _append is not None
    connection = transaction.get_connection(self.using)
    state: Pending | None = getattr(connection, _KEY, None)
    blocks = connection.atomic_blocks
    if state is not None and state.items and blocks and blocks[-1] is self:
        depth = len(blocks)
        if exc_type is not None or connection.needs_rollback:
            # This block's work is undone (or the whole transaction's will be): so are its events.
            state.items = [item for item in state.items if item[0] < depth]
        elif depth - 1 <= _outside(connection):
            drafts = [draft for _, draft in state.items]
            state.items = []
            state.flushing = True
            try:
                _append(drafts)
            except BaseException as exc:  # the block rolls back, as if its body had raised
                _original_exit(self, type(exc), exc, exc.__traceback__)
                raise
            finally:
                state.flushing = False
        else:
            # Committed to the enclosing block: its events now stand or fall with that block.
            state.items = [(min(level, depth - 1), draft) for level, draft in state.items]
    return _original_exit(self, exc_type, exc_value, traceback)


def install(append: Callable[[list[Any]], None]) -> None:
    """Make every outermost atomic block append its deferred events before it commits (once)."""
    global _append, _original_exit
    _append = append
    if _original_exit is None:
        _original_exit = transaction.Atomic.__exit__
        transaction.Atomic.__exit__ = _exit  # type: ignore[method-assign]
