"""``manage.py changes list|show|open|submit|approve|reject|withdraw|promote|checklist|run-checks|gates|stage-criteria|export``.

The same services as the pages and the API. Acting as a person takes ``--as USERNAME``;
approving or rejecting also takes that person's password on standard input
(``--password-stdin``), because a sign-off is a deliberate act.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from accounts.selectors import tenant_by_slug, user_by_username
from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError, Forbidden
from reviews import selectors, services
from reviews.choices import CheckStatus, Requirement
from reviews.models import Approval, ChangeRequest, CheckRun


def _rolled_back(change: ChangeRequest, *, sep: str) -> str:
    """``rolled back by NAME at TIME`` for a change whose promotion was undone, else nothing."""
    if change.rolled_back_at is None:
        return ""
    who = change.rolled_back_by.username if change.rolled_back_by else "system"
    return f"{sep}rolled back by {who} at {change.rolled_back_at:%Y-%m-%d %H:%M}"


def _signed(approval: Approval) -> str:
    """`` [passkey NAME sha256:…]`` for a passkey sign-off (the statement's digest is what the
    authenticator signed), else nothing."""
    if approval.passkey_id is None or approval.passkey is None:
        return ""
    return f" [passkey '{approval.passkey.name}' sha256:{approval.passkey_challenge[:16]}]"


class Command(ActionCommand):
    help = "Open, review, promote and export change requests."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser("list", help="Change requests, newest first.")
        p.add_argument("--tenant", default=None)
        p.add_argument("--status", default=None)
        p = sub.add_parser("show", help="A change: status, approvals, checks, blockers.")
        p.add_argument("ref", metavar="CR-YYYY-NNNN")
        p = sub.add_parser("open", help="Open a draft change request.")
        p.add_argument("--tenant", required=True)
        p.add_argument("--title", required=True)
        p.add_argument("--rollback-plan", required=True)
        p.add_argument("--propose", nargs="+", required=True, metavar="REF")
        p.add_argument("--description", default="")
        p.add_argument("--risk-note", default="")
        p.add_argument("--migration-plan", default="")
        p.add_argument("--corpus", default=None, metavar="REF", help="golden corpus version")
        for flag in ("privacy-related", "external-egress", "emergency"):
            p.add_argument(f"--{flag}", action="store_true")
        p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        for name in ("submit", "withdraw", "promote"):
            p = sub.add_parser(name, help=f"{name.capitalize()} a change.")
            p.add_argument("ref", metavar="CR-YYYY-NNNN")
            p.add_argument("--as", dest="as_user", default=None, metavar="USERNAME")
            if name == "withdraw":
                p.add_argument("--reason", default="")
        for name in ("approve", "reject"):
            p = sub.add_parser(name, help=f"{name.capitalize()} a change in one required role.")
            p.add_argument("ref", metavar="CR-YYYY-NNNN")
            p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
            p.add_argument("--comment", default="", required=name == "reject")
            p.add_argument("--requirement", default=None, choices=Requirement.values)
            p.add_argument(
                "--password-stdin",
                action="store_true",
                required=True,
                help="read the approver's password from the first line of standard input",
            )
        p = sub.add_parser(
            "checklist", help="Complete the deployment checklist of a change's current revision."
        )
        p.add_argument("ref", metavar="CR-YYYY-NNNN")
        p.add_argument("--as", dest="as_user", default=None, metavar="USERNAME")
        for name, what in services.CHECKLIST_FIELDS.items():
            p.add_argument(f"--{name.replace('_', '-')}", dest=name, required=True, help=what)
        p.add_argument("--notes", default="")
        p = sub.add_parser(
            "run-checks", help="Run the change's pending checks here, without a worker."
        )
        p.add_argument("ref", metavar="CR-YYYY-NNNN")
        p = sub.add_parser(
            "gates", help="Show (or, with --set FILE, replace) a class's change gates in a tenant."
        )
        p.add_argument("tenant")
        p.add_argument("artifact_class", metavar="CLASS")
        p.add_argument(
            "--set", dest="gates_file", default=None, metavar="FILE", help="JSON list of gates"
        )
        p.add_argument("--as", dest="as_user", default=None, metavar="USERNAME")
        self._add_stage_criteria(sub)
        p = sub.add_parser("export", help="Write the signed change-request record as JSON.")
        p.add_argument("ref", metavar="CR-YYYY-NNNN")
        p.add_argument("--out", default="-", help="file to write (default: standard output)")

    @staticmethod
    def _add_stage_criteria(sub: Any) -> None:
        p = sub.add_parser(
            "stage-criteria",
            help="Show (or, with --set FILE, save a new version of) a tenant's stage criteria.",
        )
        p.add_argument("tenant")
        p.add_argument(
            "--set", dest="criteria_file", default=None, metavar="FILE", help="JSON criteria"
        )
        mode = p.add_mutually_exclusive_group()
        mode.add_argument("--enforced", dest="enforced", action="store_true", default=None)
        mode.add_argument("--advisory", dest="enforced", action="store_false")
        p.add_argument("--tolerance", type=float, default=None, help="reproducibility tolerance")
        p.add_argument("--recertify-days", type=int, default=None, metavar="DAYS")
        p.add_argument("--reason", default="", help="why (required when saving)")
        p.add_argument("--as", dest="as_user", default=None, metavar="USERNAME")

    def _actor(self, o: dict[str, Any]) -> Any:
        return user_by_username(o["as_user"]) if o.get("as_user") else None

    def do_list(self, o: dict[str, Any]) -> None:
        qs = ChangeRequest.objects.select_related("tenant", "author", "rolled_back_by")
        if o["tenant"]:
            qs = qs.filter(tenant=tenant_by_slug(o["tenant"]))
        if o["status"]:
            qs = qs.filter(status=o["status"])
        for c in qs:
            self.stdout.write(
                f"{c.reference}\t{c.tenant.slug}\t{c.status}\t{c.change_type}\t{c.author.username}\t{c.title}"
                + _rolled_back(c, sep="\t")
            )

    def do_show(self, o: dict[str, Any]) -> None:
        change = selectors.change_by_reference_unscoped(o["ref"])
        out = self.stdout.write
        out(
            f"{change.reference} [{change.status}] {change.title}"
            + (" EMERGENCY" if change.emergency else "")
        )
        out(
            f"tenant {change.tenant.slug}, author {change.author.username}, revision {change.revision}"
        )
        if change.rolled_back_at:
            out(f" {_rolled_back(change, sep='')}")
        for item in selectors.items_of(change):
            current = item.current.pinned if item.current else "(none active)"
            out(f"  {current} -> {item.proposed.pinned}")
        status = selectors.approval_status(change)
        for slot in status.slots:
            who = slot.approval.approver.username if slot.approval else "MISSING"
            if slot.approval is not None:
                who += _signed(slot.approval)
            elif selectors.passkey_required(change, slot.requirement):
                who += " (passkey required)"
            out(f"  approval {slot.label}: {who}")
        for approval in status.rejections:
            out(
                f"  rejected by {approval.approver.username}{_signed(approval)}: {approval.comment}"
            )
        for approval, why in status.not_counting:
            out(
                f"  not counting: {approval.decision} by {approval.approver.username} as "
                f"{Requirement(approval.requirement).label}{_signed(approval)}: {why}"
            )
        for kind, run in selectors.check_summary(change).runs.items():
            out(
                f"  check {kind}: {run.status if run else 'not run'}{' - ' + run.summary if run else ''}"
            )
        checklist = selectors.deployment_checklist_latest(change)
        if checklist is None:
            out("  deployment checklist: not completed")
        else:
            who = checklist.completed_by.username if checklist.completed_by else "system"
            stale = " OUTDATED" if checklist.revision != change.revision else ""
            out(
                f"  deployment checklist: revision {checklist.revision} by {who} at "
                f"{checklist.created_at:%Y-%m-%d %H:%M}{stale}"
            )
        recertification = selectors.recertification_of(change)
        if recertification is not None:
            due = f"{recertification.due_at:%Y-%m-%d}"
            out(
                f"  re-certified by {recertification.followup.reference} (due {due})"
                if recertification.followup is not None
                else f"  NOT re-certified (due {due})"
            )
        for blocker in selectors.promotion_blockers(change) if change.status == "approved" else []:
            out(f"  blocks promotion: {blocker}")

    def do_open(self, o: dict[str, Any]) -> None:
        change = services.change_create(
            tenant=tenant_by_slug(o["tenant"]),
            actor=self._actor(o),
            title=o["title"],
            rollback_plan=o["rollback_plan"],
            proposed=o["propose"],
            description=o["description"],
            risk_note=o["risk_note"],
            migration_plan=o["migration_plan"],
            privacy_related=o["privacy_related"],
            external_egress=o["external_egress"],
            emergency=o["emergency"],
            golden_corpus=o["corpus"],
        )
        self.stdout.write(f"{change.reference} opened (draft)")

    def do_submit(self, o: dict[str, Any]) -> None:
        change = services.change_submit(
            change=selectors.change_by_reference_unscoped(o["ref"]), actor=self._actor(o)
        )
        self.stdout.write(f"{change.reference} submitted; needs {', '.join(change.requirements)}")

    def do_withdraw(self, o: dict[str, Any]) -> None:
        change = services.change_withdraw(
            change=selectors.change_by_reference_unscoped(o["ref"]),
            actor=self._actor(o),
            reason=o["reason"],
        )
        self.stdout.write(f"{change.reference} withdrawn")

    def do_promote(self, o: dict[str, Any]) -> None:
        change = services.change_promote(
            change=selectors.change_by_reference_unscoped(o["ref"]), actor=self._actor(o)
        )
        self.stdout.write(f"{change.reference} promoted")

    def _decide(self, o: dict[str, Any], decision: str) -> None:
        actor = self._actor(o)
        password = sys.stdin.readline().rstrip("\n")
        if not (actor.is_active and actor.check_password(password)):
            raise Forbidden("The password given on standard input is not that user's.")
        approval = services.approval_decide(
            change=selectors.change_by_reference_unscoped(o["ref"]),
            actor=actor,
            decision=decision,
            comment=o["comment"],
            requirement=o["requirement"],
        )
        change = approval.change
        change.refresh_from_db()
        self.stdout.write(
            f"{change.reference}: {decision} as {approval.requirement} by {actor.username}; now {change.status}"
        )

    def do_approve(self, o: dict[str, Any]) -> None:
        self._decide(o, "approve")

    def do_reject(self, o: dict[str, Any]) -> None:
        self._decide(o, "reject")

    def do_checklist(self, o: dict[str, Any]) -> None:
        checklist = services.deployment_checklist_complete(
            change=selectors.change_by_reference_unscoped(o["ref"]),
            actor=self._actor(o),
            notes=o["notes"],
            **{name: o[name] for name in services.CHECKLIST_FIELDS},
        )
        self.stdout.write(
            f"{checklist.change.reference}: deployment checklist of revision "
            f"{checklist.revision} completed ({checklist.sha256})"
        )

    def do_run_checks(self, o: dict[str, Any]) -> None:
        change = selectors.change_by_reference_unscoped(o["ref"])
        pending = CheckRun.objects.filter(change=change, status=CheckStatus.PENDING)
        failed = False
        for run in pending:
            done = services.check_execute(run=run)
            failed |= done.status != CheckStatus.PASSED
            self.stdout.write(f"{done.kind}: {done.status} - {done.summary}")
        if failed:
            self.problem()

    def do_gates(self, o: dict[str, Any]) -> None:
        from registry.selectors import artifact_class_by_slug
        from reviews.models import ChangeGate

        tenant = tenant_by_slug(o["tenant"])
        cls = artifact_class_by_slug(o["artifact_class"])
        if o["gates_file"]:
            path = Path(o["gates_file"])
            if not path.is_file():
                raise DomainError(f"No file {path}.", field="file")
            try:
                gates = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                raise DomainError(f"{path} is not JSON: {exc}", field="file") from exc
            services.change_gate_set(
                tenant=tenant, artifact_class=cls, gates=gates, actor=self._actor(o)
            )
        row = ChangeGate.objects.filter(tenant=tenant, artifact_class=cls).first()
        self.stdout.write(json.dumps(row.gates if row else [], indent=2))

    def do_stage_criteria(self, o: dict[str, Any]) -> None:
        from reviews.lifecycle.selectors import policy_in_force

        tenant = tenant_by_slug(o["tenant"])
        current = policy_in_force(tenant)
        changing = o["enforced"] is not None or o["tolerance"] is not None
        if o["criteria_file"] or changing or o["recertify_days"] is not None:
            criteria: Any = current.document
            if o["criteria_file"]:
                path = Path(o["criteria_file"])
                if not path.is_file():
                    raise DomainError(f"No file {path}.", field="file")
                try:
                    criteria = json.loads(path.read_text())
                except json.JSONDecodeError as exc:
                    raise DomainError(f"{path} is not JSON: {exc}", field="file") from exc
            row = services.lifecycle_policy_set(
                tenant=tenant,
                criteria=criteria,
                enforced=current.enforced if o["enforced"] is None else o["enforced"],
                reproducibility_tolerance=current.reproducibility_tolerance
                if o["tolerance"] is None
                else o["tolerance"],
                recertify_within_days=current.recertify_within_days
                if o["recertify_days"] is None
                else o["recertify_days"],
                reason=o["reason"],
                actor=self._actor(o),
            )
            self.stderr.write(f"Saved version {row.number} of {tenant.slug}'s stage criteria.")
            current = policy_in_force(tenant)
        number = current.row.number if current.row else "built-in"
        self.stdout.write(
            f"{tenant.slug}: {current.scope} criteria, version {number}, "
            f"{'enforced' if current.enforced else 'advisory'}, reproducibility tolerance "
            f"{current.reproducibility_tolerance:g}, re-certify within "
            f"{current.recertify_within_days} days"
        )
        self.stdout.write(json.dumps(current.document, indent=2))

    def do_export(self, o: dict[str, Any]) -> None:
        from reviews.record import signed_record

        change = selectors.change_by_reference_unscoped(o["ref"])
        text = json.dumps(signed_record(change), indent=2, sort_keys=True)
        if o["out"] == "-":
            self.stdout.write(text)
        else:
            Path(o["out"]).write_text(text + "\n")
            self.stdout.write(f"Wrote {change.reference} to {o['out']}")
