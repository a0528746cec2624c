"""``manage.py rollouts ACTION``: rollouts from the command line.

start|status|list|advance|pause|resume|abort|rollback|flag live in
``rollouts.management.operations``; simulate in ``rollouts.management.simulate``; export here;
rehearse runs the rollback rehearsal the project registers in ``rollouts.hooks``.

Each action is a ``do_<action>`` method; a subparser per action in ``add_arguments``.
A broken rule prints one ``error: field: reason`` line and exits non-zero.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.core.management.base import CommandParser

from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError, NotFound
from rollouts import hooks
from rollouts.management.operations import RolloutOperations, add_operation_parsers
from rollouts.models import IterationNote, ManifestVersion, Rollout

_ROLLOUT_REF = re.compile(r"^(?:RO-)?(\d{1,9})$", re.IGNORECASE)
_NOTE_FILE = re.compile(r"^iteration-(\d+)\.md$")
_NOTE_MARK = re.compile(r"^<!-- note (RO-\d+)#(\d+) -->$", re.MULTILINE)


def rollout_by_reference(reference: str) -> Rollout:
    """``RO-12`` or ``12``: the rollout, or NotFound naming the field (the CLI acts as the system)."""
    match = _ROLLOUT_REF.match(reference.strip())
    if match is None:
        raise DomainError(f"'{reference}' is not a rollout (RO-<number>).", field="rollout")
    rollout = (
        Rollout.objects.select_related("tenant", "change").filter(number=int(match[1])).first()
    )
    if rollout is None:
        raise NotFound(f"No rollout RO-{int(match[1])}.", field="rollout")
    return rollout


def note_markdown(note: IterationNote) -> str:
    """One controller cycle as ``notes/iteration-<n>.md`` (the mark lets a re-export skip it)."""
    rollout = note.rollout
    manifest = note.manifest
    lines = [
        f"<!-- note {rollout.reference}#{note.number} -->",
        f"# {rollout.reference} iteration {note.number}",
        "",
        f"- outcome: `{note.outcome}`",
        f"- reason: {note.reason}",
        f"- time: {note.created_at.isoformat()}",
        f"- phase manifest: `rollout/phase-manifest.json` version {manifest.number} "
        f"(sha256 `{manifest.sha256}`, status `{manifest.status}`)",
        f"- rollback evidence: {note.rollback_evidence or 'none (no rollback)'}",
        f"- trace ids: {', '.join(f'`{t}`' for t in note.trace_ids) or 'none'}",
        "",
    ]
    return "\n".join(lines)


def export_rollout(rollout: Rollout, out: Path) -> tuple[ManifestVersion, list[Path]]:
    """Write ``out/rollout/phase-manifest.json`` and the notes not exported yet.

    The manifest is appended first (a no-op when unchanged), so the file written is a version
    hashed into the log. Notes continue from the highest ``iteration-<n>.md`` already in
    ``out/notes`` (the seed's rule); a note already written there is not written again.
    """
    from rollouts.manifest import manifest_append

    manifest = manifest_append(rollout=rollout, actor=None)
    (out / "rollout").mkdir(parents=True, exist_ok=True)
    notes_dir = out / "notes"
    notes_dir.mkdir(parents=True, exist_ok=True)
    (out / "rollout" / "phase-manifest.json").write_text(
        json.dumps(manifest.body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    )
    highest = 0
    done: set[tuple[str, int]] = set()
    for path in notes_dir.iterdir():
        match = _NOTE_FILE.match(path.name)
        if match is None:
            continue
        highest = max(highest, int(match[1]))
        for mark in _NOTE_MARK.finditer(path.read_text(errors="replace")):
            done.add((mark[1], int(mark[2])))
    written = []
    notes = IterationNote.objects.filter(rollout=rollout).select_related("rollout", "manifest")
    for note in notes.order_by("number"):
        if (rollout.reference, note.number) in done:
            continue
        highest += 1
        path = notes_dir / f"iteration-{highest}.md"
        path.write_text(note_markdown(note))
        written.append(path)
    return manifest, written


class Command(RolloutOperations, ActionCommand):
    help = "Rollouts: start and move them on, show them, export the phase manifest and notes."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        add_operation_parsers(sub)
        p = sub.add_parser(
            "export",
            help="Write DIR/rollout/phase-manifest.json (the current manifest, hashed into the "
            "log) and DIR/notes/iteration-<n>.md for each controller cycle not exported yet.",
        )
        p.add_argument("rollout", metavar="ID", help="RO-<number> or <number>")
        p.add_argument("--out", required=True, metavar="DIR")
        p = sub.add_parser(
            "rehearse",
            help="Rehearse a rollback of SLOT's default in a scratch copy of the registry: time "
            "to revert and to roll forward, recorded as a signed recovery-drill version (exit 1 "
            "when it failed). The same as `drill rehearse`.",
        )
        p.add_argument(
            "slot", metavar="SLOT", help="APPLICATION.SLOT, e.g. sales-agent.qualifyLead"
        )
        p.add_argument(
            "--backup", type=Path, default=None, metavar="PATH", help="default: a fresh backup"
        )
        p = sub.add_parser(
            "simulate",
            help="Send simulated telemetry for a progressing canary through the ingest API and "
            "run the controller after each batch: watch it advance, pause or roll back.",
        )
        p.add_argument("rollout", metavar="ID", help="RO-<number> or <number>")
        p.add_argument("--baseline-error-rate", type=float, required=True)
        p.add_argument("--canary-error-rate", type=float, required=True)
        p.add_argument("--requests", type=int, required=True, help="canary requests in all")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--seconds-per-round", type=int, default=20, help="fake clock per round")
        p.add_argument(
            "--step-min-seconds",
            type=int,
            default=None,
            help="ROLLOUT_STEP_MIN_SECONDS for this run (the fake clock covers minutes at most)",
        )

    def do_rehearse(self, o: dict[str, Any]) -> None:
        passed, line = hooks.rehearsal_run(o["slot"], backup=o["backup"])
        if not passed:
            self.problem(line)
        self.stdout.write(line)

    def do_simulate(self, o: dict[str, Any]) -> None:
        from rollouts.management.simulate import simulate

        simulate(
            rollout_by_reference(o["rollout"]),
            baseline_error_rate=o["baseline_error_rate"],
            canary_error_rate=o["canary_error_rate"],
            requests=o["requests"],
            seed=o["seed"],
            seconds_per_round=o["seconds_per_round"],
            step_min_seconds=o["step_min_seconds"],
            say=self.stdout.write,
        )

    def do_export(self, o: dict[str, Any]) -> None:
        rollout = rollout_by_reference(o["rollout"])
        out = Path(o["out"])
        if out.exists() and not out.is_dir():
            raise DomainError(f"{out} is not a directory.", field="out")
        manifest, written = export_rollout(rollout, out)
        self.stdout.write(
            f"{rollout.reference}: {out / 'rollout' / 'phase-manifest.json'} version "
            f"{manifest.number} sha256 {manifest.sha256} ({manifest.status}); "
            f"{len(written)} new notes"
        )
