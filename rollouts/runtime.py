"""The runtime answer: a tenant's signed configuration of an application, and resolving one slot.

``snapshot(tenant, application)`` builds (or takes from this process's cache) everything a
client needs to resolve every slot of the application for the tenant on its own: each
slot's default, the tenant's override, the rules of the active rollouts (canary weight,
salt, cohort, flag), and the versions those pointers name, with their ``slug:version#sha256``
references, stage, deprecation warning and content. Only servable versions ever appear
(fail closed: a draft, rejected, removed or retired version never does). The body is RFC
8785 canonical JSON signed with the event log's key, so a client verifies it with the
published public key (``GET /api/v1/keys/``). The document's JSON Schema is
``rollouts/spec/runtime-snapshot.schema.json``; ``load_document`` verifies a fetched one.

``resolve(snapshot, slot, subject, pin)`` is a pure function (no database, no clock but the
optional ``now``) applying the precedence of the design: pin (``STATIC``), an active rollout's
rule (``SPLIT`` / ``TARGETING_MATCH``), the tenant's override (``TARGETING_MATCH``), the default
(``DEFAULT``), else ``DISABLED``. ``answer(...)`` is the server's entry: the snapshot, then
``resolve``, then, for a pin the snapshot does not hold, one indexed lookup (still fail closed).

The cache is keyed by ``governance.kernel.events.generation.current()``, which every event append
changes, so a warm answer runs no SQL and a pointer move is seen by every process within a
second (a Redis counter with ``REDIS_URL``, else a file's modification time).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db.models import Q

from governance.kernel.errors import DomainError, NotFound
from governance.kernel.events import generation
from governance.kernel.events import keys as keystore
from governance.kernel.events.selectors import log_size
from governance.kernel.events.services import active_key, canonical
from registry.choices import ContentKind
from registry.models import Version
from registry.references import BrokenReference, Reference, parse_reference, parse_version
from registry.selectors import engaged_switches, halt_message
from rollouts import bucketing
from rollouts.choices import ACTIVE_STATES, BUCKETS, Arm, PromotionTarget, Reason, RolloutStrategy
from rollouts.models import Application, Override, RolloutTarget, Slot
from rollouts.selectors import ServeInfo, servable_versions

__all__ = [
    "FORMAT",
    "Answer",
    "PinNotInSnapshot",
    "Snapshot",
    "answer",
    "cache_clear",
    "compile_snapshot",
    "etag_matches",
    "load_document",
    "resolve",
    "snapshot",
    "version_ref",
]

#: The snapshot body's format name; a client refuses a format it does not know.
FORMAT = "governance-runtime/1"

#: Snapshots kept per process (least recently used dropped first).
CACHE_SIZE = 512

#: Pin lookups (versions a snapshot does not hold) remembered per snapshot.
PIN_CACHE_SIZE = 256


# --- the answer ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one slot serves for one request, and why.

    ``ref`` is ``slug:version#sha256`` (None when ``DISABLED``); ``rollout`` is ``RO-<n>`` when
    a rollout's rule (or an override a tenant-scoped rollout set) decided; ``arm`` is
    ``canary``/``stable`` for a canary split or cohort, ``bucket`` the subject's bucket when
    one was computed; ``variant`` names the branch for OpenFeature (``pinned``, ``canary``,
    ``stable``, ``on``, ``override``, ``default``, ``disabled``, ``halted``). ``halted`` is
    set (reason ``DISABLED``, no version) while the artifact's safety switch is engaged: "halted:
    safety switch engaged on <artifact> by <user>: <reason>".
    """

    tenant: str
    application: str
    slot: str
    reason: str
    variant: str
    sequence: int
    ref: str | None = None
    path: str | None = None
    version: str | None = None
    sha256: str | None = None
    stage: str | None = None
    content_kind: str | None = None
    content: Any = None
    rollout: str | None = None
    rollout_id: str | None = None
    step: int | None = None
    arm: str | None = None
    bucket: int | None = None
    warnings: tuple[str, ...] = ()
    halted: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The answer as ``POST /api/v1/resolve/`` returns it."""
        return {
            "tenant": self.tenant,
            "application": self.application,
            "slot": self.slot,
            "ref": self.ref,
            "path": self.path,
            "version": self.version,
            "sha256": self.sha256,
            "stage": self.stage,
            "content_kind": self.content_kind,
            "content": self.content,
            "reason": self.reason,
            "variant": self.variant,
            "rollout": self.rollout,
            "rollout_id": self.rollout_id,
            "step": self.step,
            "arm": self.arm,
            "bucket": self.bucket,
            "sequence": self.sequence,
            "warnings": list(self.warnings),
            "halted": self.halted,
        }


class PinNotInSnapshot(NotFound):
    """``resolve`` was pinned to a version the snapshot does not hold (``answer`` looks it up)."""

    def __init__(self, slot: str, version: str, sha256: str | None) -> None:
        super().__init__(f"'{version}' is not a version this slot serves.", field="pin")
        self.slot = slot
        self.version = version
        self.sha256 = sha256


# --- the snapshot -------------------------------------------------------------------------


@dataclass
class _Rule:
    rollout: str
    rollout_id: str
    strategy: str
    target: str
    step: int
    weight: int
    salt: str
    cohort: frozenset[str]
    stable: str | None
    candidate: str
    flag_key: str
    flag_on: bool
    flag_expires: datetime | None


@dataclass
class _Slot:
    name: str
    artifact: str
    artifact_slug: str
    disabled: bool
    default: str | None
    override: str | None
    override_rollout: str | None
    override_rollout_id: str | None
    override_step: int | None
    rules: list[_Rule]
    warnings: tuple[str, ...]
    by_version: dict[str, str]
    halted: str | None = None


@dataclass
class Snapshot:
    """A tenant's resolved runtime configuration of one application, signed.

    ``body`` is the signed document (see the module's docs for its shape); ``canonical`` its
    RFC 8785 bytes, ``sha256`` their hash, ``signature`` the log key's Ed25519 signature of
    that 32-byte hash (as events are signed), ``etag`` ``"<sequence>-<content digest prefix>"``
    (the content digest leaves ``sequence`` out, so ``unchanged_for`` answers ``304`` to a
    client holding an older document with the same configuration).
    """

    body: dict[str, Any]
    canonical: bytes
    sha256: str
    key_id: str
    signature: str
    generation: str = ""
    slots: dict[str, _Slot] = field(default_factory=dict, repr=False)
    #: server side: slot name -> artifact primary key, for pins the snapshot does not hold.
    artifact_ids: dict[str, Any] = field(default_factory=dict, repr=False)
    pins: OrderedDict[tuple[str, str, str], Answer | DomainError] = field(
        default_factory=OrderedDict, repr=False
    )
    _document: bytes | None = field(default=None, repr=False)
    _content_sha256: str | None = field(default=None, repr=False)

    @property
    def tenant(self) -> str:
        return str(self.body["tenant"])

    @property
    def application(self) -> str:
        return str(self.body["application"])

    @property
    def sequence(self) -> int:
        return int(self.body["sequence"])

    @property
    def content_sha256(self) -> str:
        """SHA-256 of the body without its ``sequence``: equal while the configuration is."""
        if self._content_sha256 is None:
            rest = {k: v for k, v in self.body.items() if k != "sequence"}
            self._content_sha256 = hashlib.sha256(canonical(rest)).hexdigest()
        return self._content_sha256

    @property
    def etag(self) -> str:
        """``"<sequence>-<content digest prefix>"``: strong (one per byte-distinct document)."""
        return f'"{self.sequence}-{self.content_sha256[:16]}"'

    def unchanged_for(self, if_none_match: str) -> str | None:
        """The tag of ``If-None-Match`` whose configuration is this one's, or None.

        The log grows for reasons that change nothing here (another tenant's work), and each
        rebuild carries the new ``sequence``; a client holding an older document whose
        content is the same keeps it: it gets ``304`` with its own tag back.
        """
        if etag_matches(if_none_match, self.etag):
            return self.etag
        suffix = f'-{self.content_sha256[:16]}"'
        for tag in if_none_match.split(","):
            tag = tag.strip().removeprefix("W/")
            if tag.startswith('"') and tag.endswith(suffix) and tag[1 : -len(suffix)].isdigit():
                return tag
        return None

    def document(self) -> bytes:
        """The signed envelope as ``GET /api/v1/runtime/...`` returns it (itself canonical JSON)."""
        if self._document is None:
            self._document = self._envelope()
        return self._document

    def _envelope(self) -> bytes:
        head = canonical(
            {
                "sha256": self.sha256,
                "signature": {
                    "algorithm": "ed25519",
                    "key_id": self.key_id,
                    "signed": "sha256(rfc8785(snapshot))",
                    "value": self.signature,
                },
            }
        )
        return head[:-1] + b',"snapshot":' + self.canonical + b"}"


def version_ref(version: Version) -> str:
    """``slug:version#sha256`` (the full manifest hash), the reference every answer carries."""
    return f"{version.artifact.slug}:{version.version}#{version.manifest_sha256}"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _content(version: Version) -> Any:
    if version.content_kind == ContentKind.TEXT:
        return version.content_text
    if version.content_kind == ContentKind.JSON:
        return version.content_json
    return None  # files are fetched by reference, not inlined


def _version_entry(version: Version, info: ServeInfo) -> dict[str, Any]:
    return {
        "path": version.path,
        "version": version.version,
        "sha256": version.manifest_sha256,
        "stage": info.stage,
        "content_kind": version.content_kind,
        "content": _content(version),
        "content_sha256": version.content_sha256,
        "warning": info.warning,
    }


def compile_snapshot(body: dict[str, Any]) -> dict[str, _Slot]:
    """Index a snapshot body for ``resolve`` (a client holding a fetched body does the same)."""
    slots: dict[str, _Slot] = {}
    versions = body["versions"]
    for name, raw in body["slots"].items():
        override = raw.get("override") or {}
        rules = [
            _Rule(
                rollout=r["rollout"],
                rollout_id=r["rollout_id"],
                strategy=r["strategy"],
                target=r["target"],
                step=int(r["step"]),
                weight=int(r["weight"]),
                salt=r["salt"],
                cohort=frozenset(r["cohort"]),
                stable=r["stable"],
                candidate=r["candidate"],
                flag_key=(r.get("flag") or {}).get("key", ""),
                flag_on=bool((r.get("flag") or {}).get("on", False)),
                flag_expires=_parse_iso((r.get("flag") or {}).get("expires_at")),
            )
            for r in raw["rules"]
        ]
        by_version = {
            versions[ref]["version"]: ref
            for ref in _refs_of(raw)
            if ref in versions and versions[ref]["path"].rsplit("/", 1)[0] == raw["artifact"]
        }
        slots[name] = _Slot(
            name=name,
            artifact=raw["artifact"],
            artifact_slug=raw["artifact"].rsplit("/", 1)[-1],
            disabled=bool(raw["disabled"]),
            default=raw["default"],
            override=override.get("ref"),
            override_rollout=override.get("rollout"),
            override_rollout_id=override.get("rollout_id"),
            override_step=override.get("step"),
            rules=rules,
            warnings=tuple(raw.get("warnings", ())),
            by_version=by_version,
            halted=raw.get("halted"),
        )
    return slots


def load_document(data: bytes | str, public_keys: dict[str, str]) -> Snapshot:
    """A snapshot from a fetched ``GET /api/v1/runtime/...`` body, verified before use.

    ``public_keys`` maps key ids to hex Ed25519 public keys (``GET /api/v1/keys/``). The
    SHA-256 of the RFC 8785 bytes of ``snapshot`` must equal ``sha256``, and the signature
    must verify over those 32 bytes; anything else is refused (DomainError). What a client
    library does, and what ``resolve`` then works on (pins it lacks raise PinNotInSnapshot).
    """
    import json

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        document = json.loads(data)
        body, signature = document["snapshot"], document["signature"]
        key_hex = public_keys[signature["key_id"]]
        if not isinstance(body, dict):
            raise TypeError("'snapshot' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise DomainError(f"Not a signed runtime snapshot: {exc!r}.", field="snapshot") from exc
    if body.get("format") != FORMAT:
        raise DomainError(f"Unknown snapshot format {body.get('format')!r}.", field="format")
    data_bytes = canonical(body)
    digest = hashlib.sha256(data_bytes)
    if digest.hexdigest() != document.get("sha256"):
        raise DomainError("The snapshot does not match its sha256.", field="sha256")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(signature["value"]), digest.digest()
        )
    except (InvalidSignature, ValueError) as exc:
        raise DomainError("The snapshot's signature does not verify.", field="signature") from exc
    return Snapshot(
        body=body,
        canonical=data_bytes,
        sha256=digest.hexdigest(),
        key_id=signature["key_id"],
        signature=signature["value"],
        slots=compile_snapshot(body),
    )


def _refs_of(raw: dict[str, Any]) -> list[str]:
    refs = [raw["default"], (raw.get("override") or {}).get("ref")]
    for rule in raw["rules"]:
        refs += [rule["stable"], rule["candidate"]]
    return [r for r in refs if r]


def _visible_slots(tenant: Any, application: Application, platform_slug: str) -> list[Slot]:
    owners = Q(artifact__tenant=tenant) | Q(artifact__tenant__slug=platform_slug)
    return list(
        Slot.objects.filter(application=application)
        .filter(owners)
        .select_related("artifact__artifact_class", "artifact__tenant")
        .order_by("name")
    )


def _application_for(tenant_slug: str, application_slug: str) -> tuple[Any, Application]:
    """The tenant and the application it may read (its own or the platform's); NotFound otherwise."""
    from accounts.models import Tenant

    platform = settings.PLATFORM_TENANT_SLUG
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    app = (
        Application.objects.select_related("tenant")
        .filter(slug=application_slug)
        .filter(Q(tenant__slug=tenant_slug) | Q(tenant__slug=platform))
        .first()
    )
    if tenant is None:
        raise NotFound(f"No tenant '{tenant_slug}'.", field="tenant")
    if app is None:
        raise NotFound(
            f"No application '{application_slug}' that tenant '{tenant_slug}' may read.",
            field="application",
        )
    return tenant, app


@dataclass(frozen=True)
class _Read:
    """What a build read: the tenant's overrides and rollout targets, and every version they
    and the defaults name, servable (``refs``: id -> reference) or refused (``serve``)."""

    tenant: Any
    overrides: dict[Any, Override]
    targets: list[RolloutTarget]
    serve: dict[Any, ServeInfo | str]
    refs: dict[Any, str]
    artifact_of: dict[Any, Any]

    def refusal(self, vid: Any) -> str:
        found = self.serve.get(vid)
        return found if isinstance(found, str) else "it is not servable"


def _read(tenant: Any, slots: list[Slot], platform: str) -> tuple[_Read, dict[str, dict[str, Any]]]:
    """The pointers of ``slots`` for ``tenant`` and their versions (the versions' entries too)."""
    overrides = {
        o.slot_id: o
        for o in Override.objects.filter(slot__in=slots, tenant=tenant).select_related("rollout")
    }
    targets = list(
        RolloutTarget.objects.filter(
            slot__in=slots,
            rollout__state__in=ACTIVE_STATES,
            rollout__strategy__in=[RolloutStrategy.CANARY, RolloutStrategy.FLAG],
        )
        .filter(Q(rollout__tenant=tenant) | Q(rollout__tenant__slug=platform))
        .select_related("rollout")
        .order_by("-rollout__number")
    )
    wanted: set[Any] = set()
    for slot in slots:
        if slot.artifact.active_version_id:
            wanted.add(slot.artifact.active_version_id)
    wanted |= {o.version_id for o in overrides.values()}
    for t in targets:
        wanted.add(t.candidate_id)
    serve = servable_versions(wanted)

    versions: dict[str, dict[str, Any]] = {}
    refs: dict[Any, str] = {}
    artifact_of: dict[Any, Any] = {}
    for vid, info in serve.items():
        if isinstance(info, ServeInfo):
            ref = version_ref(info.version)
            refs[vid] = ref
            artifact_of[vid] = info.version.artifact_id
            versions[ref] = _version_entry(info.version, info)
    return _Read(tenant, overrides, targets, serve, refs, artifact_of), versions


def _override_json(read: _Read, slot: Slot, warnings: list[str]) -> dict[str, Any] | None:
    own = read.overrides.get(slot.pk)
    if own is None:
        return None
    tenant = read.tenant
    own_ref = read.refs.get(own.version_id)
    if own_ref is None:
        warnings.append(
            f"The override of {slot.name} for {tenant.slug} is skipped: {read.refusal(own.version_id)}."
        )
        return None
    if read.artifact_of[own.version_id] != slot.artifact.pk:
        warnings.append(
            f"The override of {slot.name} for {tenant.slug} names another artifact; skipped."
        )
        return None
    rollout = own.rollout
    return {
        "ref": own_ref,
        "reason": own.reason,
        "rollout": rollout.reference if rollout else None,
        "rollout_id": str(rollout.pk) if rollout else None,
        "step": rollout.step if rollout else None,
    }


def _rules_json(
    read: _Read, slot: Slot, stable: str | None, warnings: list[str]
) -> list[dict[str, Any]]:
    """The slot's active canary and flag rules, newest first (a candidate that may not serve
    is skipped with a warning)."""
    rules = []
    for target in read.targets:
        if target.slot_id != slot.pk:
            continue
        rollout = target.rollout
        candidate = read.refs.get(target.candidate_id)
        if candidate is None or read.artifact_of[target.candidate_id] != slot.artifact.pk:
            why = read.refusal(target.candidate_id) if candidate is None else "another artifact"
            warnings.append(f"{rollout.reference} is skipped for {slot.name}: {why}.")
            continue
        is_flag = rollout.strategy == RolloutStrategy.FLAG
        rules.append(
            {
                "rollout": rollout.reference,
                "rollout_id": str(rollout.pk),
                "strategy": rollout.strategy,
                "state": rollout.state,
                "target": rollout.target,
                "step": rollout.step,
                "weight": rollout.weight,
                "salt": rollout.salt,
                "cohort": sorted(str(s) for s in rollout.cohort or []),
                "stable": stable,
                "candidate": candidate,
                "flag": {
                    "key": rollout.flag_key,
                    "on": rollout.flag_on,
                    "expires_at": _iso(rollout.flag_expires_at),
                }
                if is_flag
                else None,
            }
        )
    return rules


def _halted_json(slot: Slot, message: str) -> dict[str, Any]:
    """A halted slot (its artifact's safety switch is engaged): no version at all, so a client
    that does not know ``halted`` still answers DISABLED (fail closed)."""
    return {
        "artifact": slot.artifact.path,
        "disabled": True,
        "default": None,
        "override": None,
        "rules": [],
        "warnings": [message],
        "halted": message,
    }


def _slot_json(read: _Read, slot: Slot, halted: str | None = None) -> dict[str, Any]:
    """One slot of the document: its default, the tenant's override, the rules, warnings."""
    if halted is not None:
        return _halted_json(slot, halted)
    artifact = slot.artifact
    warnings: list[str] = []
    default = None
    if artifact.active_version_id is not None:
        default = read.refs.get(artifact.active_version_id)
        if default is None:
            warnings.append(
                f"The default of {slot.name} is skipped: {read.refusal(artifact.active_version_id)}."
            )
    override_json = _override_json(read, slot, warnings)
    stable = override_json["ref"] if override_json else default
    rules = _rules_json(read, slot, stable, warnings)
    return {
        "artifact": artifact.path,
        "disabled": artifact.active_version_id is None,
        "default": default,
        "override": override_json,
        "rules": rules,
        "warnings": warnings,
    }


def _build(tenant_slug: str, application_slug: str, gen: str) -> Snapshot:
    """Read the pointers and their versions (a fixed number of queries, whatever the history)."""
    platform = settings.PLATFORM_TENANT_SLUG
    tenant, app = _application_for(tenant_slug, application_slug)
    # Read before the pointers: the snapshot holds at least every change up to this number
    # (an event appended while it is built makes a new generation, so it is rebuilt anyway).
    sequence = log_size()
    slots = _visible_slots(tenant, app, platform)
    read, versions = _read(tenant, slots, platform)
    # Halted artifacts (safety switch engaged): one query, none unless one is action-eligible.
    switches = engaged_switches(slot.artifact for slot in slots)
    body_slots = {}
    for slot in slots:
        switch = switches.get(slot.artifact.pk)
        halted = halt_message(switch, slot.artifact.path) if switch is not None else None
        body_slots[slot.name] = _slot_json(read, slot, halted)
    artifact_ids = {slot.name: slot.artifact.pk for slot in slots}
    used = {ref for raw in body_slots.values() for ref in _refs_of(raw)}
    body = {
        "format": FORMAT,
        "tenant": tenant.slug,
        "application": app.slug,
        "application_tenant": app.tenant.slug,
        "sequence": sequence,
        "buckets": BUCKETS,
        "slots": body_slots,
        "versions": {ref: entry for ref, entry in sorted(versions.items()) if ref in used},
    }
    data = canonical(body)
    digest = hashlib.sha256(data)
    kid = active_key().kid
    return Snapshot(
        body=body,
        canonical=data,
        sha256=digest.hexdigest(),
        key_id=kid,
        signature=keystore.sign(kid, digest.digest()),
        generation=gen,
        slots=compile_snapshot(body),
        artifact_ids=artifact_ids,
    )


# --- the cache ----------------------------------------------------------------------------

_cache: OrderedDict[tuple[str, str], Snapshot] = OrderedDict()
_cache_lock = threading.Lock()


def snapshot(
    tenant_slug: str, application_slug: str, *, generation_now: str | None = None
) -> Snapshot:
    """The tenant's signed runtime configuration of the application (NotFound if it may not read it).

    Cached per process by (tenant, application, generation): a warm call runs no SQL, only
    ``generation.current()`` (one Redis GET, or one ``stat``), or none when the caller passes
    the generation it read just before (``generation_now``, e.g. the service-token check's).
    The generation is read before the build, so a build that raced a commit is keyed by the
    old generation and dropped.
    """
    gen = generation_now or generation.current()
    key = (tenant_slug, application_slug)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None and hit.generation == gen:
            _cache.move_to_end(key)
            return hit
    built = _build(tenant_slug, application_slug, gen)
    with _cache_lock:
        _cache[key] = built
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return built


def cache_clear() -> None:
    """Forget every cached snapshot of this process (tests; the generation makes it unneeded)."""
    with _cache_lock:
        _cache.clear()


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 weak comparison of an ``If-None-Match`` header against ``etag``."""
    value = if_none_match.strip()
    if value == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in value.split(","))


# --- resolving ----------------------------------------------------------------------------


def _served(
    snap: Snapshot,
    slot: _Slot,
    ref: str,
    why: tuple[str, str],
    warnings: list[str],
    **extra: Any,
) -> Answer:
    """``ref`` served from ``slot``; ``why`` is the answer's (reason, variant)."""
    reason, variant = why
    entry = snap.body["versions"][ref]
    if entry["warning"]:
        warnings.append(entry["warning"])
    return Answer(
        tenant=snap.tenant,
        application=snap.application,
        slot=slot.name,
        reason=reason,
        variant=variant,
        sequence=snap.sequence,
        ref=ref,
        path=entry["path"],
        version=entry["version"],
        sha256=entry["sha256"],
        stage=entry["stage"],
        content_kind=entry["content_kind"],
        content=entry["content"],
        warnings=tuple(warnings),
        **extra,
    )


def _disabled(snap: Snapshot, slot: _Slot, warnings: list[str]) -> Answer:
    return Answer(
        tenant=snap.tenant,
        application=snap.application,
        slot=slot.name,
        reason=Reason.DISABLED,
        variant="disabled",
        sequence=snap.sequence,
        warnings=tuple(warnings),
    )


def _halted(snap: Snapshot, slot: _Slot) -> Answer:
    """The artifact's safety switch is engaged: nothing serves, pins included."""
    return Answer(
        tenant=snap.tenant,
        application=snap.application,
        slot=slot.name,
        reason=Reason.DISABLED,
        variant="halted",
        sequence=snap.sequence,
        warnings=slot.warnings,
        halted=slot.halted,
    )


def _pin_parts(slot: _Slot, pin: str) -> tuple[str, str | None]:
    """(version, sha256 or None) of a pin: ``1.2.0`` or any reference form naming the slot's artifact."""
    text = pin.strip()
    if not text:
        raise DomainError("'pin' is empty.", field="pin")
    if not any(mark in text for mark in ":@#/"):
        try:
            parse_version(text)
        except BrokenReference as exc:
            raise DomainError(f"'pin' is not a version: {exc}", field="pin") from exc
        return text, None
    try:
        ref: Reference = parse_reference(text, tenant=slot.artifact.split("/")[1])
    except BrokenReference as exc:
        raise DomainError(f"'pin' is not a reference: {exc}", field="pin") from exc
    cls, owner, slug = slot.artifact.split("/")
    if (
        ref.slug != slug
        or (ref.class_slug and ref.class_slug != cls)
        or (ref.tenant and ref.tenant != owner)
    ):
        raise NotFound(f"'{pin}' is not a version of {slot.artifact}.", field="pin")
    if not ref.version:
        raise DomainError(f"'{pin}' names no version; a pin needs one.", field="pin")
    return ref.version, ref.sha256


def resolve(
    snap: Snapshot,
    slot_name: str,
    subject: str | None = None,
    pin: str | None = None,
    *,
    now: datetime | None = None,
) -> Answer:
    """What ``slot_name`` serves for ``subject`` (pure: reads only ``snap``).

    Precedence: a pin (``STATIC``; a pin the snapshot does not hold raises ``PinNotInSnapshot``,
    which ``answer`` resolves); each active rollout's rule, newest first (canary ``live``:
    ``SPLIT`` by the subject's bucket, skipped without a subject; canary ``paper``: the cohort,
    ``TARGETING_MATCH``; flag on: ``TARGETING_MATCH``; flag expired: the default with a warning,
    overrides skipped); the tenant's override (``TARGETING_MATCH``); the default (``DEFAULT``);
    nothing: ``DISABLED``. A switched-off slot (no active version) is ``DISABLED`` for everyone;
    a halted one (its artifact's safety switch engaged) too, with variant ``halted``.
    An empty subject counts as no subject.
    """
    slot = snap.slots.get(slot_name)
    if slot is None:
        raise NotFound(
            f"No slot '{slot_name}' in {snap.application} for {snap.tenant}.", field="slot"
        )
    warnings = list(slot.warnings)
    if slot.halted is not None:
        return _halted(snap, slot)
    if slot.disabled:
        return _disabled(snap, slot, [*warnings, f"{slot.name} is switched off."])
    if pin is not None:
        return _pinned_here(snap, slot, pin, warnings)
    moment = now or datetime.now(UTC)
    for rule in slot.rules:
        if rule.strategy == RolloutStrategy.FLAG:
            found = _flag_rule(snap, slot, rule, moment, warnings)
        elif subject:
            found = _canary_rule(snap, slot, rule, subject, warnings)
        else:
            continue
        if found is not None:
            return found
    return _untouched(snap, slot, warnings)


def _pinned_here(snap: Snapshot, slot: _Slot, pin: str, warnings: list[str]) -> Answer:
    """A pin the snapshot holds (``STATIC``); else ``PinNotInSnapshot`` for ``answer``."""
    version, sha256 = _pin_parts(slot, pin)
    ref = slot.by_version.get(version)
    if ref is None:
        raise PinNotInSnapshot(slot.name, version, sha256)
    _check_pin_hash(snap, ref, pin, sha256)
    return _served(snap, slot, ref, (Reason.STATIC, "pinned"), warnings)


def _meta(rule: _Rule) -> dict[str, Any]:
    """What an answer a rule gives says about the rollout."""
    return {"rollout": rule.rollout, "rollout_id": rule.rollout_id, "step": rule.step}


def _flag_rule(
    snap: Snapshot, slot: _Slot, rule: _Rule, moment: datetime, warnings: list[str]
) -> Answer | None:
    """An expired flag serves the default (overrides skipped); a flag that is on, its
    candidate; a flag that is off, nothing (the next rule decides)."""
    if rule.flag_expires is not None and moment >= rule.flag_expires:
        warnings.append(
            f"flag {rule.flag_key} ({rule.rollout}) expired at {_iso(rule.flag_expires)}; "
            "serving the default"
        )
        if slot.default is None:
            return _disabled(snap, slot, warnings)
        return _served(snap, slot, slot.default, (Reason.DEFAULT, "default"), warnings)
    if rule.flag_on:
        return _served(
            snap, slot, rule.candidate, (Reason.TARGETING_MATCH, "on"), warnings, **_meta(rule)
        )
    return None


def _canary_rule(
    snap: Snapshot, slot: _Slot, rule: _Rule, subject: str, warnings: list[str]
) -> Answer | None:
    """A paper canary serves its cohort; a live canary splits subjects by bucket (a bucket
    past the weight gets the stable version, when there is one)."""
    if rule.target == PromotionTarget.PAPER:
        if subject in rule.cohort:
            return _served(snap, slot, rule.candidate, (Reason.TARGETING_MATCH, Arm.CANARY),
                           warnings, arm=Arm.CANARY, **_meta(rule))  # fmt: skip
        return None
    b = bucketing.bucket(salt=rule.salt, slot=slot.name, tenant=snap.tenant, subject=subject)
    if b < rule.weight:
        return _served(snap, slot, rule.candidate, (Reason.SPLIT, Arm.CANARY), warnings,
                       arm=Arm.CANARY, bucket=b, **_meta(rule))  # fmt: skip
    if rule.stable is None:
        return None
    return _served(snap, slot, rule.stable, (Reason.SPLIT, Arm.STABLE), warnings,
                   arm=Arm.STABLE, bucket=b, **_meta(rule))  # fmt: skip


def _untouched(snap: Snapshot, slot: _Slot, warnings: list[str]) -> Answer:
    """No rule applied: the tenant's override, else the default, else nothing."""
    if slot.override is not None:
        meta: dict[str, Any] = {}
        if slot.override_rollout:
            meta = {
                "rollout": slot.override_rollout,
                "rollout_id": slot.override_rollout_id,
                "step": slot.override_step,
            }
        return _served(
            snap, slot, slot.override, (Reason.TARGETING_MATCH, "override"), warnings, **meta
        )
    if slot.default is not None:
        return _served(snap, slot, slot.default, (Reason.DEFAULT, "default"), warnings)
    return _disabled(snap, slot, warnings)


def _check_pin_hash(snap: Snapshot, ref: str, pin: str, sha256: str | None) -> None:
    if sha256 and not snap.body["versions"][ref]["sha256"].startswith(sha256):
        raise DomainError(
            f"'{pin}' is pinned to {sha256[:12]}… but that version has hash "
            f"{snap.body['versions'][ref]['sha256'][:12]}….",
            field="pin",
        )


def _pinned(snap: Snapshot, miss: PinNotInSnapshot) -> Answer:
    """A pin the snapshot does not hold: one indexed lookup, fail closed (remembered per snapshot)."""
    key = (miss.slot, miss.version, miss.sha256 or "")
    with _cache_lock:
        known = snap.pins.get(key)
    if known is None:
        known = _pinned_lookup(snap, miss)
        with _cache_lock:
            snap.pins[key] = known
            while len(snap.pins) > PIN_CACHE_SIZE:
                snap.pins.popitem(last=False)
    if isinstance(known, DomainError):
        raise known
    return known


def _pinned_lookup(snap: Snapshot, miss: PinNotInSnapshot) -> Answer | DomainError:
    slot = snap.slots[miss.slot]
    found = (
        Version.objects.filter(artifact_id=snap.artifact_ids[miss.slot], version=miss.version)
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        return NotFound(f"No version {miss.version} of {slot.artifact}.", field="pin")
    info = servable_versions([found]).get(found)
    if not isinstance(info, ServeInfo):
        return NotFound(
            f"{slot.artifact}/{miss.version} may not serve: {info or 'it is not servable'}.",
            field="pin",
        )
    if miss.sha256 and not info.version.manifest_sha256.startswith(miss.sha256):
        return DomainError(
            f"The pin is to {miss.sha256[:12]}… but {info.version.path} has hash "
            f"{info.version.manifest_sha256[:12]}….",
            field="pin",
        )
    entry = _version_entry(info.version, info)
    warnings = [*slot.warnings, *([entry["warning"]] if entry["warning"] else [])]
    return Answer(
        tenant=snap.tenant,
        application=snap.application,
        slot=slot.name,
        reason=Reason.STATIC,
        variant="pinned",
        sequence=snap.sequence,
        ref=version_ref(info.version),
        path=entry["path"],
        version=entry["version"],
        sha256=entry["sha256"],
        stage=entry["stage"],
        content_kind=entry["content_kind"],
        content=entry["content"],
        warnings=tuple(warnings),
    )


def answer(  # noqa: PLR0913 - the runtime's one entry: its arguments are the request's fields
    tenant_slug: str,
    application_slug: str,
    slot_name: str,
    subject: str | None = None,
    pin: str | None = None,
    *,
    generation_now: str | None = None,
) -> Answer:
    """The server's answer for one slot: the cached snapshot, ``resolve``, and pins it lacks.

    Raises NotFound (tenant, application, slot, pin) or DomainError (a malformed pin). A warm
    answer runs no SQL; a pin outside the snapshot costs one indexed lookup once per generation.
    """
    snap = snapshot(tenant_slug, application_slug, generation_now=generation_now)
    try:
        return resolve(snap, slot_name, subject, pin)
    except PinNotInSnapshot as miss:
        return _pinned(snap, miss)
