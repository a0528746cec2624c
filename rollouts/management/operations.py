"""The operating half of ``manage.py rollouts``: start|status|list|advance|pause|resume|abort|rollback|flag.

The same services as the pages and the API (``rollouts.services``). ``ID`` is ``RO-<n>`` or
``n``; acting as a person takes ``--as USERNAME`` (default: the system); ``--revision N``
makes a transition compare-and-swap on the revision you saw.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts.selectors import tenant_by_slug, user_by_username
from governance.kernel.errors import DomainError
from reviews import selectors as reviews_selectors
from rollouts import selectors, services
from rollouts.choices import BUCKETS, PromotionTarget, RolloutState, RolloutStrategy
from rollouts.models import Rollout

#: Transitions that take only the rollout (and an optional reason).
MOVES = {
    "advance": "Go to the next step; past the last one the rollout succeeds.",
    "pause": "Hold at the current step (the canary set stays the same).",
    "resume": "Carry on from where it was paused.",
    "abort": "Stop where it stands.",
    "rollback": "Restore the exact previous pointers of every slot it moved (no approvals).",
}
DONE = {
    "advance": "advanced",
    "pause": "paused",
    "resume": "resumed",
    "abort": "aborted",
    "rollback": "rolled back",
}
#: Those that must say why.
NEEDS_REASON = frozenset({"pause", "resume", "abort", "rollback"})


def percent(weight: int) -> str:
    """A weight in buckets as people read it: ``25%``, ``0.5%``."""
    return f"{weight * 100 / BUCKETS:g}%"


def canary_steps(text: str) -> list[int]:
    """``1,5,25,50,100`` (percent) -> weights in buckets; refused naming ``steps``."""
    weights = []
    for part in text.split(","):
        try:
            value = Decimal(part.strip())
        except InvalidOperation:
            raise DomainError(f"'{part.strip()}' is not a percentage.", field="steps") from None
        if not 0 < value <= 100:
            raise DomainError(f"{part.strip()}% is not between 0 and 100.", field="steps")
        weights.append(int(value * BUCKETS / 100))
    return weights


def moment(text: str) -> Any:
    """An ISO date (end of that day, UTC) or date-time; refused naming ``flag_expires_at``."""
    parsed = parse_datetime(text)
    if parsed is None:
        day = parse_date(text)
        if day is None:
            raise DomainError(
                f"'{text}' is not a date (YYYY-MM-DD) or an ISO date-time.", field="flag_expires_at"
            )
        parsed = datetime.combine(day, time.max)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def add_operation_parsers(sub: Any) -> None:
    """Add the operating subcommands to ``manage.py rollouts``'s subparsers."""

    def actor(p: CommandParser) -> None:
        p.add_argument(
            "--as",
            dest="as_user",
            default=None,
            metavar="USERNAME",
            help="act as this administrator (default: the system)",
        )

    p = sub.add_parser("start", help="Roll out a promoted change (and start it, unless --draft).")
    p.add_argument("change", metavar="CHANGE_REF", help="CR-YYYY-NNNN of a promoted change")
    p.add_argument("--strategy", choices=RolloutStrategy.values, default=None)
    p.add_argument("--steps", default=None, help="canary weights in percent, e.g. 1,5,25,50,100")
    p.add_argument(
        "--wave",
        action="append",
        default=None,
        metavar="TENANT,TENANT",
        help="tenant strategy: one wave of tenants (repeat for each wave)",
    )
    p.add_argument("--target", choices=PromotionTarget.values, default=PromotionTarget.LIVE)
    p.add_argument("--cohort", default=None, help="paper target: subject ids, comma-separated")
    p.add_argument("--flag-key", default="")
    p.add_argument("--flag-expires", default=None, metavar="DATE")
    p.add_argument("--reason", default="")
    p.add_argument("--draft", action="store_true", help="create it without starting it")
    actor(p)
    p = sub.add_parser("status", help="One rollout in full, or every rollout in progress.")
    p.add_argument("id", nargs="?", default=None, metavar="ID")
    p = sub.add_parser("list", help="Rollouts, newest first.")
    p.add_argument("--state", choices=RolloutState.values, default=None)
    p.add_argument("--tenant", default=None)
    p.add_argument("--application", default=None)
    for name, text in MOVES.items():
        p = sub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID", help="RO-<n> or n")
        p.add_argument("--reason", required=name in NEEDS_REASON, default="")
        p.add_argument("--revision", type=int, default=None, help="the revision you saw")
        actor(p)
    p = sub.add_parser("flag", help="Turn a flag rollout's flag on or off.")
    p.add_argument("id", metavar="ID")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--reason", required=True)
    actor(p)


class RolloutOperations:
    """``do_<action>`` for the operating subcommands (mixed into the ``rollouts`` command)."""

    stdout: Any

    def _actor(self, o: dict[str, Any]) -> Any:
        return user_by_username(o["as_user"]) if o.get("as_user") else None

    def _say(self, rollout: Rollout, what: str) -> None:
        rollout.refresh_from_db()
        where = f"step {rollout.step}/{len(rollout.steps)}" if rollout.steps else ""
        weight = (
            f", weight {percent(rollout.weight)}"
            if rollout.strategy == RolloutStrategy.CANARY and rollout.step
            else ""
        )
        self.stdout.write(
            f"{rollout.reference} {what}: {rollout.state} {where}{weight} (revision {rollout.revision})".replace(
                "  ", " "
            )
        )

    def do_start(self, o: dict[str, Any]) -> None:
        change = reviews_selectors.change_by_reference_unscoped(o["change"])
        steps: list[Any] | None = None
        if o["wave"]:
            steps = [[s.strip() for s in wave.split(",") if s.strip()] for wave in o["wave"]]
        elif o["steps"]:
            steps = canary_steps(o["steps"])
        cohort = [s.strip() for s in o["cohort"].split(",") if s.strip()] if o["cohort"] else None
        actor = self._actor(o)
        rollout = services.rollout_create(
            change=change,
            actor=actor,
            strategy=o["strategy"],
            steps=steps,
            target=o["target"],
            cohort=cohort,
            flag_key=o["flag_key"],
            flag_expires_at=moment(o["flag_expires"]) if o["flag_expires"] else None,
            reason=o["reason"],
        )
        if not o["draft"]:
            rollout = services.rollout_start(
                rollout=rollout, actor=actor, revision=rollout.revision, reason=o["reason"]
            )
        self._say(rollout, f"of {change.reference} ({rollout.strategy}) created")

    def do_status(self, o: dict[str, Any]) -> None:
        if o["id"] is None:
            active = Rollout.objects.filter(
                state__in=[RolloutState.PROGRESSING, RolloutState.PAUSED]
            ).select_related("tenant", "change")
            self._rows(active)
            return
        rollout = selectors.rollout_by_number_unscoped(o["id"])
        out = self.stdout.write
        out(
            f"{rollout.reference} [{rollout.state}] {rollout.strategy} of {rollout.change.reference}"
            f" in {rollout.tenant.slug}, revision {rollout.revision}"
        )
        if rollout.strategy == RolloutStrategy.CANARY:
            steps = " -> ".join(
                f"[{percent(w)}]" if n == rollout.step else percent(w)
                for n, w in enumerate(rollout.steps, start=1)
            )
            out(f"  steps {steps}; weight now {percent(rollout.weight)}; target {rollout.target}")
        elif rollout.strategy == RolloutStrategy.TENANT:
            for n, wave in enumerate(rollout.steps, start=1):
                mark = " <- now" if n == rollout.step else ""
                out(f"  wave {n}: {', '.join(wave)}{mark}")
        elif rollout.strategy == RolloutStrategy.FLAG:
            expires = (
                f", expires {rollout.flag_expires_at:%Y-%m-%d %H:%M}"
                if rollout.flag_expires_at
                else ""
            )
            out(f"  flag {rollout.flag_key} {'on' if rollout.flag_on else 'off'}{expires}")
        for target in selectors.targets_of(rollout):
            base = target.baseline.version if target.baseline else "-"
            out(f"  {target.slot}: {base} -> {target.candidate.version}")
        latest = rollout.manifests.order_by("-number").first()
        if latest is not None:
            out(f"  manifest {latest.number}: {latest.status} ({latest.sha256[:16]})")
        for move in selectors.moves_of(rollout).select_related(
            "slot__application", "tenant", "actor", "from_version", "to_version"
        ):
            who = move.actor.username if move.actor else "system"
            where = f" {move.slot}" if move.slot_id else ""
            tenant = f" for {move.tenant.slug}" if move.tenant else ""
            old = move.from_version.version if move.from_version else "-"
            new = move.to_version.version if move.to_version else "-"
            weight = f" {percent(move.weight)}" if move.weight is not None else ""
            out(
                f"  {move.created_at:%Y-%m-%d %H:%M} {move.kind}{weight}{where}{tenant}: "
                f"{old} -> {new} by {who}: {move.reason}"
            )
        if rollout.finished_at:
            who = rollout.finished_by.username if rollout.finished_by else "system"
            out(
                f"  finished {rollout.finished_at:%Y-%m-%d %H:%M} by {who}: {rollout.finish_reason}"
            )

    def _rows(self, rollouts: Any) -> None:
        for r in rollouts:
            where = f"step {r.step}/{len(r.steps)}" if r.steps else "-"
            weight = percent(r.weight) if r.strategy == RolloutStrategy.CANARY else "-"
            self.stdout.write(
                f"{r.reference}\t{r.tenant.slug}\t{r.state}\t{r.strategy}\t{where}\t{weight}"
                f"\t{r.change.reference}"
            )

    def do_list(self, o: dict[str, Any]) -> None:
        qs = Rollout.objects.select_related("tenant", "change").order_by("-number")
        if o["state"]:
            qs = qs.filter(state=o["state"])
        if o["tenant"]:
            qs = qs.filter(tenant=tenant_by_slug(o["tenant"]))
        if o["application"]:
            from rollouts.management.commands.runtime import application_unscoped

            qs = qs.filter(targets__slot__application=application_unscoped(o["application"]))
            qs = qs.distinct()
        self._rows(qs)

    def _move(self, o: dict[str, Any], name: str) -> None:
        rollout = selectors.rollout_by_number_unscoped(o["id"])
        service = getattr(services, f"rollout_{name}")
        done = service(
            rollout=rollout, actor=self._actor(o), revision=o["revision"], reason=o["reason"]
        )
        self._say(done, DONE[name])

    def do_advance(self, o: dict[str, Any]) -> None:
        self._move(o, "advance")

    def do_pause(self, o: dict[str, Any]) -> None:
        self._move(o, "pause")

    def do_resume(self, o: dict[str, Any]) -> None:
        self._move(o, "resume")

    def do_abort(self, o: dict[str, Any]) -> None:
        self._move(o, "abort")

    def do_rollback(self, o: dict[str, Any]) -> None:
        self._move(o, "rollback")

    def do_flag(self, o: dict[str, Any]) -> None:
        rollout = selectors.rollout_by_number_unscoped(o["id"])
        done = services.rollout_flag_set(
            rollout=rollout, on=o["state"] == "on", actor=self._actor(o), reason=o["reason"]
        )
        self._say(done, f"flag {done.flag_key} {o['state']}")
