"""What reviews tells the registry about a version: who approved it, and the evidence recorded
for it. Registered in ``ReviewsConfig.ready()`` (registry/hooks.py); registry never imports it."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.utils import timezone

from registry.models import Version
from reviews.choices import ChangeStatus
from reviews.models import ChangeItem, ChangeRequest, EvaluationReport

#: A change in one of these states approved the versions it proposes.
APPROVING = (ChangeStatus.APPROVED, ChangeStatus.PROMOTED, ChangeStatus.ROLLED_BACK)


def approving_change(version: Version) -> ChangeRequest | None:
    """The latest change that approved ``version`` (approved, promoted, or promoted then rolled back)."""
    item = (
        ChangeItem.objects.filter(proposed=version, change__status__in=APPROVING)
        .select_related("change")
        .order_by("-change__decided_at", "-change__created_at")
        .first()
    )
    return item.change if item is not None else None


def _when(moment: Any) -> str:
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def version_provenance(version: Version) -> list[tuple[str, str, str]]:
    """The approvers of the change that approved ``version``, each with decision and time."""
    change = approving_change(version)
    if change is None:
        return [("Approvers", "none yet: no approved change proposes this version", "")]
    decided = f", decided {_when(change.decided_at)}" if change.decided_at else ""
    rows = [
        (
            "Approved in",
            f"{change.reference} ({ChangeStatus(change.status).label.lower()}{decided})",
            change.get_absolute_url(),
        )
    ]
    live = change.approvals.filter(voided_at__isnull=True, revision=change.revision)
    for approval in live.select_related("approver").order_by("created_at"):
        rows.append(
            (
                "Approver",
                f"{approval.approver.username} as {approval.get_requirement_display().lower()}: "
                f"{approval.get_decision_display().lower()}, {_when(approval.created_at)}",
                "",
            )
        )
    return rows


def evidence_refs(versions: list[Version]) -> dict[Any, list[dict[str, Any]]]:
    """Each version's evaluation reports, by the SHA-256 of their RFC 8785 form."""
    found: dict[Any, list[dict[str, Any]]] = {}
    reports = EvaluationReport.objects.filter(version__in=[v.pk for v in versions]).order_by(
        "created_at", "sha256"
    )
    for report in reports.select_related("change"):
        found.setdefault(report.version_id, []).append(
            {
                "kind": "evaluation_report",
                "sha256": report.sha256,
                "at": report.created_at.astimezone(UTC).isoformat(),
                "change": report.change.reference if report.change else None,
            }
        )
    return found
