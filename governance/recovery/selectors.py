"""Reading recovery runs: the latest of each kind, per rehearsal subject, and how fresh each
proof is (``recovery_status``: the readiness dashboard, the home page, /metrics and the sweep);
the slot a rehearsal names (``slot_by_label``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from governance.kernel.errors import DomainError, NotFound
from governance.recovery.models import RecoveryRun
from rollouts.models import Slot


def latest_run(
    kind: str, *, subject: str | None = None, passed: bool = False
) -> RecoveryRun | None:
    """The newest run of ``kind`` (optionally for one subject, optionally only a passed one)."""
    runs = RecoveryRun.objects.filter(kind=kind)
    if subject is not None:
        runs = runs.filter(subject=subject)
    if passed:
        runs = runs.filter(outcome=RecoveryRun.Outcome.PASSED)
    return runs.order_by("-finished_at", "-id").first()


def latest_rehearsals() -> list[RecoveryRun]:
    """The newest rehearsal of every subject (slot), by subject."""
    seen: dict[str, RecoveryRun] = {}
    for run in RecoveryRun.objects.filter(kind=RecoveryRun.Kind.REHEARSAL).order_by(
        "subject", "-finished_at", "-id"
    ):
        seen.setdefault(run.subject, run)
    return list(seen.values())


@dataclass(frozen=True)
class Proof:
    """How fresh one kind of recovery proof is: the backups, the drills, or one slot's rehearsals.

    ``last`` is the newest run (passed or failed); ``last_passed`` the newest that passed, which
    is what freshness is measured from. No passed run at all counts as stale.
    """

    kind: str
    subject: str
    last: RecoveryRun | None
    last_passed: RecoveryRun | None
    limit: timedelta
    now: datetime

    @property
    def label(self) -> str:
        name = str(RecoveryRun.Kind(self.kind).label)
        return f"{name} of {self.subject}" if self.subject else name

    @property
    def age(self) -> timedelta | None:
        """Time since the newest passed run finished (None: none ever passed)."""
        return None if self.last_passed is None else self.now - self.last_passed.finished_at

    @property
    def last_age(self) -> timedelta | None:
        """Time since the newest run finished, passed or failed."""
        return None if self.last is None else self.now - self.last.finished_at

    @property
    def stale(self) -> bool:
        age = self.age
        return age is None or age > self.limit

    @property
    def failing(self) -> bool:
        """The newest run failed."""
        return self.last is not None and self.last.outcome == RecoveryRun.Outcome.FAILED

    @property
    def episode(self) -> str:
        """Names the staleness episode: it changes only when a newer run passes."""
        if self.last_passed is not None:
            return f"{self.kind}:{self.last_passed.pk}"
        if not self.subject:
            return f"{self.kind}:never"
        digest = hashlib.sha256(self.subject.encode()).hexdigest()[:16]
        return f"{self.kind}:never:{digest}"


@dataclass(frozen=True)
class RecoveryStatus:
    """The freshness of every recovery proof at one moment (five queries in all)."""

    now: datetime
    backup: Proof
    drill: Proof
    rehearsals: list[Proof]

    @property
    def proofs(self) -> list[Proof]:
        return [self.backup, self.drill, *self.rehearsals]

    @property
    def stale(self) -> list[Proof]:
        return [p for p in self.proofs if p.stale]


def _with_version(runs: QuerySet[RecoveryRun]) -> QuerySet[RecoveryRun]:
    return runs.select_related(
        "version__artifact__artifact_class", "version__artifact__tenant"
    ).order_by("-finished_at", "-id")


def _proof(kind: str, limit: timedelta, now: datetime) -> Proof:
    runs = _with_version(RecoveryRun.objects.filter(kind=kind))
    return Proof(
        kind=kind,
        subject="",
        last=runs.first(),
        last_passed=runs.filter(outcome=RecoveryRun.Outcome.PASSED).first(),
        limit=limit,
        now=now,
    )


def recovery_status(now: datetime | None = None) -> RecoveryStatus:
    """The newest backup, drill and rehearsal of each slot, each judged against its staleness
    limit (BACKUP_STALE_HOURS, DRILL_STALE_DAYS, REHEARSAL_STALE_DAYS); five queries."""
    now = now or timezone.now()
    rehearsal_limit = timedelta(days=settings.REHEARSAL_STALE_DAYS)
    newest: dict[str, RecoveryRun] = {}
    newest_passed: dict[str, RecoveryRun] = {}
    for run in _with_version(RecoveryRun.objects.filter(kind=RecoveryRun.Kind.REHEARSAL)).order_by(
        "subject", "-finished_at", "-id"
    ):
        newest.setdefault(run.subject, run)
        if run.outcome == RecoveryRun.Outcome.PASSED:
            newest_passed.setdefault(run.subject, run)
    return RecoveryStatus(
        now=now,
        backup=_proof(RecoveryRun.Kind.BACKUP, timedelta(hours=settings.BACKUP_STALE_HOURS), now),
        drill=_proof(RecoveryRun.Kind.DRILL, timedelta(days=settings.DRILL_STALE_DAYS), now),
        rehearsals=[
            Proof(
                kind=RecoveryRun.Kind.REHEARSAL,
                subject=subject,
                last=run,
                last_passed=newest_passed.get(subject),
                limit=rehearsal_limit,
                now=now,
            )
            for subject, run in newest.items()
        ],
    )


def slot_by_label(label: str) -> Slot:
    """``application.slot`` (as ``rollouts`` names slots): the slot, or NotFound naming ``slot``."""
    application, dot, name = label.strip().partition(".")
    if not dot or not application or not name:
        raise DomainError(f"'{label}' is not a slot: use APPLICATION.SLOT.", field="slot")
    found = (
        Slot.objects.select_related(
            "application__tenant",
            "artifact__artifact_class",
            "artifact__tenant",
            "artifact__active_version",
        )
        .filter(application__slug=application, name=name)
        .first()
    )
    if found is None:
        raise NotFound(f"No slot '{name}' in application '{application}'.", field="slot")
    return found
