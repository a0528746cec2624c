"""Stored passkey approvals against their signed events (``manage.py events verify``).

The log's own check (``governance.kernel.passkey_audit``) proves every passkey approval
*event*; this one proves that the approval *rows* the pages and the API show still say what
those events say: the statement, the assertion, the key and the decision. A row edited in the
database after signing no longer matches the signed event, and is named.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from reviews.models import Approval

_KINDS = (EventKind.APPROVAL_GRANTED, EventKind.APPROVAL_REJECTED)


@dataclass(frozen=True)
class RowProblem:
    seq: int | None
    reason: str

    def line(self) -> str:
        where = f"seq {self.seq}" if self.seq is not None else "log"
        return f"FAILED at {where}: {self.reason}"


def _name(approval: Approval) -> str:
    return (
        f"stored passkey approval of {approval.change.reference} revision {approval.revision} "
        f"by {approval.approver.get_username()} as {approval.requirement}"
    )


def _row_differences(approval: Approval, event: dict[str, Any]) -> list[str]:
    payload = event["payload"]
    signed = payload["passkey"]
    decision = "approve" if event["kind"] == EventKind.APPROVAL_GRANTED else "reject"
    pairs = {
        "passkey_statement": (approval.passkey_statement, signed.get("statement")),
        "passkey_assertion": (approval.passkey_assertion, signed.get("assertion")),
        "passkey_challenge": (approval.passkey_challenge, signed.get("statement_sha256")),
        "passkey": (
            approval.passkey.credential_id if approval.passkey is not None else None,
            signed.get("credential_id"),
        ),
        "approver": (str(approval.approver_id), event["actor_id"]),
        "change": (str(approval.change_id), event["subject_id"]),
        "revision": (approval.revision, payload.get("revision")),
        "requirement": (approval.requirement, payload.get("requirement")),
        "decision": (approval.decision, decision),
        "binding_sha256": (approval.binding_sha256, payload.get("binding_sha256")),
        "comment": (approval.comment, payload.get("comment", "")),
    }
    return [name for name, (stored, logged) in pairs.items() if stored != logged]


def passkey_rows_check() -> tuple[int, RowProblem | None]:
    """(rows that match, the first problem or None). Every approval row with passkey columns
    must match the approval event carrying its statement, and every such event must have its
    row."""
    events: dict[str, tuple[int, dict[str, Any]]] = {}
    rows = (
        Event.objects.filter(kind__in=_KINDS, payload__has_key="passkey")
        .order_by("seq")
        .values("seq", "kind", "actor_id", "subject_id", "payload")
    )
    for row in rows:
        event: dict[str, Any] = dict(row)
        signed = event["payload"].get("passkey")
        if isinstance(signed, dict):
            event["actor_id"] = str(event["actor_id"]) if event["actor_id"] else None
            events.setdefault(str(signed.get("statement_sha256")), (event["seq"], event))
    approvals = (
        Approval.objects.filter(
            Q(passkey__isnull=False)
            | ~Q(passkey_statement="")
            | ~Q(passkey_challenge="")
            | Q(passkey_assertion__isnull=False)
        )
        .select_related("change", "approver", "passkey")
        .order_by("created_at", "pk")
    )
    matched = 0
    seen: set[str] = set()
    for approval in approvals:
        found = events.get(approval.passkey_challenge) or events.get(
            hashlib.sha256(approval.passkey_statement.encode()).hexdigest()
        )
        if found is None:
            return matched, RowProblem(
                None, f"{_name(approval)}: no signed approval event carries its passkey statement"
            )
        seq, event = found
        seen.add(str(event["payload"]["passkey"].get("statement_sha256")))
        differ = _row_differences(approval, event)
        if differ:
            return matched, RowProblem(
                seq,
                f"{_name(approval)}: its columns differ from its signed event ({', '.join(differ)})",
            )
        matched += 1
    for digest, (seq, event) in events.items():
        if digest not in seen:
            return matched, RowProblem(
                seq,
                f"passkey approval of {event['payload'].get('change', '?')}: the signed event "
                "has no stored approval",
            )
    return matched, None
