"""States and kinds of change requests, approvals and checks: the one place they are named."""

from __future__ import annotations

from django.db import models


class ChangeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    PROMOTED = "promoted", "Promoted"
    ROLLED_BACK = "rolled_back", "Rolled back"


#: The lifecycle, written down once. ``change_transition`` refuses anything else.
TRANSITIONS: dict[str, frozenset[str]] = {
    ChangeStatus.DRAFT: frozenset({ChangeStatus.IN_REVIEW, ChangeStatus.WITHDRAWN}),
    ChangeStatus.IN_REVIEW: frozenset(
        {ChangeStatus.APPROVED, ChangeStatus.REJECTED, ChangeStatus.WITHDRAWN, ChangeStatus.DRAFT}
    ),
    ChangeStatus.APPROVED: frozenset(
        {
            ChangeStatus.PROMOTED,
            ChangeStatus.WITHDRAWN,
            ChangeStatus.DRAFT,
            ChangeStatus.IN_REVIEW,
            ChangeStatus.REJECTED,
        }
    ),
    ChangeStatus.REJECTED: frozenset({ChangeStatus.DRAFT, ChangeStatus.WITHDRAWN}),
    ChangeStatus.WITHDRAWN: frozenset(),
    # A rollback of its versions (or switching off the last of them) undoes a promotion.
    ChangeStatus.PROMOTED: frozenset({ChangeStatus.ROLLED_BACK}),
    ChangeStatus.ROLLED_BACK: frozenset(),
}

#: States in which reviewers can still act.
OPEN_STATES = frozenset({ChangeStatus.IN_REVIEW, ChangeStatus.APPROVED})
#: States in which the author can still change what is proposed.
EDITABLE_STATES = frozenset(
    {ChangeStatus.DRAFT, ChangeStatus.IN_REVIEW, ChangeStatus.APPROVED, ChangeStatus.REJECTED}
)


class Decision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


class Requirement(models.TextChoices):
    """A slot in an approval policy: a tenant role, or an artifact-level role of a changed
    artifact (its accountable owner, its deputy owner)."""

    REVIEWER = "reviewer", "Reviewer"
    ADMINISTRATOR = "administrator", "Administrator"
    PRIVACY_OFFICER = "privacy_officer", "Privacy officer"
    SECURITY_OFFICER = "security_officer", "Security officer"
    OWNER = "owner", "Accountable owner"
    DEPUTY = "deputy", "Deputy owner"


class Promoter(models.TextChoices):
    """Who may promote a change, as an approval-policy rule's ``promoted_by`` says."""

    ADMINISTRATOR = "administrator", "An administrator"
    OWNER = "owner", "The accountable owner"


class CheckKind(models.TextChoices):
    RULES_LINT = "rules_lint", "Rules lint"
    RULES_SIMULATION = "rules_simulation", "Rules simulation"
    MODEL_PINS = "model_pins", "Pinned models and prompt hashes"
    OFFLINE_EVALUATION = "offline_evaluation", "Offline evaluation"
    POLICY = "policy", "Policy check"
    PACK_VERIFICATION = "pack_verification", "Pack verification"
    CHANGE_GATES = "change_gates", "Change gates"


class CheckStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    ERROR = "error", "Error"


FINISHED_CHECK_STATES = frozenset({CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.ERROR})


class ActivationKind(models.TextChoices):
    PROMOTION = "promotion", "Promotion"
    ROLLBACK = "rollback", "Rollback"
    #: The safety switch: the artifact is left with no active version.
    DEACTIVATION = "deactivation", "Deactivation"


class RolloutStrategy(models.TextChoices):
    """How a promoted change reaches production, for artifacts bound to application slots.

    (prompt-versioning-and-rollout.md's three strategies, plus the percentage canary.)
    """

    GLOBAL = "global", "Global (move the default; patch and minor only)"
    TENANT = "tenant", "Tenant-scoped (overrides in waves of tenants)"
    FLAG = "flag", "Feature-flagged (a temporary named flag)"
    CANARY = "canary", "Percentage canary (sticky buckets per subject)"


class DiffSide(models.TextChoices):
    """Which side of an item's diff a line comment is on."""

    OLD = "old", "Current version"
    NEW = "new", "Proposed version"
