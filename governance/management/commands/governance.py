"""``manage.py governance waivers|waiver|deprecate|retire|sweep``: waivers, version lifecycle, the sweep.

The same services as the pages and the API. Every change is made as a person
(``--as USERNAME``), so the services check that person's roles; ``sweep`` runs as the
system, as Celery beat does. A broken rule is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.selectors import tenant_by_slug, user_by_username
from governance.kernel.commands import ActionCommand
from governance.kernel.errors import DomainError
from governance.sweep import governance_sweep
from registry import selectors as registry_selectors
from registry import services as registry_services
from registry.models import Artifact
from reviews.choices import CheckKind
from reviews.selectors import change_by_reference_unscoped
from reviews.waivers.api.serializers import WaiverSerializer
from reviews.waivers.choices import WaiverState
from reviews.waivers.models import Waiver
from reviews.waivers.selectors import (
    WaiverQuery,
    all_waivers,
    waiver_by_reference_unscoped,
    waivers_matching,
)
from reviews.waivers.services import (
    waiver_countersign,
    waiver_grant,
    waiver_renew,
    waiver_revoke,
)


def _when(text: str, field: str) -> datetime:
    """``YYYY-MM-DD`` (00:00 UTC that day) or an ISO 8601 date and time (UTC when no offset)."""
    value = (text or "").strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    if day is not None:
        return datetime.combine(day, time.min, tzinfo=UTC)
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None:
        raise DomainError(
            f"'{text}' is not a date (YYYY-MM-DD) or an ISO 8601 date and time.", field=field
        )
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _as(field: str, lookup: Any, *args: Any) -> Any:
    """Run a lookup so that its failure names the option it came from."""
    try:
        return lookup(*args)
    except DomainError as exc:
        raise DomainError(exc.message, field=field) from exc


def _artifact(text: str) -> Artifact:
    ref = registry_selectors.parse(text)
    if ref.class_slug is None or ref.tenant is None or ref.version is not None:
        raise DomainError(f"Name the artifact as CLASS/TENANT/SLUG, not '{text}'.")
    return registry_selectors.artifact_by_path_unscoped(ref.class_slug, ref.tenant, ref.slug)


def _scope(waiver: Waiver) -> str:
    if waiver.change_id is not None and waiver.change is not None:
        return waiver.change.reference
    return ", ".join(sorted(a.path for a in waiver.artifacts.all())) or "-"


class Command(ActionCommand):
    help = "Waivers (list, grant, renew, revoke, countersign), deprecation, retirement, the sweep."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        p = sub.add_parser("waivers", help="Waivers by state, expiring soon first.")
        p.add_argument("--tenant", default=None)
        p.add_argument("--expiring-within", type=int, default=None, metavar="DAYS")
        p.add_argument("--state", default=None, choices=WaiverState.values)
        p.add_argument("--check", default=None, choices=CheckKind.values)
        p.add_argument("--json", action="store_true", help="the API's JSON instead of a table")

        p = sub.add_parser("waiver", help="Grant, renew, revoke or countersign a waiver.")
        actions = p.add_subparsers(dest="waiver_action", required=True, metavar="WAIVER_ACTION")
        g = actions.add_parser("grant", help="Grant a waiver (administrators).")
        g.add_argument("--tenant", required=True)
        g.add_argument("--check", required=True, choices=CheckKind.values)
        g.add_argument("--metric", default="", help="change_gates only: waive this metric")
        scope = g.add_mutually_exclusive_group(required=True)
        scope.add_argument("--change", default=None, metavar="CR-YYYY-NNNN")
        scope.add_argument(
            "--artifact", dest="artifacts", action="append", metavar="CLASS/TENANT/SLUG"
        )
        g.add_argument("--owner", required=True, metavar="USERNAME")
        g.add_argument("--justification", required=True)
        g.add_argument("--mitigation", required=True)
        g.add_argument("--expires", required=True, metavar="YYYY-MM-DD")
        g.add_argument("--link", dest="links", action="append", default=[], metavar="URL")
        g.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        r = actions.add_parser("renew", help="Renew: a new waiver linked to this one.")
        r.add_argument("ref", metavar="WV-YYYY-NNNN")
        r.add_argument("--expires", required=True, metavar="YYYY-MM-DD")
        r.add_argument("--justification", default=None)
        r.add_argument("--mitigation", default=None)
        r.add_argument("--link", dest="links", action="append", default=None, metavar="URL")
        r.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        v = actions.add_parser("revoke", help="End a waiver now.")
        v.add_argument("ref", metavar="WV-YYYY-NNNN")
        v.add_argument("--reason", required=True)
        v.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        c = actions.add_parser("countersign", help="A security officer agrees to a waiver.")
        c.add_argument("ref", metavar="WV-YYYY-NNNN")
        c.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")

        p = sub.add_parser("deprecate", help="Deprecate a version in favour of a replacement.")
        p.add_argument("ref", metavar="CLASS/TENANT/SLUG/VERSION")
        p.add_argument(
            "--replacement", required=True, metavar="REF", help="a version number or a reference"
        )
        p.add_argument("--remove-after", required=True, type=int, metavar="DAYS")
        p.add_argument("--reason", required=True)
        p.add_argument("--override-reason", default="")
        p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")

        p = sub.add_parser("retire", help="Move a version to simulation-only.")
        p.add_argument("ref", metavar="CLASS/TENANT/SLUG/VERSION")
        p.add_argument("--rationale", required=True)
        p.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")

        p = sub.add_parser(
            "sweep", help="Waiver alerts, due removals and post-mortem reminders, now."
        )
        p.add_argument("--now", default=None, metavar="ISO", help="the moment to sweep at")

    def _actor(self, o: dict[str, Any]) -> Any:
        return _as("as", user_by_username, o["as_user"])

    # --- waivers ----------------------------------------------------------------------------

    def do_waivers(self, o: dict[str, Any]) -> None:
        within = o["expiring_within"]
        if within is not None and within < 0:
            raise DomainError("Give a number of days, 0 or more.", field="expiring_within")
        tenant = tenant_by_slug(o["tenant"]).slug if o["tenant"] else None
        now = timezone.now()
        rows = list(
            waivers_matching(
                all_waivers(),
                now,
                WaiverQuery(
                    state=o["state"], tenant=tenant, check=o["check"], expiring_within=within
                ),
            )
        )
        if o["json"]:
            data = WaiverSerializer(rows, many=True, context={"now": now}).data
            self.stdout.write(json.dumps(data, indent=2))
            return
        if not rows:
            self.stdout.write("No waivers.")
            return
        table = [("REFERENCE", "STATE", "CHECK", "SCOPE", "OWNER", "EXPIRES")]
        for w in rows:
            check = w.check_kind + (f":{w.metric}" if w.metric else "")
            expires = f"{w.expires_at:%Y-%m-%d %H:%M}"
            state = str(getattr(w, "state", "") or w.state_at(now).value)
            table.append((w.reference, state, check, _scope(w), w.owner.username, expires))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        for row in table:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[-1]]))

    def do_waiver(self, o: dict[str, Any]) -> None:
        getattr(self, f"_waiver_{o['waiver_action']}")(o)

    def _waiver_grant(self, o: dict[str, Any]) -> None:
        tenant = tenant_by_slug(o["tenant"])
        actor = self._actor(o)
        change = _as("change", change_by_reference_unscoped, o["change"]) if o["change"] else None
        artifacts = [_as("artifact", _artifact, text) for text in o["artifacts"] or []]
        waiver = waiver_grant(
            tenant=tenant,
            actor=actor,
            check_kind=o["check"],
            metric=o["metric"],
            change=change,
            artifacts=artifacts,
            owner=_as("owner", user_by_username, o["owner"]),
            justification=o["justification"],
            mitigation=o["mitigation"],
            advisory_links=o["links"],
            expires_at=_when(o["expires"], "expires"),
        )
        self._report(waiver, "granted")

    def _waiver_renew(self, o: dict[str, Any]) -> None:
        old = waiver_by_reference_unscoped(o["ref"])
        renewal = waiver_renew(
            waiver=old,
            actor=self._actor(o),
            expires_at=_when(o["expires"], "expires"),
            justification=o["justification"],
            mitigation=o["mitigation"],
            advisory_links=o["links"],
        )
        self._report(renewal, f"renews {old.reference}")

    def _waiver_revoke(self, o: dict[str, Any]) -> None:
        waiver = waiver_revoke(
            waiver=waiver_by_reference_unscoped(o["ref"]), actor=self._actor(o), reason=o["reason"]
        )
        self._report(waiver, "revoked")

    def _waiver_countersign(self, o: dict[str, Any]) -> None:
        actor = self._actor(o)
        waiver = waiver_countersign(waiver=waiver_by_reference_unscoped(o["ref"]), actor=actor)
        self._report(waiver, f"countersigned by {actor.username}")

    def _report(self, waiver: Waiver, what: str) -> None:
        state = waiver.state_at(timezone.now())
        self.stdout.write(
            f"{waiver.reference} {what}: {waiver.check_kind} on {_scope(waiver)}, "
            f"owner {waiver.owner.username}, expires {waiver.expires_at:%Y-%m-%d %H:%M} UTC; "
            f"now {state.value}"
            + (" (needs a security officer's countersignature)" if state == "pending" else "")
        )

    # --- versions ---------------------------------------------------------------------------

    def do_deprecate(self, o: dict[str, Any]) -> None:
        version = registry_selectors.version_by_reference_unscoped(o["ref"])
        replacement = o["replacement"].strip()
        if replacement and not any(mark in replacement for mark in "/@:"):
            replacement = f"{version.artifact.path}/{replacement}"  # a version of this artifact
        deprecation = registry_services.version_deprecate(
            version=version,
            replacement=replacement,
            reason=o["reason"],
            remove_after_days=o["remove_after"],
            override_reason=o["override_reason"],
            actor=self._actor(o),
        )
        self.stdout.write(
            f"{version.path} deprecated; use {deprecation.replacement.pinned}; "
            f"removed from resolution after {deprecation.remove_after:%Y-%m-%d %H:%M} UTC"
        )

    def do_retire(self, o: dict[str, Any]) -> None:
        version = registry_selectors.version_by_reference_unscoped(o["ref"])
        retirement = registry_services.version_retire(
            version=version, rationale=o["rationale"], actor=self._actor(o)
        )
        self.stdout.write(
            f"{version.path} retired (simulation-only); its evidence is kept until "
            f"{retirement.retain_until:%Y-%m-%d}"
        )

    # --- the sweep --------------------------------------------------------------------------

    def do_sweep(self, o: dict[str, Any]) -> None:
        now = _when(o["now"], "now") if o["now"] else None
        counts = governance_sweep(now=now)
        for name, count in counts.items():
            self.stdout.write(f"{name.replace('_', ' ')}: {count}")
