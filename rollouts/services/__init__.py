"""Every change to applications, slots, overrides and rollouts; each pointer move is a row and an event.

All functions are keyword-only and atomic, check permissions with ``rollouts.permissions``
and refuse with ``governance.kernel.errors``. Locks, in the one order: Rollout rows, then the
change rows and artifact rows a default move needs (``reviews.services.activation_lock``:
changes, then artifacts, by primary key), then Override rows; events are appended when
the transaction ends (``event_record`` defers them), so the log's lock is taken last.

Rollout transitions follow ``rollouts.choices.TRANSITIONS`` and are compare-and-swap on
``Rollout.revision``: ``UPDATE ... WHERE revision = <seen>``; a stale revision is a 409.

The package's modules follow the seams: ``moves`` (pointer moves and their guards),
``applications`` (applications and slots), ``overrides``, ``creation`` (a draft rollout),
``transitions`` (start, advance, pause, resume, the flag) and ``rollback`` (abort, roll back).
Import the services from here: ``from rollouts import services``.
"""

from rollouts.services.applications import (
    application_create,
    application_update,
    slot_create,
    slot_update,
)
from rollouts.services.creation import COHORT_LIMIT, FLAG_KEY_RE, NUMBER_LOCK_ID, rollout_create
from rollouts.services.moves import default_moves_record
from rollouts.services.overrides import override_clear, override_set
from rollouts.services.rollback import rollout_abort, rollout_rollback
from rollouts.services.transitions import (
    rollout_advance,
    rollout_flag_set,
    rollout_pause,
    rollout_resume,
    rollout_start,
    step_count,
)

__all__ = [
    "COHORT_LIMIT",
    "FLAG_KEY_RE",
    "NUMBER_LOCK_ID",
    "application_create",
    "application_update",
    "default_moves_record",
    "override_clear",
    "override_set",
    "rollout_abort",
    "rollout_advance",
    "rollout_create",
    "rollout_flag_set",
    "rollout_pause",
    "rollout_resume",
    "rollout_rollback",
    "rollout_start",
    "slot_create",
    "slot_update",
    "step_count",
]
