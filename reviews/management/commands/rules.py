"""``manage.py rules lint|simulate``: check a routing ruleset version before proposing it.

Exit status: 0 when the report is clean, 1 when it finds problems, 2 for bad input.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError
from registry import selectors
from registry.choices import ArtifactClass
from registry.models import Version
from reviews import rules

RULESET_CLASS = ArtifactClass.ROUTING_RULESET
CORPUS_CLASS = ArtifactClass.GOLDEN_CORPUS


def _version(ref: str, cls: str, tenant: str | None) -> Version:
    version = selectors.version_by_reference_unscoped(ref, tenant=tenant)
    actual = version.artifact.artifact_class.slug
    if actual != cls:
        raise DomainError(f"{version.path} is a {actual} version, not a {cls}.", field="reference")
    return version


class Command(ActionCommand):
    help = "Lint a routing ruleset version, or simulate it on a golden corpus."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        p = sub.add_parser("lint", help="Check a ruleset's shape, duplicates, conflicts and reach.")
        p.add_argument("ref", metavar="REF", help="a routing-ruleset version")
        p.add_argument("--tenant", default=None, help="context for slug@version forms")
        p = sub.add_parser(
            "simulate", help="Route a golden corpus with the ruleset (and the one it replaces)."
        )
        p.add_argument("ref", metavar="REF", help="the proposed routing-ruleset version")
        p.add_argument("--corpus", required=True, metavar="REF", help="a golden-corpus version")
        p.add_argument(
            "--against", default=None, metavar="REF", help="the current routing-ruleset version"
        )
        p.add_argument("--tenant", default=None, help="context for slug@version forms")

    def do_lint(self, o: dict[str, Any]) -> None:
        version = _version(o["ref"], RULESET_CLASS, o["tenant"])
        report = rules.lint(version.content_json)
        self.stdout.write(f"{version.pinned}\n{report.text()}")
        if not report.ok:
            self.problem()

    def do_simulate(self, o: dict[str, Any]) -> None:
        version = _version(o["ref"], RULESET_CLASS, o["tenant"])
        corpus = _version(o["corpus"], CORPUS_CLASS, o["tenant"])
        against = _version(o["against"], RULESET_CLASS, o["tenant"]) if o["against"] else None
        report = rules.simulate(
            version.content_json,
            corpus.content_json,
            against.content_json if against is not None else None,
        )
        header = f"{version.pinned} on {corpus.pinned}"
        if against is not None:
            header += f" against {against.pinned}"
        self.stdout.write(f"{header}\n{report.text()}")
        if not report.ok:
            self.problem()
