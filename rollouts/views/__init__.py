"""Rollout pages: the list, a rollout (phases, steps, targets, history, actions), the runtime matrix,
applications and slots.

Views check the shape of input and call the service through ``governance.kernel.views.submit``,
which turns a refusal into a form error with its 4xx status (a ``NotFound`` raised out of a
view is the 404 page); every rule lives in ``rollouts.services``, and every button is shown
from the permission predicate the service enforces.

The package's modules: ``rollout`` (the list, starting one, a rollout and its actions),
``overview`` (the fleet, the runtime matrix, an artifact's usage), ``applications``
(applications, slots, overrides), ``common`` (the lookups and helpers they share).
"""

from rollouts.views.applications import (
    application_detail,
    application_edit,
    application_list,
    application_new,
    slot_detail,
    slot_edit,
    slot_new,
    slot_override,
)
from rollouts.views.overview import artifact_usage, fleet, matrix
from rollouts.views.rollout import (
    ACTION_DONE,
    ACTION_SERVICES,
    ACTION_VERBS,
    rollout_action,
    rollout_dashboard,
    rollout_detail,
    rollout_list,
    rollout_manifest,
    rollout_new,
)

__all__ = [
    "ACTION_DONE",
    "ACTION_SERVICES",
    "ACTION_VERBS",
    "application_detail",
    "application_edit",
    "application_list",
    "application_new",
    "artifact_usage",
    "fleet",
    "matrix",
    "rollout_action",
    "rollout_dashboard",
    "rollout_detail",
    "rollout_list",
    "rollout_manifest",
    "rollout_new",
    "slot_detail",
    "slot_edit",
    "slot_new",
    "slot_override",
]
