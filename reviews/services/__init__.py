"""Every change to change requests: open, submit, revise, decide, check, attach evidence, promote, roll back.

Each function is atomic and appends its events in the same transaction. Rules
live here, not in views: the pages, the API, the CLI and the tasks all call these.
Production stays fail-closed: nothing becomes active without every required
approval and every required check of the change's current revision.

The package is split along its seams; every public name is importable from here:

- ``changes``: open, revise, submit, withdraw, comment;
- ``approvals``: approve or reject in a slot;
- ``evidence``: checks (run, re-run) and evaluation reports;
- ``deployment``: the deployment checklist of a change's revision;
- ``promotion``: promote, and the one way a default moves (``versions_activate``);
- ``rollback``: roll back, and the safety switch (deactivate);
- ``policy``: approval policy and change gates;
- ``lifecycle``: the stage criteria (lifecycle policy);
- ``postmortems``: emergency follow-up;
- ``recertification``: an emergency change's versions re-certified by a normal change;
- ``common``: what these share (lifecycle step, locks, events).
"""

from reviews.services.approvals import approval_decide, decision_slot
from reviews.services.changes import (
    LineAnchor,
    change_create,
    change_revise,
    change_submit,
    change_withdraw,
    comment_add,
    line_anchor,
)
from reviews.services.common import stage_set
from reviews.services.deployment import CHECKLIST_FIELDS, deployment_checklist_complete
from reviews.services.evidence import check_execute, check_rerun, evidence_attach
from reviews.services.lifecycle import lifecycle_policy_set
from reviews.services.passkeys import PasskeyAnswer, sign_off_challenge
from reviews.services.policy import approval_policy_update, change_gate_set
from reviews.services.postmortems import postmortem_record, postmortem_reminders_send
from reviews.services.promotion import activation_lock, change_promote, versions_activate
from reviews.services.recertification import (
    recertification_open,
    recertification_reminders_send,
    recertifications_complete,
)
from reviews.services.rollback import (
    NOTHING_TO_ROLL_BACK_TO,
    artifact_deactivate,
    change_switch_off,
    rollback,
)

__all__ = [
    "CHECKLIST_FIELDS",
    "NOTHING_TO_ROLL_BACK_TO",
    "LineAnchor",
    "PasskeyAnswer",
    "activation_lock",
    "approval_decide",
    "approval_policy_update",
    "artifact_deactivate",
    "change_create",
    "change_gate_set",
    "change_promote",
    "change_revise",
    "change_submit",
    "change_switch_off",
    "change_withdraw",
    "check_execute",
    "check_rerun",
    "comment_add",
    "decision_slot",
    "deployment_checklist_complete",
    "evidence_attach",
    "lifecycle_policy_set",
    "line_anchor",
    "postmortem_record",
    "postmortem_reminders_send",
    "recertification_open",
    "recertification_reminders_send",
    "recertifications_complete",
    "rollback",
    "sign_off_challenge",
    "stage_set",
    "versions_activate",
]
