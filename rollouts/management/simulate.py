"""``manage.py rollouts simulate RO-n``: watch a canary decide, with telemetry sent through the real ingest API.

A service token with ``telemetry:write`` is created for the tenant for the run (and revoked
after, whatever happens). Each round sends one batch (a canary row and a stable row) to
``POST /api/v1/telemetry/`` through Django's test client (the whole API stack: token
authentication, scope, validation, the insert), then runs one controller iteration for the
rollout (``rollout_iterate``: the analysis, its transition, the manifest and the note).

Time: the ingest accepts buckets up to ``TELEMETRY_MAX_FUTURE_SECONDS`` ahead and the
analysis only counts buckets that start after the step's pointer move, so the run uses a
fake clock for the controller that starts at the first whole minute after the move and
moves ``--seconds-per-round`` (20 s) a round; rounds are capped so the simulated clock stays
within the ingest's future limit (about twelve rounds, each carrying ``--requests`` /
rounds canary requests). Minimum step times of real minutes cannot pass in that window, so
a healthy step advances only with ``--step-min-seconds`` (overrides
``ROLLOUT_STEP_MIN_SECONDS`` for the run), and the run stops at the advance: the next step's
move is stamped with the real clock, behind the buckets already sent, so that step can be
simulated once the real clock has passed them (the command says how long). A regression
rolls back as soon as the evidence is in, whatever the time. The ingest's "iterate soon" task is not queued during the run
(the command iterates itself).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from accounts import services as accounts
from accounts.choices import TokenScope
from governance.kernel.errors import DomainError
from rollouts import analysis, telemetry_services
from rollouts.choices import BUCKETS, PointerKind, RolloutState, RolloutStrategy
from rollouts.controller import rollout_iterate
from rollouts.models import IterationNote, ManifestVersion, PointerMove, Rollout


def _host() -> str:
    for host in settings.ALLOWED_HOSTS:
        if host and host != "*" and not host.startswith("."):
            return str(host)
    return "testserver"


def simulate(  # noqa: PLR0913 - keyword-only: the `rollouts simulate` command's options
    rollout: Rollout,
    *,
    baseline_error_rate: float,
    canary_error_rate: float,
    requests: int,
    seed: int = 0,
    seconds_per_round: int = 20,
    step_min_seconds: int | None = None,
    say: Callable[[str], None] = print,
) -> Rollout:
    """Drive ``requests`` canary requests (and the stable arm's share) into ``rollout``."""
    if rollout.strategy != RolloutStrategy.CANARY or rollout.state != RolloutState.PROGRESSING:
        raise DomainError(
            f"{rollout.reference} is a {rollout.state} {rollout.strategy} rollout; simulate "
            "needs a progressing canary.",
            field="rollout",
        )
    for name, rate in (("baseline_error_rate", baseline_error_rate),
                       ("canary_error_rate", canary_error_rate)):  # fmt: skip
        if not 0.0 <= rate <= 1.0:
            raise DomainError(f"{name} must be between 0 and 1.", field=name)
    if requests <= 0:
        raise DomainError("requests must be positive.", field="requests")
    if seconds_per_round < 16:
        raise DomainError("seconds_per_round must be at least 16.", field="seconds_per_round")
    target = rollout.targets.select_related("slot__application", "baseline", "candidate").first()
    if target is None or target.baseline is None:
        raise DomainError(f"{rollout.reference} has no baseline to compare with.", field="rollout")
    token, raw = accounts.service_token_create(
        tenant=rollout.tenant,
        name=f"simulate {rollout.reference} {uuid.uuid4().hex[:6]}",
        scopes=[TokenScope.TELEMETRY_WRITE],
        actor=None,
    )
    overrides: dict[str, Any] = {}
    if step_min_seconds is not None:
        overrides["ROLLOUT_STEP_MIN_SECONDS"] = step_min_seconds
    try:
        with (
            override_settings(**overrides),
            mock.patch.object(telemetry_services, "_queue_controller", return_value=None),
        ):
            plan = _Plan(baseline_error_rate, canary_error_rate, requests, seed, seconds_per_round)
            return _run(rollout, target, raw, plan, say)
    finally:
        accounts.service_token_revoke(token=token, actor=None, reason="simulation finished")
        say(f"service token {token.prefix}… revoked")


@dataclass(frozen=True)
class _Plan:
    """What a simulation sends: each arm's error rate, how many requests, the seed, the pace."""

    p_stable: float
    p_canary: float
    requests: int
    seed: int
    seconds_per_round: int


def _run(
    rollout: Rollout, target: Any, raw: str, plan: _Plan, say: Callable[[str], None]
) -> Rollout:
    p_stable, p_canary, requests, seed, seconds_per_round = (
        plan.p_stable,
        plan.p_canary,
        plan.requests,
        plan.seed,
        plan.seconds_per_round,
    )
    rng = random.Random(seed)
    client = Client(HTTP_HOST=_host(), HTTP_AUTHORIZATION=f"Bearer {raw}")
    width = timedelta(seconds=settings.TELEMETRY_BUCKET_SECONDS)
    horizon = settings.TELEMETRY_MAX_FUTURE_SECONDS - 30

    def step_start() -> datetime:
        move = PointerMove.objects.filter(rollout=rollout, kind=PointerKind.CANARY).latest("id")
        return move.created_at

    def first_bucket(at: datetime) -> datetime:
        epoch = at.timestamp() // width.total_seconds() * width.total_seconds()
        return datetime.fromtimestamp(epoch, tz=at.tzinfo) + width

    clock = origin = first_bucket(step_start())
    rounds = max(1, int((timezone.now() + timedelta(seconds=horizon) - clock).total_seconds()
                        // seconds_per_round))  # fmt: skip
    per_round = -(-requests // rounds)
    rho = rollout.weight / BUCKETS
    say(f"{rollout.reference}: step {rollout.step} at {rho:.1%}, {requests} canary requests in "
        f"{rounds} rounds of {seconds_per_round} s; error rates stable {p_stable:.2%}, canary "
        f"{p_canary:.2%}; seed {seed}")  # fmt: skip
    sent = 0
    step = rollout.step
    assert rho > 0
    for n in range(1, rounds + 1):
        if rollout.state != RolloutState.PROGRESSING or sent >= requests:
            break
        if rollout.step != step:
            # The new step's move is stamped with the real clock, behind this run's fake clock:
            # the buckets already sent would fall in its window. Stop here.
            wait = (clock - timezone.now()).total_seconds() + 60
            say(f"{rollout.reference} advanced to step {rollout.step}; simulate that step in "
                f"{max(0, wait):.0f} s, once the real clock has passed this run's buckets")  # fmt: skip
            break
        canary = min(per_round, requests - sent)
        stable = round(canary * (1 - rho) / rho) if rho < 1 else 0
        bucket = clock.replace(second=0, microsecond=0)
        rows = []
        for arm, version, count, rate in (("canary", target.candidate, canary, p_canary),
                                          ("stable", target.baseline, stable, p_stable)):  # fmt: skip
            if count:
                rows.append({
                    "application": target.slot.application.slug, "slot": target.slot.name,
                    "version": version.version, "rollout": rollout.reference, "arm": arm,
                    "bucket_start": bucket.isoformat(), "requests": count,
                    "errors": analysis.binomial(rng, count, rate),
                })  # fmt: skip
        body = {"batch_id": f"simulate-{rollout.reference}-{seed}-{uuid.uuid4().hex}", "rows": rows}
        resp = client.post("/api/v1/telemetry/", body, content_type="application/json", secure=True)
        if resp.status_code not in (200, 201):
            raise DomainError(f"the ingest refused a batch: {resp.status_code} {resp.content!r}",
                              field="telemetry")  # fmt: skip
        sent += canary
        clock += timedelta(seconds=seconds_per_round)
        note = rollout_iterate(rollout=rollout, now=clock)
        rollout.refresh_from_db()
        errors = {r["arm"]: r["errors"] for r in rows}
        say(f"round {n:>2} t+{(clock - origin).total_seconds():>4.0f}s "
            f"canary {sent:>6} (+{canary}, {errors.get('canary', 0)} errors) stable +{stable} "
            f"({errors.get('stable', 0)} errors): {rollout.state}"
            + (f" — {note.reason}" if note is not None else ""))  # fmt: skip
    _summary(rollout, say)
    return rollout


def _summary(rollout: Rollout, say: Callable[[str], None]) -> None:
    last = IterationNote.objects.filter(rollout=rollout).order_by("-number").first()
    say(f"{rollout.reference} is {rollout.state} at step {rollout.step}"
        + (f" ({rollout.finish_reason})" if rollout.finish_reason else ""))  # fmt: skip
    if last is not None:
        say(f"last note #{last.number} [{last.outcome}]: {last.reason}")
    manifest = ManifestVersion.objects.filter(rollout=rollout).order_by("-number").first()
    if manifest is None:
        return
    phases = {p["name"]: p for p in manifest.body["phases"]}
    proof = phases["rollback-proof"]["observations"].get("analysis")
    say(f"manifest v{manifest.number} {manifest.status}; runtime-governance "
        f"{phases['runtime-governance']['status']}, rollback-proof "
        f"{phases['rollback-proof']['status']}")  # fmt: skip
    if proof:
        for test in proof.get("tests", []):
            say(f"  {test['metric']:<22} canary {test['canary']:>5} stable {test['stable']:>6} "
                f"e-value {test['e_value']:<12g} threshold {test['threshold']:g}"
                + ("  FAILED" if test["failed"] else ""))  # fmt: skip
        say(f"  detection -> pointers restored: {proof.get('detection_to_restored_ms')} ms")
