"""``manage.py backup create|verify|restore``: a whole-registry backup, checked, brought back."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from governance.kernel.commands import ActionCommand
from governance.recovery.backup.archive import verify_backup
from governance.recovery.backup.restore import BackupRefused, backup_restore
from governance.recovery.backup.take import backup_take
from governance.recovery.models import RecoveryRun


class Command(ActionCommand):
    help = "Create, verify or restore a backup of the whole registry (tables, files, event log)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = sub.add_parser("create", help="Write a signed backup into a folder.")
        create.add_argument("--out", required=True, metavar="DIR")
        create.add_argument(
            "--with-secrets",
            action="store_true",
            help="Keep password hashes and token digests (left out by default).",
        )
        create.add_argument("--archive", action="store_true", help="Write one .tar.gz.")
        verify = sub.add_parser(
            "verify", help="Check a backup's signature, files and log (no database needed)."
        )
        verify.add_argument("path", metavar="FILE_OR_DIR")
        verify.add_argument("--trust-key", action="append", metavar="KID")
        restore = sub.add_parser("restore", help="Restore a backup into this empty database.")
        restore.add_argument("path", metavar="FILE_OR_DIR")
        restore.add_argument(
            "--no-verify-after",
            action="store_true",
            help="Skip `events verify` and `registry verify` after the restore.",
        )
        restore.add_argument(
            "--json",
            action="store_true",
            help="Print the result as one JSON line (rows, log size and root, seconds to "
            "restore and to verify, the checks, problems); drills read it.",
        )

    def do_create(self, options: dict[str, Any]) -> None:
        out = Path(options["out"])
        if not out.is_dir():
            raise BackupRefused(f"folder {out} does not exist", field="out")
        run = backup_take(
            out_dir=out, with_secrets=options["with_secrets"], archive=options["archive"]
        )
        if run.outcome != RecoveryRun.Outcome.PASSED:
            raise BackupRefused(f"the backup failed: {run.error}", field="out")
        d = run.details
        self.stdout.write(
            f"Backup {d['path']}: {d['bytes']} bytes, {d['rows']} rows, "
            f"log size {d['log_size']} root {d['log_root']} ({d['seconds']} s)"
        )

    def do_verify(self, options: dict[str, Any]) -> None:
        trusted = set(options["trust_key"]) if options["trust_key"] else None
        check = verify_backup(options["path"], trusted)
        if not check.ok:
            for problem in check.problems:
                self.stderr.write(problem)
            self.problem(f"FAILED: {len(check.problems)} problem(s) in {options['path']}")
        log = check.manifest["log"]
        rows = sum(int(t["rows"]) for t in check.manifest["tables"])
        self.stdout.write(
            f"OK: {options['path']} verifies: {len(check.manifest['files'])} files, {rows} rows, "
            f"log size {log['size']} root {log['root']}"
        )

    def do_restore(self, options: dict[str, Any]) -> None:
        result = backup_restore(options["path"], verify=not options["no_verify_after"])
        if options["json"]:
            self.stdout.write(json.dumps({**asdict(result), "ok": result.ok}, sort_keys=True))
            if not options["no_verify_after"] and not result.ok:
                self.problem("\n".join(result.problems) or None)
            return
        rows = sum(result.rows.values())
        summary = (
            f"{rows} rows, log size {result.log_size} root {result.log_root}, "
            f"restore {result.seconds_restore} s"
        )
        if options["no_verify_after"]:
            self.stdout.write(f"Restored {summary} (not verified)")
            return
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(problem)
            self.problem(f"FAILED: restored {summary}, but it does not verify")
        self.stdout.write(f"Restored {summary}, verify {result.seconds_verify} s: OK")
