"""Telemetry's state changes: ingest a batch of counters, fold old raw rows into hourly rows.

Telemetry is measurement, not governance state: neither a batch nor a fold appends a
governance event (ingest is the hot path, thousands of rows a minute; the event log records
what people and the controller decide, and the pauses and rollbacks that telemetry leads
to are events of their own; so is a deployment drift episode a batch opens or closes,
``rollouts.drift``). A batch is kept as a ``TelemetryBatch`` row, which is what
makes a retry count once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pgtrigger
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from accounts.authentication import ServicePrincipal
from accounts.choices import TokenScope
from accounts.models import Tenant
from governance.kernel.errors import DomainError, Forbidden, NotFound
from registry.models import Version, VersionUsage
from rollouts.choices import ACTIVE_STATES, Arm, Resolution
from rollouts.drift import Report, drift_observe
from rollouts.models import (
    Application,
    Rollout,
    RolloutTarget,
    Slot,
    TelemetryBatch,
    TelemetryCounter,
)
from rollouts.selectors import servable_versions, slot_serves_tenant
from rollouts.telemetry import COUNT_METRICS, FLOAT_FIELDS, INT_FIELDS, LATENCY_FIELDS
from rollouts.telemetry_selectors import totals_annotations

__all__ = [
    "ROW_FIELDS",
    "IngestResult",
    "telemetry_batches_prune",
    "telemetry_fold",
    "telemetry_fold_due",
    "telemetry_ingest",
]

BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
ROLLOUT_REF_RE = re.compile(r"^(?:RO-)?([1-9][0-9]{0,9})$")

#: The count fields of a row (non-negative integers; all but ``requests`` are <= requests).
ROW_COUNTS: tuple[str, ...] = ("requests", *COUNT_METRICS)
#: Every key a row may carry; any other key refuses the batch (a typo must not count as 0).
ROW_FIELDS: frozenset[str] = frozenset(
    {
        "application",
        "slot",
        "version",
        "rollout",
        "arm",
        "bucket_start",
        *ROW_COUNTS,
        "latency_ms",
        "cost",
        "quality_sum",
        "quality_sumsq",
        "quality_n",
        "snapshot_sequence",
        "manifest_sha256",
    }
)
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_HISTOGRAM_LABELS = tuple(f"latency_ms[{k}]" for k in range(len(LATENCY_FIELDS)))
#: The most a count may be (PostgreSQL bigint; also refuses absurd values early).
MAX_COUNT = 2**62
#: The arms a row of a rollout names.
ARMS = frozenset(Arm.values)


@dataclass(frozen=True)
class IngestResult:
    """What became of a batch: ``accepted`` (rows stored) or ``duplicate`` (stored before)."""

    status: str
    batch_id: str
    rows: int
    requests: int
    rollouts: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "requests": self.requests,
            "rollouts": self.rollouts,
        }


class _Refuse(DomainError):
    """A bad row: the whole batch is refused, naming ``rows[i].<field>``."""


def _where(i: int, name: str) -> str:
    return f"rows[{i}].{name}"


def _count(value: Any, i: int, name: str) -> int:
    if type(value) is int and 0 <= value <= MAX_COUNT:  # the usual case, first
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Refuse("must be a whole number.", field=_where(i, name))
    count: int = value
    if count < 0:
        raise _Refuse(f"must not be negative (got {count}).", field=_where(i, name))
    if count > MAX_COUNT:
        raise _Refuse("is too large.", field=_where(i, name))
    return count


def _real(row: Mapping[str, Any], i: int, name: str) -> float:
    value = row.get(name, 0)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refuse("must be a number.", field=_where(i, name))
    value = float(value)
    if not math.isfinite(value):
        raise _Refuse("must be a finite number.", field=_where(i, name))
    return value


def _text(row: Mapping[str, Any], i: int, name: str, *, required: bool = True) -> str:
    value = row.get(name)
    if value is None or value == "":
        if required:
            raise _Refuse("is required.", field=_where(i, name))
        return ""
    if not isinstance(value, str) or len(value) > 200:
        raise _Refuse("must be a string of at most 200 characters.", field=_where(i, name))
    return value


class _Clock:
    """Parses and aligns bucket starts, remembering each distinct string (batches repeat them)."""

    def __init__(self, now: datetime) -> None:
        self.width = max(1, int(settings.TELEMETRY_BUCKET_SECONDS))
        self.latest = now + timedelta(seconds=settings.TELEMETRY_MAX_FUTURE_SECONDS)
        self.seen: dict[str, datetime] = {}

    def bucket(self, row: Mapping[str, Any], i: int) -> datetime:
        raw = row.get("bucket_start")
        if not isinstance(raw, str):
            raise _Refuse(
                "is required: an ISO 8601 time with a zone, e.g. 2026-01-31T12:00:00Z.",
                field=_where(i, "bucket_start"),
            )
        start = self.seen.get(raw)
        if start is None:
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                raise _Refuse(
                    f"'{raw[:40]}' is not an ISO 8601 time.", field=_where(i, "bucket_start")
                ) from None
            if moment.tzinfo is None:
                raise _Refuse(
                    "needs a time zone (e.g. a trailing Z).", field=_where(i, "bucket_start")
                )
            epoch = int(moment.timestamp())
            start = datetime.fromtimestamp(epoch - epoch % self.width, tz=UTC)
            self.seen[raw] = start
        if start > self.latest:
            raise _Refuse(
                f"{raw[:40]} is more than {settings.TELEMETRY_MAX_FUTURE_SECONDS} s in the future.",
                field=_where(i, "bucket_start"),
            )
        return start


def _parse_histogram(row: dict[str, Any], i: int, parsed: dict[str, Any]) -> None:
    """The latency histogram into ``parsed``: a count per bound, adding up to the requests."""
    requests = parsed["requests"]
    histogram = row.get("latency_ms")
    if histogram is None:
        histogram = [0] * len(LATENCY_FIELDS)
    elif not isinstance(histogram, list) or len(histogram) != len(LATENCY_FIELDS):
        raise _Refuse(
            f"must be a list of {len(LATENCY_FIELDS)} counts (one per bound of "
            "TELEMETRY_LATENCY_BOUNDS_MS, the last for slower ones).",
            field=_where(i, "latency_ms"),
        )
    total = 0
    for name, label, value in zip(LATENCY_FIELDS, _HISTOGRAM_LABELS, histogram, strict=True):
        count = parsed[name] = _count(value, i, label)
        total += count
    if total and total != requests:
        raise _Refuse(
            f"counts {total} requests; the row has {requests} (leave it out, or count each "
            "request once).",
            field=_where(i, "latency_ms"),
        )


def _parse_row(row: Any, i: int, clock: _Clock) -> dict[str, Any]:
    """The shape of one row (its references are checked for the whole batch afterwards)."""
    if not isinstance(row, dict):
        raise _Refuse("must be an object.", field=f"rows[{i}]")
    unknown = row.keys() - ROW_FIELDS
    if unknown:
        name = sorted(unknown)[0]
        raise _Refuse(
            f"is not a telemetry field (known: {', '.join(sorted(ROW_FIELDS))}).",
            field=_where(i, str(name)[:60]),
        )
    parsed: dict[str, Any] = {
        "application": _text(row, i, "application"),
        "slot": _text(row, i, "slot"),
        "version": _text(row, i, "version"),
        "rollout": _text(row, i, "rollout", required=False),
        "arm": _text(row, i, "arm", required=False),
        "bucket_start": clock.bucket(row, i),
    }
    requests = parsed["requests"] = _count(row.get("requests", 0), i, "requests")
    for name in COUNT_METRICS:
        value = parsed[name] = _count(row.get(name, 0), i, name)
        if value > requests:
            raise _Refuse(
                f"{value} {name} is more than the row's {requests} requests.",
                field=_where(i, name),
            )
    _parse_histogram(row, i, parsed)
    for name in FLOAT_FIELDS:
        amount = parsed[name] = _real(row, i, name)
        if amount < 0 and name != "quality_sum":
            raise _Refuse(f"must not be negative (got {amount}).", field=_where(i, name))
    n = parsed["quality_n"] = _count(row.get("quality_n", 0), i, "quality_n")
    if n > requests:
        raise _Refuse(
            f"{n} quality scores is more than the row's {requests} requests.",
            field=_where(i, "quality_n"),
        )
    if n == 0 and (parsed["quality_sum"] or parsed["quality_sumsq"]):
        raise _Refuse("is 0 but quality_sum or quality_sumsq is not.", field=_where(i, "quality_n"))
    parsed["snapshot_sequence"] = _count(row.get("snapshot_sequence", 0), i, "snapshot_sequence")
    parsed["manifest_sha256"] = _sha256(row, i)
    return parsed


def _sha256(row: Mapping[str, Any], i: int) -> str:
    """The optional manifest hash the client ran (64 hex digits; case is ignored)."""
    value = row.get("manifest_sha256")
    if value is None or value == "":
        return ""
    text = value.lower() if isinstance(value, str) else ""
    if not SHA256_RE.match(text):
        raise _Refuse(
            "must be the 64 hex digits of a manifest's SHA-256 (the resolve answer's sha256).",
            field=_where(i, "manifest_sha256"),
        )
    return text


def _tenant_of(principal_or_tenant: ServicePrincipal | Tenant) -> tuple[Tenant, Any]:
    if isinstance(principal_or_tenant, Tenant):
        return principal_or_tenant, None
    principal = principal_or_tenant
    if not principal.has_scope(TokenScope.TELEMETRY_WRITE):
        held = ", ".join(sorted(principal.scopes)) or "none"
        raise Forbidden(
            f"Service token {principal.prefix}… lacks the scope "
            f"'{TokenScope.TELEMETRY_WRITE}' (it holds: {held}).",
            field="scope",
        )
    tenant = Tenant.objects.filter(pk=principal.tenant_id).first()
    if tenant is None:
        raise NotFound("The token's tenant no longer exists.", field="tenant")
    return tenant, principal.token_id


def _rollout_number(ref: str, i: int) -> int:
    match = ROLLOUT_REF_RE.match(ref)
    if match is None:
        raise _Refuse(
            f"'{ref[:40]}' is not a rollout reference (RO-<n>).", field=_where(i, "rollout")
        )
    return int(match.group(1))


@dataclass(frozen=True)
class _Known:
    """What a batch's rows name, read at once for ``tenant``."""

    tenant: Tenant
    apps: dict[str, Application]
    slots: dict[tuple[str, str], Slot]
    versions: dict[tuple[Any, str], Version]
    verdicts: dict[Any, Any]
    rollouts: dict[int, Rollout]
    targets: dict[tuple[Any, Any], RolloutTarget]


def _known(tenant: Tenant, parsed: Sequence[dict[str, Any]]) -> _Known:
    """A fixed number of queries for the whole batch: applications, slots, versions (and
    whether they may have served), rollouts with their targets."""
    app_slugs = {r["application"] for r in parsed}
    apps = {
        a.slug: a for a in Application.objects.filter(slug__in=app_slugs).select_related("tenant")
    }
    slot_names = {r["slot"] for r in parsed}
    slots = {
        (s.application.slug, s.name): s
        for s in Slot.objects.filter(
            application__slug__in=app_slugs, name__in=slot_names
        ).select_related("application__tenant", "artifact__tenant")
    }
    pairs = {
        (slots[k].artifact_id, r["version"])
        for r in parsed
        if (k := (r["application"], r["slot"])) in slots
    }
    artifact_ids = {a for a, _ in pairs}
    versions = {
        (v.artifact_id, v.version): v
        for v in Version.objects.filter(
            artifact_id__in=artifact_ids, version__in={v for _, v in pairs}
        ).select_related("retirement", "deprecation")
    }
    verdicts = servable_versions([v.pk for v in versions.values()])
    numbers = {_rollout_number(r["rollout"], i) for i, r in enumerate(parsed) if r["rollout"]}
    rollouts: dict[int, Rollout] = {}
    targets: dict[tuple[Any, Any], RolloutTarget] = {}
    if numbers:
        rollouts = {r.number: r for r in Rollout.objects.filter(number__in=numbers)}
        for t in RolloutTarget.objects.filter(rollout__number__in=numbers):
            targets[(t.rollout_id, t.slot_id)] = t
    return _Known(tenant, apps, slots, versions, verdicts, rollouts, targets)


def _check_row(known: _Known, i: int, r: dict[str, Any]) -> dict[str, Any]:
    """The ids of row ``i``'s references, or the refusal naming its field."""
    tenant, apps, slots = known.tenant, known.apps, known.slots
    versions, verdicts = known.versions, known.verdicts
    app = apps.get(r["application"])
    if app is None:
        raise _Refuse(f"No application '{r['application']}'.", field=_where(i, "application"))
    slot = slots.get((r["application"], r["slot"]))
    if slot is None:
        raise _Refuse(
            f"Application '{app.slug}' has no slot '{r['slot']}'.", field=_where(i, "slot")
        )
    if not slot_serves_tenant(slot, tenant):
        raise _Refuse(
            f"Slot {slot} does not serve tenant '{tenant.slug}' (another tenant's "
            "application or artifact).",
            field=_where(i, "slot"),
        )
    version = versions.get((slot.artifact_id, r["version"]))
    if version is None:
        raise _Refuse(
            f"{slot.artifact.path} has no version '{r['version']}'.", field=_where(i, "version")
        )
    verdict = verdicts.get(version.pk)
    gone = getattr(version, "retirement", None) is not None or (
        getattr(version, "deprecation", None) is not None
        and version.deprecation.removed_at is not None
    )
    # A retired or removed version served until recently: late counters are still true.
    if isinstance(verdict, str) and not gone:
        raise _Refuse(f"{verdict}: it cannot have served.", field=_where(i, "version"))
    rollout = _check_rollout(known, i, r, slot, version)
    return {
        "tenant_id": tenant.pk,
        "application_id": app.pk,
        "slot_id": slot.pk,
        "version_id": version.pk,
        "rollout_id": rollout.pk if rollout else None,
        "arm": r["arm"] if rollout else "",
    }


def _check_rollout(
    known: _Known, i: int, r: dict[str, Any], slot: Slot, version: Version
) -> Rollout | None:
    """The row's rollout, which targets its slot with its version on its arm (or none, and
    no arm)."""
    arm = r["arm"]
    if not r["rollout"]:
        if arm:
            raise _Refuse("must be empty without a rollout.", field=_where(i, "arm"))
        return None
    rollout = known.rollouts.get(_rollout_number(r["rollout"], i))
    if rollout is None:
        raise _Refuse(f"No rollout {r['rollout']}.", field=_where(i, "rollout"))
    target = known.targets.get((rollout.pk, slot.pk))
    if target is None:
        raise _Refuse(
            f"{rollout.reference} does not target slot {slot}.", field=_where(i, "rollout")
        )
    if arm not in ARMS:
        raise _Refuse(
            f"must be one of {', '.join(sorted(ARMS))} with a rollout.",
            field=_where(i, "arm"),
        )
    expected = target.candidate_id if arm == Arm.CANARY else target.baseline_id
    if expected != version.pk:
        raise _Refuse(
            f"{version.version} is not the {arm} version of {rollout.reference} on {slot}.",
            field=_where(i, "version"),
        )
    return rollout


def _resolve_references(
    tenant: Tenant, parsed: Sequence[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[Any, Rollout], list[Report]]:
    """Check every row's application, slot, version, rollout and arm for ``tenant``
    (the references read once: ``_known``); the rows' hash reports come back for the drift
    check."""
    known = _known(tenant, parsed)
    # A batch repeats few keys over many buckets: each distinct key is checked once (at its
    # first row, so a refusal names the first bad row).
    checked: dict[tuple[str, ...], dict[str, Any]] = {}
    copied = (*INT_FIELDS, *FLOAT_FIELDS, "snapshot_sequence", "bucket_start")
    rows = []
    reports: list[Report] = []
    for i, r in enumerate(parsed):
        key = (r["application"], r["slot"], r["version"], r["rollout"], r["arm"])
        ids = checked.get(key)
        if ids is None:
            ids = checked[key] = _check_row(known, i, r)
        rows.append({**ids, **{k: r[k] for k in copied}})
        if r["manifest_sha256"]:
            slot = known.slots[(r["application"], r["slot"])]
            version = known.versions[(slot.artifact_id, r["version"])]
            reports.append(Report(slot, version, r["manifest_sha256"], r["requests"]))
    return rows, {r.pk: r for r in known.rollouts.values()}, reports


def _usage_record(tenant: Tenant, rows: Sequence[dict[str, Any]], slugs: Mapping[Any, str]) -> None:
    """Add the batch's requests to ``VersionUsage`` (consumer ``tenant/application``): one upsert.

    Rows are sorted so concurrent batches lock usage rows in the same order (no deadlock).
    """
    usage: dict[tuple[Any, str], list[Any]] = {}
    for row in rows:
        if not row["requests"]:
            continue
        key = (row["version_id"], f"{tenant.slug}/{slugs[row['application_id']]}")
        seen = usage.get(key)
        if seen is None:
            usage[key] = [row["requests"], row["bucket_start"]]
        else:
            seen[0] += row["requests"]
            seen[1] = max(seen[1], row["bucket_start"])
    if not usage:
        return
    table = VersionUsage._meta.db_table
    quote = connection.ops.quote_name
    params: list[Any] = []
    values = []
    for (version_id, consumer), (requests, last) in sorted(
        usage.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])
    ):
        values.append("(%s, %s, %s, %s)")
        params += [
            VersionUsage._meta.get_field("version").get_db_prep_value(version_id, connection),
            consumer,
            requests,
            connection.ops.adapt_datetimefield_value(last),
        ]
    # The table and columns are the model's own names; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(table)} (version_id, consumer, requests, last_seen_at) "  # noqa: S608
        f"VALUES {', '.join(values)} "
        "ON CONFLICT (version_id, consumer) DO UPDATE SET "
        f"requests = {quote(table)}.requests + EXCLUDED.requests, "
        f"last_seen_at = CASE WHEN EXCLUDED.last_seen_at > {quote(table)}.last_seen_at "
        f"THEN EXCLUDED.last_seen_at ELSE {quote(table)}.last_seen_at END"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)  # only placeholders and the model's own names


#: The columns ingest writes, in COPY order (``resolution`` is raw, the default).
_COPY_COLUMNS: tuple[str, ...] = (
    "tenant_id",
    "application_id",
    "slot_id",
    "version_id",
    "rollout_id",
    "arm",
    "bucket_start",
    *INT_FIELDS,
    *FLOAT_FIELDS,
    "snapshot_sequence",
)


def _counters_insert(
    rows: Sequence[dict[str, Any]], *, batch_id: int, received_at: datetime
) -> None:
    """One bulk write of the rows: PostgreSQL's COPY (a few ms for 1,000 rows; the ORM's
    ``bulk_create`` spends ~0.3 s preparing 30,000 values), ``bulk_create`` elsewhere."""
    if connection.vendor != "postgresql":
        TelemetryCounter.objects.bulk_create(
            [TelemetryCounter(batch_id=batch_id, received_at=received_at, **row) for row in rows],
            batch_size=1000,
        )
        return
    quote = connection.ops.quote_name
    columns = (*_COPY_COLUMNS, "resolution", "batch_id", "received_at")
    sql = (
        f"COPY {quote(TelemetryCounter._meta.db_table)} "
        f"({', '.join(quote(c) for c in columns)}) FROM STDIN"
    )
    tail = (Resolution.RAW.value, batch_id, received_at)
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row((*(row[c] for c in _COPY_COLUMNS), *tail))


def _queue_controller(rollout_ids: list[str]) -> None:
    """After the commit: one controller iteration for the fed rollouts, soon (never fails ingest)."""
    from rollouts.tasks import rollouts_controller_soon

    try:
        rollouts_controller_soon.delay(rollout_ids)
    except Exception:  # noqa: BLE001 - the batch is stored; the beat iterates them anyway
        import logging

        logging.getLogger(__name__).warning("controller not queued after telemetry ingest")


@transaction.atomic
def telemetry_ingest(
    *,
    principal_or_tenant: ServicePrincipal | Tenant,
    batch_id: Any,
    rows: Any,
    actor: Any = None,
    now: datetime | None = None,
) -> IngestResult:
    """Store one batch of counters for a tenant, whole or not at all.

    ``principal_or_tenant``: the service token's principal (it must hold
    ``telemetry:write``) or, for code (seeds, tests), the tenant itself. ``actor`` is unused
    (telemetry writes no governance event, see the module docstring); it is accepted so
    callers can pass who asked.

    Refused whole (``DomainError`` naming the field, e.g. ``rows[3].errors``): a bad
    ``batch_id``, no rows or more than ``TELEMETRY_MAX_BATCH_ROWS``, any bad row (negative or
    non-integer counts, a guardrail count above ``requests``, a histogram of the wrong
    length or that does not count each request once, unknown application, slot or version,
    a slot that does not serve this tenant, a version that cannot have served, a rollout
    that does not target the slot, an arm that is not ``canary``/``stable`` with a rollout
    or not empty without one, a version that is not that arm's, a bucket more than
    ``TELEMETRY_MAX_FUTURE_SECONDS`` ahead, a ``manifest_sha256`` that is not 64 hex digits).
    Nothing of a refused batch is stored.

    A batch whose ``batch_id`` this tenant sent before is answered ``duplicate`` and stores
    nothing (it counts once). Otherwise: one ``TelemetryBatch`` row, one bulk INSERT of the
    counters (buckets aligned to ``TELEMETRY_BUCKET_SECONDS``), one upsert of
    ``VersionUsage``, the drift check of rows that carry ``manifest_sha256``
    (``rollouts.drift``: a differing hash opens an episode once), and after the commit one controller iteration queued for the active
    rollouts the batch fed.
    """
    del actor
    tenant, token_id = _tenant_of(principal_or_tenant)
    if not isinstance(batch_id, str) or not BATCH_ID_RE.match(batch_id):
        raise DomainError(
            "is required: 1-100 letters, digits, '.', '_', ':' or '-', chosen by the client "
            "and reused when it retries.",
            field="batch_id",
        )
    existing = TelemetryBatch.objects.filter(tenant=tenant, batch_id=batch_id).first()
    if existing is not None:
        return IngestResult("duplicate", batch_id, existing.rows, existing.requests)
    if not isinstance(rows, list) or not rows:
        raise DomainError("must be a non-empty list of counter rows.", field="rows")
    limit = settings.TELEMETRY_MAX_BATCH_ROWS
    if len(rows) > limit:
        raise DomainError(
            f"{len(rows)} rows is more than TELEMETRY_MAX_BATCH_ROWS ({limit}); split the batch.",
            field="rows",
        )
    now = now or timezone.now()
    clock = _Clock(now)
    parsed = [_parse_row(row, i, clock) for i, row in enumerate(rows)]
    stored, rollouts, reports = _resolve_references(tenant, parsed)
    requests = sum(r["requests"] for r in stored)
    try:
        with transaction.atomic():
            batch = TelemetryBatch.objects.create(
                tenant=tenant,
                batch_id=batch_id,
                token_id=token_id,
                rows=len(stored),
                requests=requests,
                received_at=now,
            )
    except IntegrityError:  # the same batch, sent twice at once: the other one counted
        existing = TelemetryBatch.objects.get(tenant=tenant, batch_id=batch_id)
        return IngestResult("duplicate", batch_id, existing.rows, existing.requests)
    _counters_insert(stored, batch_id=batch.pk, received_at=now)
    slugs = dict(
        Application.objects.filter(pk__in={r["application_id"] for r in stored}).values_list(
            "pk", "slug"
        )
    )
    _usage_record(tenant, stored, slugs)
    if reports:  # clients that send the hash they ran: drift between promotion and deployment
        drift_observe(tenant=tenant, reports=reports, now=now)
    fed = sorted(str(pk) for pk, r in rollouts.items() if r.state in ACTIVE_STATES)
    if fed:
        transaction.on_commit(partial(_queue_controller, fed), robust=True)
    return IngestResult(
        "accepted",
        batch_id,
        len(stored),
        requests,
        sorted((r.reference for r in rollouts.values()), key=lambda ref: int(ref[3:])),
    )


# --- the rollup: bounded storage ------------------------------------------------------------

_GROUP = ("tenant_id", "application_id", "slot_id", "version_id", "rollout_id", "arm")


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@transaction.atomic
def telemetry_fold(*, hour: datetime) -> int:
    """Fold the raw rows of one hour (``[hour, hour + 1 h)``) into hour rows; returns rows folded.

    One transaction: the raw rows are locked, summed per (tenant, application, slot,
    version, rollout, arm), the sums inserted as ``hour`` rows and the raw rows deleted (the
    only delete the table's trigger lets through). Idempotent: a second run finds no raw
    rows. A late raw row for an already folded hour is folded by a later run into a second
    hour row for the same key; readers sum, so totals are the same.
    """
    start = _hour(hour)
    end = start + timedelta(hours=1)
    raw = TelemetryCounter.objects.filter(
        resolution=Resolution.RAW, bucket_start__gte=start, bucket_start__lt=end
    )
    ids = list(raw.select_for_update().order_by("id").values_list("id", flat=True))
    if not ids:
        return 0
    sums = (
        TelemetryCounter.objects.filter(pk__in=ids)
        .order_by()
        .values(*_GROUP)
        .annotate(**totals_annotations())
    )
    folded = [
        TelemetryCounter(
            resolution=Resolution.HOUR,
            bucket_start=start,
            **{k: row[k] for k in _GROUP},
            **{k: row[k] or 0 for k in (*INT_FIELDS, *FLOAT_FIELDS, "snapshot_sequence")},
        )
        for row in sums
    ]
    TelemetryCounter.objects.bulk_create(folded, batch_size=1000)
    doomed = TelemetryCounter.objects.filter(pk__in=ids)
    if connection.vendor == "postgresql":
        with pgtrigger.ignore("rollouts.TelemetryCounter:telemetry_counter_no_delete"):
            doomed.delete()
    else:
        doomed.delete()  # no triggers outside PostgreSQL
    return len(ids)


def telemetry_fold_due(*, now: datetime | None = None) -> int:
    """Fold every hour whose raw rows are all older than ``TELEMETRY_RAW_RETENTION_HOURS`` (the sweep).

    One transaction per hour (``telemetry_fold``); returns the raw rows folded. Then forgets
    the batches received before the same cutoff whose raw rows are all folded
    (:func:`telemetry_batches_prune`), so both tables stay bounded.
    """
    now = now or timezone.now()
    cutoff = _hour(now - timedelta(hours=settings.TELEMETRY_RAW_RETENTION_HOURS))
    raw = TelemetryCounter.objects.filter(resolution=Resolution.RAW, bucket_start__lt=cutoff)
    folded = 0
    while True:  # one hour at a time, skipping empty hours: a query and a fold per hour with rows
        first = raw.aggregate(first=Min("bucket_start"))["first"]
        if first is None:
            break
        folded += telemetry_fold(hour=first)
    telemetry_batches_prune(before=cutoff)
    return folded


@transaction.atomic
def telemetry_batches_prune(*, before: datetime) -> int:
    """Forget batches received before ``before`` that no raw row points at any more.

    A batch id is remembered (a retry of it answered "duplicate") for at least
    ``TELEMETRY_RAW_RETENTION_HOURS``; clients retry within minutes. Returns batches removed.
    """
    still_raw = TelemetryCounter.objects.filter(
        resolution=Resolution.RAW, batch_id__isnull=False
    ).values("batch_id")
    removed, _ = (
        TelemetryBatch.objects.filter(received_at__lt=before).exclude(pk__in=still_raw).delete()
    )
    return removed
