"""Reads of the event log shared by pages, the API, the CLI and verification."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import IO, Any

from django.db.models import Q, QuerySet

from accounts.selectors import is_platform_admin, tenant_scoped, tenants_administered_by
from governance.kernel import merkle
from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events.models import (
    Checkpoint,
    Event,
    EventChainHead,
    SigningKey,
    VerificationRun,
)
from governance.kernel.verify import Entry, leaf_input, write_bundle


def events_visible_to(user: Any) -> QuerySet[Event]:
    """Platform administrators see every event; members see their tenants' events (and their own)."""
    base = Event.objects.select_related("tenant", "actor").defer("header", "payload_bytes")
    return tenant_scoped(base, user=user, also=Q(tenant__isnull=True, actor=user))


def event_for_user(user: Any, seq: int) -> Event:
    event = events_visible_to(user).filter(seq=seq).defer(None).first()
    if event is None:
        raise NotFound(f"No event #{seq} that you can see.", field="seq")
    return event


def entries_from(from_seq: int = 1, upto: int | None = None) -> Iterator[Entry]:
    """The signed bytes of every entry in order, streamed in chunks (for verification and export)."""
    rows = Event.objects.order_by("seq").filter(seq__gte=from_seq)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    for seq, header, payload, entry_hash, kid, sig in rows.values_list(
        "seq", "header", "payload_bytes", "entry_hash", "key_id", "signature"
    ).iterator(chunk_size=5000):
        yield seq, bytes(header), bytes(payload), entry_hash, kid, sig


def public_keys() -> dict[str, str]:
    return dict(SigningKey.objects.values_list("kid", "public_key"))


def revoked_keys() -> dict[str, str]:
    """Revoked key ids and when (the signed headers' time format): what they signed later fails."""
    rows = SigningKey.objects.filter(revoked_at__isnull=False).values_list("kid", "revoked_at")
    return {
        kid: moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for kid, moment in rows
        if moment is not None
    }


def log_size() -> int:
    """How many events the log holds (the chain head's sequence number)."""
    head = EventChainHead.objects.filter(pk=1).values_list("seq", flat=True).first()
    if head is None:
        return Event.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    return head


@dataclass(frozen=True)
class LogExport:
    """What ``log_bundle_write`` wrote: entries, the log size read, the largest checkpoint, the root."""

    count: int
    size: int
    checkpoints: int
    covered: int
    root: str


def log_bundle_write(out: IO[bytes], *, meta: dict[str, object]) -> LogExport:
    """Write the whole log as a ``governance-log-bundle/1`` (``events export``, backups).

    Every stored checkpoint goes in, even one that covers more entries than the log now
    holds: that is how a cut-back log shows. They are read before the log's size, so a
    checkpoint signed meanwhile cannot make an intact log look short. ``root`` is the
    Merkle root of the entries written, computed as they stream past.
    """
    from governance.kernel.events.services import checkpoint_record

    checkpoints = [checkpoint_record(c) for c in Checkpoint.objects.order_by("tree_size")]
    size = log_size()
    leaves: list[bytes] = []

    def entries() -> Iterator[Entry]:
        for entry in entries_from(1, upto=size):
            leaves.append(merkle.leaf_hash(leaf_input(entry[3], entry[4], entry[5])))
            yield entry

    count = write_bundle(
        out,
        entries=entries(),
        public_keys=public_keys(),
        revoked=revoked_keys(),
        checkpoints=checkpoints,
        meta={**meta, "size": size},
    )
    covered = max((c.tree_size for c in checkpoints), default=0)
    return LogExport(
        count, size, len(checkpoints), covered, merkle.root_from_leaf_hashes(leaves).hex()
    )


def leaf_hashes(upto: int) -> list[bytes]:
    rows = (
        Event.objects.order_by("seq")
        .filter(seq__lte=upto)
        .values_list("entry_hash", "key_id", "signature")
    )
    return [merkle.leaf_hash(leaf_input(h, k, s)) for h, k, s in rows.iterator(chunk_size=5000)]


def _tree_size(size: int | None) -> int:
    current = log_size()
    if size is None:
        return current
    if size < 1 or size > current:
        raise DomainError(f"Tree size must be between 1 and {current}.", field="size")
    return size


def inclusion_proof(event: Event, size: int | None) -> dict[str, Any]:
    """RFC 9162 inclusion proof of ``event`` in the tree of the first ``size`` entries."""
    tree_size = _tree_size(size)
    if event.seq > tree_size:
        raise DomainError(f"Event #{event.seq} is not in a tree of size {tree_size}.", field="size")
    leaves = leaf_hashes(tree_size)
    path = merkle.inclusion_proof(event.seq - 1, leaves)
    return {
        "seq": event.seq,
        "leaf_index": event.seq - 1,
        "tree_size": tree_size,
        "leaf_hash": leaves[event.seq - 1].hex(),
        "root_hash": merkle.root_from_leaf_hashes(leaves).hex(),
        "audit_path": [node.hex() for node in path],
    }


def consistency_proof(first: int, second: int | None) -> dict[str, Any]:
    """RFC 9162 consistency proof between the trees of size ``first`` and ``second``."""
    to_size = _tree_size(second)
    if first < 1 or first > to_size:
        raise DomainError(f"'from' must be between 1 and {to_size}.", field="from")
    leaves = leaf_hashes(to_size)
    return {
        "first_size": first,
        "second_size": to_size,
        "first_root": merkle.root_from_leaf_hashes(leaves[:first]).hex(),
        "second_root": merkle.root_from_leaf_hashes(leaves).hex(),
        "proof": [node.hex() for node in merkle.consistency_proof(first, leaves)],
    }


def checkpoints() -> QuerySet[Checkpoint]:
    return Checkpoint.objects.order_by("-tree_size")


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-tree_size").first()


def latest_verification() -> VerificationRun | None:
    """The newest run of all, for platform-wide views (``/metrics``, platform telemetry)."""
    return VerificationRun.objects.order_by("-created_at").first()


def verification_runs_visible_to(user: Any) -> QuerySet[VerificationRun]:
    """Runs ``user`` may read: their own, or every run for a platform administrator.

    A run checks the whole log, so it belongs to no tenant; it names who started it and may
    describe the entry that failed. Whoever may start a run sees what they started.
    """
    base = VerificationRun.objects.select_related("requested_by").order_by("-created_at")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return base.none()
    if is_platform_admin(user):
        return base
    return base.filter(requested_by=user)


def latest_verification_for(user: Any) -> VerificationRun | None:
    return verification_runs_visible_to(user).first()


def entry_status(event: Event) -> tuple[bool, str]:
    """Verify one entry on its own: bytes, hash, link to the previous entry, columns, signature."""
    from governance.kernel.events.services import column_problem
    from governance.kernel.verify import GENESIS_HASH, verify_entries

    prev = GENESIS_HASH
    if event.seq > 1:
        found = Event.objects.filter(seq=event.seq - 1).values_list("entry_hash", flat=True).first()
        if found is None:
            return False, f"the previous entry #{event.seq - 1} is missing"
        prev = found
    entry = (
        event.seq,
        bytes(event.header),
        bytes(event.payload_bytes),
        event.entry_hash,
        event.key_id,
        event.signature,
    )
    result = verify_entries(
        [entry],
        public_keys=public_keys(),
        all_signatures=True,
        start_seq=event.seq,
        start_prev=prev,
        extra_check=lambda _: column_problem(event),
    )
    if result.ok:
        return (
            True,
            f"hash, link to #{event.seq - 1 if event.seq > 1 else 'genesis'}, columns and signature ({event.key_id}) verify",
        )
    return False, result.reason


def subject_url(event: Event) -> str | None:
    """Where a row of the feed links to: the subject's page when it has one."""
    from django.urls import reverse

    if event.tenant_id and event.subject_type in {
        "accounts.tenant",
        "accounts.rolegrant",
        "accounts.membership",
    }:
        return reverse("tenant-detail", kwargs={"slug": event.tenant.slug})  # type: ignore[union-attr]
    if event.subject_type == "accounts.apitoken":
        return reverse("tokens")
    # The label written with the event names the subject, so linking needs no query per row.
    label = event.subject_label or ""
    return (
        _registry_subject_url(event.subject_type, label)
        or _numbered_subject_url(event.subject_type, label)
        or _rollouts_subject_url(event.subject_type, label)
    )


def _registry_subject_url(subject_type: str, label: str) -> str | None:
    """Artifacts (``cls/tenant/slug``) and versions (``cls/tenant/slug/version``)."""
    from django.urls import reverse

    parts = label.split("/")
    if subject_type == "registry.artifact" and len(parts) == 3:
        return reverse(
            "registry:artifact", kwargs=dict(zip(("cls", "tenant", "slug"), parts, strict=True))
        )
    if subject_type == "registry.version" and len(parts) == 4:
        keys = ("cls", "tenant", "slug", "version")
        return reverse("registry:version", kwargs=dict(zip(keys, parts, strict=True)))
    return None


def _numbered_subject_url(subject_type: str, label: str) -> str | None:
    """Change requests (``CR-2026-0007 ...``) and waivers (``WV-2026-0003 ...``)."""
    from django.urls import reverse

    if subject_type == "reviews.changerequest" and label.startswith("CR-"):
        return reverse("reviews:change", kwargs={"reference": label.split(" ", 1)[0]})
    if subject_type == "governance.waiver" and label.startswith("WV-"):
        return reverse("waiver-detail", kwargs={"reference": label.split(" ", 1)[0]})
    return None


def _rollouts_subject_url(subject_type: str, label: str) -> str | None:
    """Rollouts (``RO-12``), applications (``sales-agent``) and slots (``sales-agent.qualifyLead``)."""
    from django.urls import reverse

    if subject_type == "rollouts.rollout" and label[3:].isdigit() and label.startswith("RO-"):
        return reverse("rollouts:rollout", kwargs={"number": int(label[3:])})
    if subject_type == "rollouts.application" and label:
        return reverse("rollouts:application", kwargs={"slug": label})
    if subject_type == "rollouts.slot" and "." in label:
        slug, name = label.split(".", 1)
        return reverse("rollouts:slot", kwargs={"slug": slug, "name": name})
    return None


def telemetry(days: int = 30) -> dict[str, Any]:
    """The whole platform's governance metrics (``/metrics`` and platform administrators)."""
    return _telemetry(
        Event.objects.all(),
        VerificationRun.objects.all(),
        days=days,
        events_total=log_size(),
    )


def telemetry_for(user: Any, days: int = 30) -> dict[str, Any] | None:
    """The metrics ``user`` may see, or None if they administer nothing.

    A platform administrator sees the whole platform. A tenant administrator sees the tenants
    they administer and nothing else: no other tenant's slug or activity, no platform-level
    events, only the verification runs they started. Officers and members see no metrics.
    """
    if is_platform_admin(user):
        return {**telemetry(days), "platform": True}
    tenants = list(tenants_administered_by(user))
    if not tenants:
        return None
    events = Event.objects.filter(tenant__in=tenants)
    own_runs = VerificationRun.objects.filter(requested_by=user)  # as verification_runs_visible_to
    return {
        **_telemetry(events, own_runs, days=days, events_total=events.count()),
        "platform": False,
    }


def _telemetry(
    events: QuerySet[Event], runs: QuerySet[VerificationRun], *, days: int, events_total: int
) -> dict[str, Any]:
    """Governance metrics computed from (a scope of) the log: a fixed number of queries."""
    from datetime import timedelta

    from django.db.models import Count
    from django.utils import timezone

    from governance.kernel.events.kinds import EventKind

    since = timezone.now() - timedelta(days=days)
    recent = events.filter(time__gte=since)
    by_kind = dict(recent.values_list("kind").annotate(n=Count("seq")).values_list("kind", "n"))
    per_tenant = list(
        recent.values("tenant__slug").annotate(n=Count("seq")).order_by("-n", "tenant__slug")
    )
    opened = dict(
        recent.filter(kind=EventKind.CHANGE_REQUEST_OPENED).values_list("subject_id", "time")
    )
    promoted = recent.filter(kind=EventKind.CHANGE_REQUEST_PROMOTED).values_list(
        "subject_id", "time"
    )
    lead_times = sorted(
        (done - opened[sid]).total_seconds() / 3600 for sid, done in promoted if sid in opened
    )
    counts = runs.order_by().aggregate(
        failed=Count("id", filter=Q(status=VerificationRun.Status.FAILED)),
        passed=Count("id", filter=Q(status=VerificationRun.Status.PASSED)),
    )
    return {
        "days": days,
        "events_total": events_total,
        "events_recent": sum(by_kind.values()),
        "by_kind": by_kind,
        "per_tenant": [
            {"tenant": r["tenant__slug"] or "(platform)", "events": r["n"]} for r in per_tenant
        ],
        "rollbacks": by_kind.get(EventKind.ROLLOUT_ROLLED_BACK, 0),
        "publishes": by_kind.get(EventKind.ARTIFACT_VERSION_PUBLISHED, 0),
        "lead_time_hours_p50": lead_times[len(lead_times) // 2] if lead_times else None,
        "lead_time_samples": len(lead_times),
        "verification_failures": counts["failed"],
        "verification_passes": counts["passed"],
        "latest_checkpoint": latest_checkpoint(),
        "latest_verification": runs.order_by("-created_at").first(),
    }
