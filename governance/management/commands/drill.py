"""``manage.py drill run|rehearse``: prove the registry can come back, and record the proof.

``run`` restores a backup (the newest in ``BACKUP_DIR`` unless ``--backup``) into a scratch
database, verifies it and records the outcome; ``rehearse SLOT`` rolls a slot's default back
and forward in a scratch copy and records the time to revert (``rollouts rehearse`` is the same).
Both exit 0 when the proof passed and 1 when it failed (recorded either way); bad input is
refused with exit 2. ``scratch-rehearse`` is what ``rehearse`` runs inside the scratch copy.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from governance.kernel.commands import ActionCommand
from governance.recovery.drills import drill_run, run_summary
from governance.recovery.models import RecoveryRun
from governance.recovery.rehearsals import rehearsal_run, scratch_rehearse


class Command(ActionCommand):
    help = "Recovery drills and rollback rehearsals, each recorded as a signed registry version."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser(
            "run",
            help="Restore a backup into a scratch database, verify and time it, and record the "
            "outcome (exit 1 when the drill failed).",
        )
        p.add_argument(
            "--backup",
            type=Path,
            default=None,
            metavar="PATH",
            help="default: newest in BACKUP_DIR",
        )
        p = sub.add_parser(
            "rehearse",
            help="Roll SLOT's default back and forward in a scratch copy, time it, and record "
            "the outcome (exit 1 when the rehearsal failed).",
        )
        p.add_argument(
            "slot", metavar="SLOT", help="APPLICATION.SLOT, e.g. sales-agent.qualifyLead"
        )
        p.add_argument(
            "--backup", type=Path, default=None, metavar="PATH", help="default: a fresh backup"
        )
        p = sub.add_parser(
            "scratch-rehearse",
            help="What `rehearse` runs inside the scratch copy (refused in any other database).",
        )
        p.add_argument("slot", metavar="SLOT")
        p.add_argument("--json", action="store_true")

    def _report(self, run: RecoveryRun) -> None:
        line = run_summary(run)
        if run.outcome != RecoveryRun.Outcome.PASSED:
            self.problem(line)
        self.stdout.write(line)

    def do_run(self, o: dict[str, Any]) -> None:
        self._report(drill_run(backup=o["backup"]))

    def do_rehearse(self, o: dict[str, Any]) -> None:
        self._report(rehearsal_run(slot_label=o["slot"], backup=o["backup"]))

    def do_scratch_rehearse(self, o: dict[str, Any]) -> None:
        answer = scratch_rehearse(slot_label=o["slot"])
        self.stdout.write(json.dumps(answer, sort_keys=True))
