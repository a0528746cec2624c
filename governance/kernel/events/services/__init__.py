"""Writes to the event log: append an event, make a checkpoint, manage keys, run verification.

``event_record`` is the one way in. Every other service calls it inside its
own transaction, so an event exists exactly when its state change does.

A package along its seams: ``appending`` (events, the chain head, the signing keys),
``checkpoints``, ``verification``. Every public name is importable from here.
"""

from __future__ import annotations

from governance.kernel.events.services.appending import (
    APPEND_BATCH,
    APPEND_LOCK_ID,
    EventSpec,
    Subject,
    active_key,
    append_drafts,
    canonical,
    event_record,
    events_pending,
    events_record,
    iso_time,
    key_generate,
    key_revoke,
    key_rotate,
)
from governance.kernel.events.services.checkpoints import checkpoint_create, checkpoint_record
from governance.kernel.events.services.verification import (
    VERIFY_PAGE,
    Entry,
    column_problem,
    verification_execute,
    verification_start,
    verify_database,
)

__all__ = [
    "APPEND_BATCH",
    "APPEND_LOCK_ID",
    "VERIFY_PAGE",
    "Entry",
    "EventSpec",
    "Subject",
    "active_key",
    "append_drafts",
    "canonical",
    "checkpoint_create",
    "checkpoint_record",
    "column_problem",
    "event_record",
    "events_pending",
    "events_record",
    "iso_time",
    "key_generate",
    "key_revoke",
    "key_rotate",
    "verification_execute",
    "verification_start",
    "verify_database",
]
