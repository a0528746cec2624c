"""The versioned change-request record (promotion-workflow.md), signed like a manifest, for pages, API and CLI."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from governance.kernel.events import keys as keystore
from governance.kernel.events.services import active_key, canonical
from registry.models import Version
from reviews import selectors
from reviews.models import Activation, Approval, ChangeRequest, CheckRun

#: Bumped when the record's shape changes, so a reader knows which fields to expect.
#: 2: each approval carries ``passkey`` (null, or the signed statement and the assertion) and
#: ``why_not_counting``.
RECORD_FORMAT = 2


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _id(pk: Any) -> str | None:
    return str(pk) if pk is not None else None


def _version(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {"path": version.path, "version": version.version, "sha256": version.manifest_sha256}


def _check(run: CheckRun | None, kind: str) -> dict[str, Any]:
    if run is None:
        return {"kind": kind, "status": "not run"}
    return {
        "kind": run.kind,
        "revision": run.revision,
        "attempt": run.attempt,
        "status": run.status,
        "summary": run.summary,
        "log_sha256": hashlib.sha256(run.log.encode()).hexdigest(),
        "result": run.result,
        "started_at": _when(run.started_at),
        "finished_at": _when(run.finished_at),
    }


def _passkey(approval: Approval) -> dict[str, Any] | None:
    """A passkey sign-off as the record carries it: enough to check it offline against the
    public key in the credential's ``passkey.registered`` event."""
    if approval.passkey_id is None or approval.passkey is None:
        return None
    return {
        "credential_id": approval.passkey.credential_id,
        "statement": approval.passkey_statement,
        "statement_sha256": approval.passkey_challenge,
        "assertion": approval.passkey_assertion,
    }


def change_record(change: ChangeRequest) -> dict[str, Any]:
    """Everything an auditor needs about a change, as plain JSON values (no signature)."""
    items = selectors.items_of(change)
    checks = selectors.check_summary(change)
    status = selectors.approval_status(change)
    counted = {s.approval.pk for s in status.slots if s.approval is not None}
    why_not = {approval.pk: why for approval, why in status.not_counting}
    reports = list(selectors.evaluation_reports(change).order_by("created_at"))
    approvals = change.approvals.select_related("approver", "passkey").order_by("created_at")
    activations = Activation.objects.filter(change=change).select_related(
        "artifact__artifact_class",
        "artifact__tenant",
        "version__artifact__artifact_class",
        "version__artifact__tenant",
        "previous__artifact__artifact_class",
        "previous__artifact__tenant",
        "actor",
    )
    return {
        "format": RECORD_FORMAT,
        "change_id": change.reference,
        "uuid": str(change.pk),
        "tenant": change.tenant.slug,
        "change_type": change.change_type,
        "title": change.title,
        "description": change.description,
        "risk_note": change.risk_note,
        "rollback_plan": change.rollback_plan,
        "status": change.status,
        "revision": change.revision,
        "binding_sha256": change.binding_sha256,
        "flags": {
            "emergency": change.emergency,
            "privacy_related": change.privacy_related,
            "external_egress": change.external_egress,
        },
        "author": {"id": _id(change.author_id), "username": change.author.username},
        "created_at": _when(change.created_at),
        "submitted_at": _when(change.submitted_at),
        "decided_at": _when(change.decided_at),
        "promoted_at": _when(change.promoted_at),
        "promoted_by": _id(change.promoted_by_id),
        "rolled_back_at": _when(change.rolled_back_at),
        "rolled_back_by": _id(change.rolled_back_by_id),
        "postmortem_due_at": _when(change.postmortem_due_at),
        "proposed_versions": [i.proposed.pinned for i in items],
        "current_versions": [i.current.pinned if i.current else None for i in items],
        "artifacts": [
            {
                "artifact": i.artifact.path,
                "class": i.artifact.artifact_class.slug,
                "proposed": _version(i.proposed),
                "current": _version(i.current),
            }
            for i in items
        ],
        "golden_corpus": _version(change.golden_corpus),
        "policy": change.policy.number if change.policy else None,
        "required_approvals": list(change.requirements),
        "checks": [_check(run, kind) for kind, run in checks.runs.items()],
        "evaluations": [
            {
                "version": r.version.pinned,
                "sha256": r.sha256,
                "metrics": r.metrics,
                "bias": r.bias,
                "safety": r.safety,
                "seed": r.seed,
                "rng": r.rng,
                "test_run_ids": r.test_run_ids,
                "submitted_by": _id(r.submitted_by_id),
                "created_at": _when(r.created_at),
            }
            for r in reports
        ],
        "test_run_ids": sorted({t for r in reports for t in r.test_run_ids}),
        "approvals": [
            {
                "actor_id": _id(a.approver_id),
                "actor": a.approver.username,
                "requirement": a.requirement,
                "decision": a.decision,
                "comment": a.comment,
                "revision": a.revision,
                "binding_sha256": a.binding_sha256,
                "at": _when(a.created_at),
                "counts": a.pk in counted,
                "why_not_counting": why_not.get(a.pk),
                "voided_at": _when(a.voided_at),
                "void_reason": a.void_reason,
                "passkey": _passkey(a),
            }
            for a in approvals
        ],
        "activations": [
            {
                "kind": a.kind,
                "version": _version(a.version),
                "previous": _version(a.previous),
                "actor_id": _id(a.actor_id),
                "artifact": a.artifact.path,
                "reason": a.reason,
                "override_reason": a.override_reason,
                "at": _when(a.created_at),
            }
            for a in activations
        ],
    }


def signed_record(change: ChangeRequest) -> dict[str, Any]:
    """The record with the SHA-256 of its RFC 8785 bytes and an Ed25519 signature over that hash."""
    record = change_record(change)
    digest = hashlib.sha256(canonical(record)).hexdigest()
    key = active_key()
    return {
        "record": record,
        "sha256": digest,
        "key_id": key.kid,
        "signature": keystore.sign(key.kid, bytes.fromhex(digest)),
    }
