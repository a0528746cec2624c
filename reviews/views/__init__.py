"""Review pages: my reviews, change requests (open, read, sign off, promote), rollback, policy, notifications.

Views check the shape of input and turn DomainError into a form error or a message with
its 4xx status; every rule lives in ``reviews.services``. What a page shows is built in
``reviews.presenters``.

- ``changes``: my reviews, the list, opening and revising, the change page, its record;
- ``actions``: what the change page's buttons do (sign-off, submit, promote, ...);
- ``artifacts``: rollback and the safety switch from an artifact's page;
- ``evidence``: attaching an evaluation report from the change page;
- ``policy``: the approval policy page; ``lifecycle``: the stage criteria page;
  ``notifications``: my notifications;
- ``common``: what they share (the change page itself).
"""

from reviews.views.actions import ACTIONS, change_action, confirm_password, passkey_challenge
from reviews.views.artifacts import deactivate, rollback
from reviews.views.changes import (
    AUTHOR_OPEN_STATES,
    MY_CHANGES_LIMIT,
    MY_REVIEWS_LIMIT,
    PAGE_SIZE,
    change_detail,
    change_edit,
    change_list,
    change_new,
    change_record,
    index,
)
from reviews.views.evidence import change_evidence
from reviews.views.lifecycle import stage_criteria
from reviews.views.notifications import notification_open_view, notifications
from reviews.views.policy import policy

__all__ = [
    "ACTIONS",
    "AUTHOR_OPEN_STATES",
    "MY_CHANGES_LIMIT",
    "MY_REVIEWS_LIMIT",
    "PAGE_SIZE",
    "change_action",
    "change_detail",
    "change_edit",
    "change_evidence",
    "change_list",
    "change_new",
    "change_record",
    "confirm_password",
    "deactivate",
    "index",
    "notification_open_view",
    "notifications",
    "passkey_challenge",
    "policy",
    "rollback",
    "stage_criteria",
]
