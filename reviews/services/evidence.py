"""Checks and evidence: run and re-run checks, attach evaluation reports, rebind after what approvals cover changed."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from governance.kernel.errors import Conflict, DomainError
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.services import canonical
from governance.kernel.inputs import clean_text, storable_json
from governance.kernel.notifications import notification_resolve
from registry.choices import Stage
from registry.models import Version
from reviews import checks as check_catalog
from reviews import permissions, selectors
from reviews.choices import EDITABLE_STATES, OPEN_STATES, ChangeStatus, CheckStatus
from reviews.models import ChangeRequest, CheckRun, EvaluationReport
from reviews.services.common import (
    lock_change,
    lock_changes_and_artifacts,
    open_changes_proposing,
    record_event,
    rehash,
    resolve_version,
    review_stage_set,
    transition,
    void_approvals,
)
from reviews.services.notifications import (
    check_failed_notify,
    check_passed_resolve,
    promote_subject,
    review_requests_sync,
)


def start_checks(change: ChangeRequest, kinds: Sequence[str]) -> list[CheckRun]:
    from reviews import tasks

    runs = []
    for kind in kinds:
        last = (
            CheckRun.objects.filter(change=change, kind=kind, revision=change.revision).aggregate(
                n=Max("attempt")
            )["n"]
            or 0
        )
        run = CheckRun.objects.create(
            change=change, kind=kind, revision=change.revision, attempt=last + 1
        )
        runs.append(run)
        tasks.run_check.delay_on_commit(str(run.pk))  # type: ignore[attr-defined]
    return runs


def notify_requirements(change: ChangeRequest) -> None:
    """Tell the people who can fill a missing slot that the change waits for them (and
    resolve the request for those who no longer can)."""
    review_requests_sync(change)


@transaction.atomic
def check_rerun(*, change: ChangeRequest, kind: str | None, actor: User | None) -> list[CheckRun]:
    """Run one required check (or all) again on the current revision, as a new attempt."""
    change = lock_change(change)
    if change.status not in OPEN_STATES:
        raise Conflict("Checks run on changes in review or approved.", field="status")
    required = check_catalog.required_checks(change)
    if kind is not None and kind not in required:
        raise DomainError(f"'{kind}' is not a required check of {change.reference}.", field="kind")
    permissions.can_rerun_checks(actor, change).require()
    return start_checks(change, [kind] if kind else required)


@transaction.atomic
def check_execute(*, run: CheckRun) -> CheckRun:
    """Run a check and store its result and log as evidence (called by the worker)."""
    run = CheckRun.objects.select_for_update().select_related("change").get(pk=run.pk)
    if run.status != CheckStatus.PENDING:
        return run  # a retried task: already ran
    change = run.change
    started = timezone.now()
    outcome = check_catalog.run(run.kind, change)
    run.status = outcome.status
    run.summary = outcome.summary[:500]
    run.log = outcome.log
    run.result = outcome.result
    run.started_at = started
    run.finished_at = timezone.now()
    run.save()
    record_event(
        EventKind.CHECK_COMPLETED,
        change,
        None,
        check=run.kind,
        revision=run.revision,
        attempt=run.attempt,
        status=run.status,
        summary=run.summary,
        log_sha256=hashlib.sha256(run.log.encode()).hexdigest(),
    )
    current = run.revision == change.revision
    if current and run.status == CheckStatus.PASSED:
        check_passed_resolve(change, run)
    if current and selectors.check_summary(change).all_passed:
        for item in selectors.items_of(change):
            review_stage_set(
                version=item.proposed, stage=Stage.EVALUATED, actor=None, change=change
            )
            if change.status == ChangeStatus.APPROVED:
                review_stage_set(
                    version=item.proposed, stage=Stage.APPROVED, actor=None, change=change
                )
    elif current and run.status != CheckStatus.PASSED:
        check_failed_notify(change, run)
    return run


def _require_report_shape(
    metrics: Any, bias: Any, safety: Any, test_run_ids: Sequence[Any]
) -> None:
    """A report's parts have the types they need: numbers for metrics, objects, strings."""
    if not isinstance(metrics, dict) or not metrics:
        raise DomainError("Report at least one metric.", field="metrics")
    for name, value in metrics.items():
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise DomainError(f"Metric '{name}' must be a number.", field="metrics")
        if not math.isfinite(value):
            raise DomainError(f"Metric '{name}' must be a finite number.", field="metrics")
    for field, value in (("bias", bias), ("safety", safety)):
        if value is not None and not isinstance(value, dict):
            raise DomainError(f"'{field}' must be an object.", field=field)
    if not all(isinstance(t, str) for t in test_run_ids):
        raise DomainError("Test run ids must be strings.", field="test_run_ids")


@transaction.atomic
def evidence_attach(
    *,
    change: ChangeRequest,
    actor: User | None,
    version: Version | str,
    metrics: dict[str, Any],
    bias: dict[str, Any] | None = None,
    safety: dict[str, Any] | None = None,
    seed: str = "",
    rng: str = "",
    test_run_ids: Sequence[str] = (),
    notes: str = "",
    simulation: bool = False,
) -> EvaluationReport:
    """Attach an evaluation report to a proposed version (CI does this through the API).

    The report is part of what approvals cover: attaching one after approval voids them,
    and the checks that read evidence run again.
    """
    permissions.can_attach_evidence(actor, change).require()
    target = resolve_version(change.tenant, version, field="version")
    # Evidence belongs to the version: the other open changes proposing it are rebound too.
    # Lock every change this writes at once, by primary key, so two attaches never cross.
    locked, _ = lock_changes_and_artifacts({change.pk, *open_changes_proposing(target)}, set())
    change = locked[change.pk]
    if change.status not in EDITABLE_STATES:
        raise Conflict(
            f"{change.reference} is {change.get_status_display().lower()}; evidence is closed.",
            field="status",
        )
    if not change.items.filter(proposed=target).exists():
        raise DomainError(f"{target.path} is not proposed in {change.reference}.", field="version")
    _require_report_shape(metrics, bias, safety, test_run_ids)
    seed = clean_text(seed, "seed", required=False, limit=100)
    rng = clean_text(rng, "rng", required=False, limit=200)
    notes = clean_text(notes, "notes", required=False, limit=10000)
    for field, value in (
        ("metrics", metrics),
        ("bias", bias),
        ("safety", safety),
        ("seed", seed),
        ("rng", rng),
        ("test_run_ids", list(test_run_ids)),
        ("notes", notes),
    ):
        storable_json(value, field)
    body: dict[str, Any] = {
        "version": target.pinned,
        "metrics": metrics,
        "bias": bias or {},
        "safety": safety or {},
        "seed": seed,
        "rng": rng,
        "test_run_ids": list(test_run_ids),
        "notes": notes,
    }
    if simulation:  # part of the hashed form only when set: older reports keep their hashes
        body["simulation"] = True
    digest = hashlib.sha256(canonical(body)).hexdigest()
    report = EvaluationReport.objects.create(
        version=target,
        change=change,
        metrics=metrics,
        bias=bias or {},
        safety=safety or {},
        seed=seed,
        rng=rng,
        test_run_ids=list(test_run_ids),
        notes=notes,
        simulation=simulation,
        sha256=digest,
        submitted_by=actor,
    )
    before = rehash(change)
    record_event(
        EventKind.EVIDENCE_ATTACHED,
        change,
        actor,
        version=target.pinned,
        report_sha256=digest,
        metrics=metrics,
        test_run_ids=list(test_run_ids),
        simulation=simulation,
    )
    rebind(change, actor, before, "new evidence was attached")
    # Other open changes proposing the version were reviewed against the old reports, so
    # their approvals are voided and their checks re-run too. (Locked above; one that
    # started proposing it since is locked now, after the others: that is rare.)
    late = set(open_changes_proposing(target)) - set(locked)
    if late:
        locked.update(lock_changes_and_artifacts(late, set())[0])
    others = [
        other
        for pk, other in sorted(locked.items())
        if pk != change.pk and other.status in EDITABLE_STATES
    ]
    for other in others:
        before_other = rehash(other)
        rebind(other, actor, before_other, f"new evidence for {target.path} was attached")
    # The evidence an Evaluated criterion missed may be here now. Checks that read evidence
    # run again and move the version when they pass (check_execute); a change none of whose
    # checks read it moves the version here, as a finished check would.
    if change.status in OPEN_STATES and selectors.check_summary(change).all_passed:
        review_stage_set(version=target, stage=Stage.EVALUATED, actor=actor, change=change)
        if change.status == ChangeStatus.APPROVED:
            review_stage_set(version=target, stage=Stage.APPROVED, actor=actor, change=change)
    return report


def rebind(change: ChangeRequest, actor: User | None, before: str, reason: str) -> None:
    """After what approvals cover changed: void them, reopen review, re-run evidence checks."""
    if before != change.binding_sha256:
        voided = void_approvals(change, actor, reason)
        if voided and change.status == ChangeStatus.APPROVED:
            transition(change, ChangeStatus.IN_REVIEW)
            change.decided_at = None
            change.save(update_fields=["status", "decided_at"])
            notification_resolve(
                subject=promote_subject(change),
                reason=f"Its approvals were voided ({reason}); it is in review again.",
            )
    if change.status in OPEN_STATES:
        required = check_catalog.required_checks(change)
        start_checks(change, [k for k in check_catalog.EVIDENCE_CHECKS if k in required])
        notify_requirements(change)
