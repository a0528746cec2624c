"""``manage.py events verify|export|checkpoint``: check the log, hand it to an auditor, sign its head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from governance.kernel.commands import ActionCommand
from governance.kernel.events import selectors
from governance.kernel.events.services import checkpoint_create, verify_database
from reviews.verification import passkey_rows_check


class Command(ActionCommand):
    help = "Verify, export or checkpoint the governance event log."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        verify = sub.add_parser("verify", help="Check the whole chain; exit 0 if intact, 1 if not.")
        verify.add_argument("--from", dest="from_seq", type=int, default=1, metavar="SEQ")
        verify.add_argument(
            "--all-signatures",
            action="store_true",
            help="Check every entry's signature, not only those past the newest checkpoint.",
        )
        export = sub.add_parser(
            "export", help="Write a self-contained bundle for `python -m governance.verify`."
        )
        export.add_argument("--out", required=True, metavar="FILE")
        sub.add_parser("checkpoint", help="Sign the current tree head now.")

    def do_verify(self, options: dict[str, Any]) -> None:
        if options["from_seq"] < 1:
            raise CommandError("from: must be 1 or more")
        result = verify_database(
            from_seq=options["from_seq"], all_signatures=options["all_signatures"]
        )
        if not result.ok:
            self.problem(result.line())
        matched, row_problem = passkey_rows_check()
        if row_problem is not None:
            self.problem(row_problem.line())
        self.stdout.write(result.line())
        if options["from_seq"] == 1:
            self.stdout.write(result.passkey_line())
        self.stdout.write(f"{matched} stored passkey approval(s) match their signed events")

    def do_export(self, options: dict[str, Any]) -> None:
        path = Path(options["out"])
        if not path.parent.is_dir():
            raise CommandError(f"out: folder {path.parent} does not exist")
        with path.open("wb") as out:
            written = selectors.log_bundle_write(
                out, meta={"exported_at": timezone.now().isoformat()}
            )
        if written.covered > written.count:
            self.problem(
                f"FAILED: wrote {written.count} events to {path}, but a checkpoint covers "
                f"{written.covered}: the log was cut back (the bundle will not verify)"
            )
        self.stdout.write(
            f"Wrote {written.count} events, {written.checkpoints} checkpoints to {path}"
        )

    def do_checkpoint(self, _options: dict[str, Any]) -> None:
        made = checkpoint_create()
        if made is None:
            self.stdout.write("No new events since the last checkpoint")
        else:
            self.stdout.write(f"Checkpoint: size {made.tree_size} root {made.root_hash}")
