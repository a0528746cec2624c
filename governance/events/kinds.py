"""Event kinds: the one place they are named. Every service records one of these."""

from django.db import models


class EventKind(models.TextChoices):
    # Accounts and access
    TENANT_CREATED = "tenant.created", "Tenant created"
    TENANT_RENAMED = "tenant.renamed", "Tenant renamed"
    USER_CREATED = "user.created", "User created"
    USER_STAFF_CHANGED = "user.staff_changed", "Admin-site access changed"
    USER_SUPERUSER_CHANGED = "user.superuser_changed", "Superuser flag changed"
    USER_ACTIVE_CHANGED = "user.active_changed", "Account activated or deactivated"
    USER_ADMIN_PERMISSIONS_CHANGED = (
        "user.admin_permissions_changed",
        "Admin-site groups and permissions changed",
    )
    MEMBERSHIP_ADDED = "membership.added", "Member added"
    MEMBERSHIP_REMOVED = "membership.removed", "Member removed"
    ROLE_GRANTED = "role.granted", "Role granted"
    ROLE_REVOKED = "role.revoked", "Role revoked"
    TOKEN_CREATED = "token.created", "API token created"
    TOKEN_REVOKED = "token.revoked", "API token revoked"
    # The log's own keys
    SIGNING_KEY_REGISTERED = "signing_key.registered", "Signing key registered"
    SIGNING_KEY_ROTATED = "signing_key.rotated", "Signing key rotated"
    # Registry (issue: registry)
    ARTIFACT_CLASS_CREATED = "artifact_class.created", "Artifact class created"
    ARTIFACT_CLASS_UPDATED = "artifact_class.updated", "Artifact class updated"
    ARTIFACT_CREATED = "artifact.created", "Artifact created"
    ARTIFACT_RECOMMENDED = "artifact.recommended_version_set", "Recommended version set"
    ARTIFACT_VERSION_PUBLISHED = "artifact.version_published", "Version published"
    PROMPT_PUBLISHED = "prompt_published", "Prompt published"
    OWNERSHIP_CHANGED = "artifact.ownership_changed", "Ownership changed"
    # Change requests (issue: change requests)
    CHANGE_REQUEST_OPENED = "change_request.opened", "Change request opened"
    CHANGE_REQUEST_SUBMITTED = "change_request.submitted", "Change request submitted"
    CHANGE_REQUEST_APPROVED = "change_request.approved", "Change request approved"
    CHANGE_REQUEST_REJECTED = "change_request.rejected", "Change request rejected"
    CHANGE_REQUEST_WITHDRAWN = "change_request.withdrawn", "Change request withdrawn"
    CHANGE_REQUEST_PROMOTED = "change_request.promoted", "Change request promoted"
    CHANGE_REQUEST_REVISED = "change_request.revised", "Change request revised"
    CHANGE_REQUEST_COMMENTED = "change_request.commented", "Comment added"
    CHANGE_REQUEST_REBOUND = "change_request.rebound", "Current version changed"
    APPROVAL_GRANTED = "approval.granted", "Approval given"
    APPROVAL_REJECTED = "approval.rejected", "Rejection given"
    APPROVAL_VOIDED = "approval.voided", "Approval voided"
    CHECK_COMPLETED = "check.completed", "Check completed"
    EVIDENCE_ATTACHED = "evidence.attached", "Evidence attached"
    APPROVAL_POLICY_UPDATED = "approval_policy.updated", "Approval policy updated"
    CHANGE_GATE_UPDATED = "change_gate.updated", "Change gates updated"
    VERSION_STAGE_CHANGED = "version.stage_changed", "Version stage changed"
    # Rollouts (roadmap)
    ROLLOUT_STARTED = "rollout.started", "Rollout started"
    ROLLOUT_ROLLED_BACK = "rollout.rolled_back", "Rollout rolled back"
    ARTIFACT_DEACTIVATED = "artifact.deactivated", "Artifact deactivated (safety switch)"
    # Waivers and deprecation (issue: waivers)
    WAIVER_GRANTED = "waiver.granted", "Waiver granted"
    WAIVER_RENEWED = "waiver.renewed", "Waiver renewed"
    WAIVER_REVOKED = "waiver.revoked", "Waiver revoked"
    WAIVER_COUNTERSIGNED = "waiver.countersigned", "Waiver countersigned"
    VERSION_DEPRECATED = "version.deprecated", "Version deprecated"
    VERSION_REMOVED = "version.removed", "Version removed from resolution"
    VERSION_RETIRED = "version.retired", "Version retired to simulation-only"
    POSTMORTEM_RECORDED = "change_request.postmortem_recorded", "Post-mortem recorded"
