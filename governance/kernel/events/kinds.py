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
    PASSKEY_REGISTERED = "passkey.registered", "Passkey registered"
    PASSKEY_REVOKED = "passkey.revoked", "Passkey revoked"
    # The log's own keys
    SIGNING_KEY_REGISTERED = "signing_key.registered", "Signing key registered"
    SIGNING_KEY_ROTATED = "signing_key.rotated", "Signing key rotated"
    SIGNING_KEY_REVOKED = "signing_key.revoked", "Signing key revoked"
    # Registry (issue: registry)
    ARTIFACT_CLASS_CREATED = "artifact_class.created", "Artifact class created"
    ARTIFACT_CLASS_UPDATED = "artifact_class.updated", "Artifact class updated"
    ARTIFACT_CREATED = "artifact.created", "Artifact created"
    ARTIFACT_RECOMMENDED = "artifact.recommended_version_set", "Recommended version set"
    ARTIFACT_VERSION_PUBLISHED = "artifact.version_published", "Version published"
    PROMPT_PUBLISHED = "prompt_published", "Prompt published"
    OWNERSHIP_CHANGED = "artifact.ownership_changed", "Ownership changed"
    ARTIFACT_DESCRIBED = "artifact.described", "Artifact title or summary changed"
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
    # Rollouts and runtime selection (rollouts/)
    ROLLOUT_CREATED = "rollout.created", "Rollout created"
    ROLLOUT_STARTED = "rollout.started", "Rollout started"
    ROLLOUT_ADVANCED = "rollout.advanced", "Rollout advanced a step"
    ROLLOUT_PAUSED = "rollout.paused", "Rollout paused"
    ROLLOUT_RESUMED = "rollout.resumed", "Rollout resumed"
    ROLLOUT_SUCCEEDED = "rollout.succeeded", "Rollout succeeded"
    ROLLOUT_ABORTED = "rollout.aborted", "Rollout aborted"
    ROLLOUT_ROLLED_BACK = "rollout.rolled_back", "Rollout rolled back"
    ROLLOUT_FLAG_SET = "rollout.flag_set", "Feature flag switched"
    ROLLOUT_FLAG_EXPIRING = "rollout.flag_expiring", "Feature flag expires soon"
    ROLLOUT_MANIFEST_APPENDED = "rollout.manifest_appended", "Rollout phase manifest appended"
    ROLLOUT_ITERATION_NOTED = "rollout.iteration_noted", "Rollout controller cycle noted"
    POINTER_MOVED = "pointer.moved", "Serving pointer moved"
    APPLICATION_CREATED = "application.created", "Application created"
    APPLICATION_UPDATED = "application.updated", "Application updated"
    SLOT_CREATED = "slot.created", "Slot created"
    SLOT_UPDATED = "slot.updated", "Slot updated"
    SERVICE_TOKEN_CREATED = "service_token.created", "Service token created"
    SERVICE_TOKEN_REVOKED = "service_token.revoked", "Service token revoked"
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
    # Backups, recovery drills and rollback rehearsals (governance/recovery)
    BACKUP_CREATED = "backup.created", "Backup taken"
    BACKUP_FAILED = "backup.failed", "Backup failed"
    BACKUP_RESTORED = "backup.restored", "Backup restored"
    DRILL_RECORDED = "recovery.drill_recorded", "Recovery drill recorded"
    REHEARSAL_RECORDED = "recovery.rehearsal_recorded", "Rollback rehearsal recorded"
    RECOVERY_STALE = "recovery.stale", "Recovery proof overdue"
    # Stage evidence (learning-artifact-lifecycle.md: criteria, action-eligible, re-certification)
    LIFECYCLE_POLICY_UPDATED = "lifecycle_policy.updated", "Stage criteria updated"
    DEPLOYMENT_CHECKLIST_COMPLETED = (
        "change_request.deployment_checklist_completed",
        "Deployment checklist completed",
    )
    ARTIFACT_ACTION_ELIGIBLE_SET = "artifact.action_eligible_set", "Action-eligible flag set"
    ARTIFACT_DEPUTY_SET = "artifact.deputy_set", "Deputy owner set"
    SAFETY_SWITCH_ENGAGED = "artifact.safety_switch_engaged", "Safety switch engaged (halted)"
    SAFETY_SWITCH_RELEASED = "artifact.safety_switch_released", "Safety switch released"
    RECERTIFICATION_OPENED = "recertification.opened", "Re-certification opened"
    RECERTIFICATION_COMPLETED = "recertification.completed", "Re-certified"
    RECERTIFICATION_OVERDUE = "recertification.overdue", "Re-certification overdue"
    VERSION_DOWNGRADED = "version.downgraded", "Version downgraded automatically"
    DEPLOYMENT_DRIFT_DETECTED = "runtime.drift_detected", "Deployed hash differs from approved"
    DEPLOYMENT_DRIFT_RESOLVED = "runtime.drift_resolved", "Deployed hash matches again"
