"""RegistryClient: the registry's signed runtime snapshot, resolved in process, outage-proof.

The client fetches ``GET /api/v1/runtime/{tenant}/{application}/`` (a service token as
``Authorization: Bearer``, ``If-None-Match`` with the last ``ETag``), verifies it, and answers
``resolve(slot, subject)`` from memory exactly as the server's ``rollouts.runtime.resolve``
would (pin ``STATIC``; active rollouts' rules newest first: canary live ``SPLIT``, canary paper
cohort ``TARGETING_MATCH``, flag on ``TARGETING_MATCH``, expired flag ``DEFAULT`` with a warning;
the tenant's override ``TARGETING_MATCH``; the default ``DEFAULT``; else ``DISABLED``).

Trust: a snapshot is used only when the SHA-256 of the RFC 8785 bytes of ``snapshot`` equals
``sha256`` and the Ed25519 signature of those 32 bytes verifies with the public key
``signature.key_id`` names. Keys come from ``public_keys`` (pinned: the strong setting, a
persisted snapshot is then only as trusted as those keys), else from ``GET /api/v1/keys/`` on
first contact (trust on first use), kept for the process and written to ``cache_dir/keys.json``
so a cold start can verify the persisted snapshot; whoever can write both files can then forge
one, so production should pin. A snapshot with an unknown key id is refused (with fetched keys,
the keys are fetched once again first: a rotation). A snapshot older (lower ``sequence``) than
the one held is refused (no replay of an old signed document).

Freshness and reasons: while the last contact with the registry succeeded (200 or 304), answers
are ``freshness="LIVE"`` and ``reason`` is the evaluation's (``STATIC``, ``SPLIT``, ...). When
the registry cannot be reached, or the snapshot came from ``cache_dir`` or ``bootstrap`` and no
contact has succeeded yet, the same evaluation serves from the held snapshot with
``reason="CACHED"`` (``freshness="CACHED"``) until ``stale_after_seconds`` after the last
successful contact, then ``reason="STALE"``. ``rule_reason`` always holds the evaluation's
reason. With no snapshot at all, a slot with a configured ``pins`` entry answers
``reason="FALLBACK"``; otherwise ``reason="DISABLED"`` with a warning. Nothing here raises for
an outage; only a malformed pin (``PinError``) and ``render`` without a template raise.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256 as _sha256
from pathlib import Path
from typing import Any, NamedTuple

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry_client.bucketing import BUCKETS
from registry_client.telemetry import Reporter

__all__ = [
    "FORMAT",
    "MissingVariables",
    "NoContent",
    "PinError",
    "RegistryClient",
    "Resolution",
    "Snapshot",
    "SnapshotError",
    "load_snapshot",
    "template_variables",
]

log = logging.getLogger("registry_client")

#: The snapshot format this client understands.
FORMAT = "governance-runtime/1"

LIVE, CACHED, STALE, NONE = "LIVE", "CACHED", "STALE", "NONE"

_VARIABLE_RE = re.compile(
    r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)\s*(?:\|[^{}]*)?-?\}\}"
)


class Resolution(NamedTuple):
    """One slot's answer for one request (immutable). Fields as ``POST /api/v1/resolve/`` plus
    ``freshness`` (``LIVE``/``CACHED``/``STALE``, ``NONE`` without a snapshot) and
    ``rule_reason`` (the evaluation's reason, also when ``reason`` says ``CACHED``/``STALE``)."""

    slot: str
    ref: str | None
    version: str | None
    sha256: str | None
    content: Any
    content_kind: str | None
    reason: str
    variant: str
    rollout: str | None
    rollout_id: str | None
    step: int | None
    arm: str | None
    bucket: int | None
    sequence: int | None
    warnings: tuple[str, ...]
    freshness: str
    rule_reason: str
    path: str | None
    stage: str | None
    tenant: str
    application: str
    #: Set while the artifact's safety switch is engaged (reason ``DISABLED``, variant
    #: ``halted``, no version): "halted: safety switch engaged on <artifact> by <user>: <reason>".
    halted: str | None = None


_BUCKET_AT = Resolution._fields.index("bucket")
_new = tuple.__new__


class SnapshotError(ValueError):
    """A runtime document that may not be used (malformed, bad hash or signature, unknown key)."""


class PinError(ValueError):
    """A pin that is malformed, names another artifact, or does not match its hash."""


class NoContent(LookupError):
    """``render`` on an answer with no text to render (disabled, a file, or a bare fallback)."""


class MissingVariables(KeyError):
    """``render`` was not given every variable the template uses; ``missing`` names them."""

    def __init__(self, slot: str, missing: list[str]) -> None:
        super().__init__(f"{slot}: missing variable(s) {', '.join(missing)}")
        self.slot = slot
        self.missing = missing

    def __str__(self) -> str:
        return str(self.args[0])


def template_variables(text: str) -> list[str]:
    """Names used as ``{{ name }}`` (filters allowed), unique, first-seen order (the registry's rule)."""
    return list(dict.fromkeys(m.group(1) for m in _VARIABLE_RE.finditer(text)))


# --- verified, compiled snapshots ------------------------------------------------------------


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class _Slot:
    name: str
    artifact: str
    disabled: bool
    default: str | None
    override: str | None
    override_meta: tuple[str | None, str | None, int | None]
    rules: tuple[_Rule, ...]
    warnings: tuple[str, ...]
    by_version: Mapping[str, str]
    halted: str | None = None


@dataclass(frozen=True)
class _Canary:
    """A slot whose first rule is a live canary: both arms precomputed but the bucket."""

    prefix: str
    weight: int
    candidate: tuple[tuple[Any, ...], tuple[Any, ...]]
    stable: tuple[tuple[Any, ...], tuple[Any, ...]] | None


class Snapshot:
    """A verified runtime document, indexed for resolving (immutable once built)."""

    def __init__(self, document: bytes, body: dict[str, Any], key_id: str) -> None:
        self.document = document
        self.body = body
        self.key_id = key_id
        self.tenant: str = str(body["tenant"])
        self.application: str = str(body["application"])
        self.sequence: int = int(body["sequence"])
        rest = {k: v for k, v in body.items() if k != "sequence"}
        self.etag = f'"{self.sequence}-{_sha256(rfc8785.dumps(rest)).hexdigest()[:16]}"'
        self.versions: dict[str, Any] = body["versions"]
        self.slots: dict[str, _Slot] = {
            name: _compile_slot(name, raw, self.versions) for name, raw in body["slots"].items()
        }
        #: slot -> the LIVE answer when it does not depend on the subject or the time.
        self.fixed: dict[str, Resolution] = {}
        #: slot -> the precomputed arms of a leading live canary rule.
        self.canary: dict[str, _Canary] = {}
        for slot in self.slots.values():
            if _subject_free(slot):
                self.fixed[slot.name] = _evaluate(self, slot, None, None, None)  # type: ignore[assignment]
            elif slot.rules and not slot.disabled:
                first = slot.rules[0]
                if first.strategy == "canary" and first.target == "live":
                    self.canary[slot.name] = _canary_plan(self, slot, first)


def _compile_slot(name: str, raw: dict[str, Any], versions: dict[str, Any]) -> _Slot:
    override = raw.get("override") or {}
    rules = tuple(
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
    )
    refs = [raw["default"], override.get("ref")]
    for rule in raw["rules"]:
        refs += [rule["stable"], rule["candidate"]]
    by_version = {
        versions[ref]["version"]: ref
        for ref in refs
        if ref and ref in versions and versions[ref]["path"].rsplit("/", 1)[0] == raw["artifact"]
    }
    return _Slot(
        name=name,
        artifact=raw["artifact"],
        disabled=bool(raw["disabled"]),
        default=raw["default"],
        override=override.get("ref"),
        override_meta=(override.get("rollout"), override.get("rollout_id"), override.get("step")),
        rules=rules,
        warnings=tuple(raw.get("warnings", ())),
        by_version=by_version,
        halted=raw.get("halted"),
    )


def _subject_free(slot: _Slot) -> bool:
    if slot.disabled:
        return True
    for rule in slot.rules:
        if rule.strategy == "flag":
            if rule.flag_expires is not None:
                return False  # the answer changes at the expiry
            if rule.flag_on:
                return True
            continue
        return False  # a canary rule: depends on the subject
    return True


class _Pick(NamedTuple):
    """What a rule serves: the version, why, and (for a rollout's rule) which rollout and arm."""

    ref: str
    reason: str
    variant: str
    rollout: tuple[str | None, str | None, int | None] = (None, None, None)
    arm: str | None = None
    bucket: int | None = None


def _served(snap: Snapshot, slot: _Slot, pick: _Pick, warnings: list[str]) -> Resolution:
    ref, reason, variant, rollout, arm, bucket = pick
    entry = snap.versions[ref]
    if entry["warning"]:
        warnings.append(entry["warning"])
    return Resolution(
        slot=slot.name,
        ref=ref,
        version=entry["version"],
        sha256=entry["sha256"],
        content=entry["content"],
        content_kind=entry["content_kind"],
        reason=reason,
        variant=variant,
        rollout=rollout[0],
        rollout_id=rollout[1],
        step=rollout[2],
        arm=arm,
        bucket=bucket,
        sequence=snap.sequence,
        warnings=tuple(warnings),
        freshness=LIVE,
        rule_reason=reason,
        path=entry["path"],
        stage=entry["stage"],
        tenant=snap.tenant,
        application=snap.application,
    )


def _disabled(
    slot: str, warnings: Iterable[str], sequence: int | None, tenant: str, application: str
) -> Resolution:
    return Resolution(
        slot=slot,
        ref=None,
        version=None,
        sha256=None,
        content=None,
        content_kind=None,
        reason="DISABLED",
        variant="disabled",
        rollout=None,
        rollout_id=None,
        step=None,
        arm=None,
        bucket=None,
        sequence=sequence,
        warnings=tuple(warnings),
        freshness=LIVE,
        rule_reason="DISABLED",
        path=None,
        stage=None,
        tenant=tenant,
        application=application,
    )


def _canary_plan(snap: Snapshot, slot: _Slot, rule: _Rule) -> _Canary:
    meta = (rule.rollout, rule.rollout_id, rule.step)

    def split(answer: Resolution) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        return tuple(answer[:_BUCKET_AT]), tuple(answer[_BUCKET_AT + 1 :])

    cand = _served(
        snap, slot, _Pick(rule.candidate, "SPLIT", "canary", meta, "canary"), list(slot.warnings)
    )
    stable = None
    if rule.stable is not None:
        stable = split(
            _served(
                snap,
                slot,
                _Pick(rule.stable, "SPLIT", "stable", meta, "stable"),
                list(slot.warnings),
            )
        )
    return _Canary(
        prefix=f"{rule.salt}:{slot.name}:{snap.tenant}:",
        weight=rule.weight,
        candidate=split(cand),
        stable=stable,
    )


def _bucket(salt: str, slot: str, tenant: str, subject: str) -> int:
    digest = _sha256(f"{salt}:{slot}:{tenant}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _pin_parts(slot: _Slot, pin: str) -> tuple[str, str | None]:
    """(version, sha256 prefix or None): ``1.2.0`` or a reference naming the slot's artifact."""
    text = pin.strip()
    if not text:
        raise PinError("'pin' is empty.")
    if not any(mark in text for mark in ":@#/"):
        return text, None
    cls, owner, slug = slot.artifact.split("/")
    body, _, digest = text.partition("#")
    if digest and not re.fullmatch(r"[0-9a-f]{8,64}", digest):
        raise PinError(f"'{pin}' has a malformed hash.")
    segments = body.split("/")
    version: str | None
    if len(segments) == 4:
        p_cls, p_owner, p_slug, version = segments
    elif len(segments) == 3:
        p_cls, p_owner, rest = segments
        p_slug, _, version = rest.partition("@")
    elif len(segments) == 1:
        p_cls, p_owner = cls, owner
        sep = ":" if ":" in body else "@"
        p_slug, _, version = body.partition(sep)
    else:
        raise PinError(f"'{pin}' is not a reference.")
    if (p_slug, p_cls, p_owner) != (slug, cls, owner):
        raise PinError(f"'{pin}' is not a version of {slot.artifact}.")
    if not version:
        raise PinError(f"'{pin}' names no version; a pin needs one.")
    return version, digest or None


def _evaluate(
    snap: Snapshot, slot: _Slot, subject: str | None, pin: str | None, now: datetime | None
) -> Resolution | None:
    """``rollouts.runtime.resolve`` ported; None for a pin the snapshot does not hold."""
    warnings = list(slot.warnings)
    if slot.halted is not None:  # the safety switch: nothing serves, pins included
        halted = _disabled(slot.name, warnings, snap.sequence, snap.tenant, snap.application)
        return halted._replace(variant="halted", halted=slot.halted)
    if slot.disabled:
        warnings.append(f"{slot.name} is switched off.")
        return _disabled(slot.name, warnings, snap.sequence, snap.tenant, snap.application)
    if pin is not None:
        return _evaluate_pin(snap, slot, pin, warnings)
    for rule in slot.rules:
        if rule.strategy == "flag":
            answer = _evaluate_flag(snap, slot, rule, warnings, now)
        elif subject:
            answer = _evaluate_canary(snap, slot, rule, subject, warnings)
        else:
            continue
        if answer is not None:
            return answer
    return _evaluate_rest(snap, slot, warnings)


def _evaluate_pin(snap: Snapshot, slot: _Slot, pin: str, warnings: list[str]) -> Resolution | None:
    """A pinned version (None when the snapshot does not hold it)."""
    version, digest = _pin_parts(slot, pin)
    ref = slot.by_version.get(version)
    if ref is None:
        return None
    held = snap.versions[ref]["sha256"]
    if digest and not held.startswith(digest):
        raise PinError(
            f"'{pin}' is pinned to {digest[:12]}… but that version has hash {held[:12]}…."
        )
    return _served(snap, slot, _Pick(ref, "STATIC", "pinned"), warnings)


def _evaluate_flag(
    snap: Snapshot, slot: _Slot, rule: _Rule, warnings: list[str], now: datetime | None
) -> Resolution | None:
    """A flag rule's answer; None when it is off (the next rule decides)."""
    if rule.flag_expires is not None:
        moment = now or datetime.now(UTC)
        if moment >= rule.flag_expires:
            warnings.append(
                f"flag {rule.flag_key} ({rule.rollout}) expired at "
                f"{_iso(rule.flag_expires)}; serving the default"
            )
            if slot.default is None:
                return _disabled(slot.name, warnings, snap.sequence, snap.tenant, snap.application)
            return _served(snap, slot, _Pick(slot.default, "DEFAULT", "default"), warnings)
    if rule.flag_on:
        meta = (rule.rollout, rule.rollout_id, rule.step)
        return _served(snap, slot, _Pick(rule.candidate, "TARGETING_MATCH", "on", meta), warnings)
    return None


def _evaluate_canary(
    snap: Snapshot, slot: _Slot, rule: _Rule, subject: str, warnings: list[str]
) -> Resolution | None:
    """A canary rule's answer for a subject; None when it does not place the subject."""
    meta = (rule.rollout, rule.rollout_id, rule.step)
    if rule.target == "paper":
        if subject in rule.cohort:
            pick = _Pick(rule.candidate, "TARGETING_MATCH", "canary", meta, "canary")
            return _served(snap, slot, pick, warnings)
        return None
    b = _bucket(rule.salt, slot.name, snap.tenant, subject)
    if b < rule.weight:
        return _served(
            snap, slot, _Pick(rule.candidate, "SPLIT", "canary", meta, "canary", b), warnings
        )
    if rule.stable is None:
        return None
    return _served(snap, slot, _Pick(rule.stable, "SPLIT", "stable", meta, "stable", b), warnings)


def _evaluate_rest(snap: Snapshot, slot: _Slot, warnings: list[str]) -> Resolution:
    """No rule decided: the override, else the default, else disabled."""
    if slot.override is not None:
        meta = slot.override_meta if slot.override_meta[0] else (None, None, None)
        pick = _Pick(slot.override, "TARGETING_MATCH", "override", meta)
        return _served(snap, slot, pick, warnings)
    if slot.default is not None:
        return _served(snap, slot, _Pick(slot.default, "DEFAULT", "default"), warnings)
    return _disabled(slot.name, warnings, snap.sequence, snap.tenant, snap.application)


def _verify_key(key_hex: str, signature_hex: str, digest: bytes) -> None:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex)).verify(
            bytes.fromhex(signature_hex), digest
        )
    except (InvalidSignature, ValueError) as exc:
        raise SnapshotError("the snapshot's signature does not verify") from exc


def load_snapshot(data: bytes, public_keys: Mapping[str, str]) -> Snapshot:
    """A verified, indexed snapshot from a runtime document's bytes (SnapshotError otherwise)."""
    try:
        document = json.loads(data)
        body, signature = document["snapshot"], document["signature"]
        key_id = signature["key_id"]
        if not isinstance(body, dict) or not isinstance(key_id, str):
            raise TypeError("'snapshot' is not an object")
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError(f"not a signed runtime snapshot: {exc!r}") from exc
    if body.get("format") != FORMAT:
        raise SnapshotError(f"unknown snapshot format {body.get('format')!r}")
    if key_id not in public_keys:
        raise SnapshotError(f"signed by unknown key {key_id!r}")
    try:
        digest = _sha256(rfc8785.dumps(body)).digest()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise SnapshotError(f"the snapshot is not canonical JSON: {exc}") from exc
    if digest.hex() != document.get("sha256"):
        raise SnapshotError("the snapshot does not match its sha256")
    _verify_key(public_keys[key_id], str(signature.get("value", "")), digest)
    try:
        return Snapshot(bytes(data), body, key_id)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotError(f"the snapshot is malformed: {exc!r}") from exc


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    """What the hot path reads: one reference, swapped whole."""

    snapshot: Snapshot | None
    freshness: str
    fixed: Mapping[str, Resolution]
    canary: Mapping[str, _Canary]
    stale_at: float | None  # CACHED only: the clock value at which it turns STALE


def _label(answer: Resolution, freshness: str) -> Resolution:
    if freshness == LIVE:
        return answer
    reason = answer.reason if freshness == NONE else freshness
    return answer._replace(reason=reason, freshness=freshness)


def _view(snapshot: Snapshot | None, freshness: str, stale_at: float | None) -> _View:
    if snapshot is None:
        return _View(None, NONE, {}, {}, None)
    if freshness == LIVE:
        return _View(snapshot, LIVE, snapshot.fixed, snapshot.canary, None)
    fixed = {name: _label(answer, freshness) for name, answer in snapshot.fixed.items()}
    canary = {name: _relabel(plan, freshness) for name, plan in snapshot.canary.items()}
    return _View(snapshot, freshness, fixed, canary, stale_at)


def _relabel(plan: _Canary, freshness: str) -> _Canary:
    def arm(
        parts: tuple[tuple[Any, ...], tuple[Any, ...]],
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        answer = _label(Resolution._make((*parts[0], None, *parts[1])), freshness)
        return tuple(answer[:_BUCKET_AT]), tuple(answer[_BUCKET_AT + 1 :])

    stable = arm(plan.stable) if plan.stable is not None else None
    return _Canary(plan.prefix, plan.weight, arm(plan.candidate), stable)


class _Fetched(NamedTuple):
    status: int
    body: bytes
    headers: Mapping[str, str]


_clients: weakref.WeakSet[RegistryClient] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RegistryClient:
    """The runtime configuration of one application for one tenant (see the module's docs).

    ``url`` the registry (http/https); ``token`` a service token (``runtime:read``, plus
    ``telemetry:write`` with ``telemetry=True``). ``public_keys`` ``{key_id: hex Ed25519}`` pins
    the signing keys (else fetched from ``/api/v1/keys/`` on first contact). ``cache_dir``: each
    good snapshot is written there atomically (``<tenant>.<application>.runtime.json``) and read
    back, verified, on start; ``bootstrap`` a runtime document shipped with the service for a
    first start (the higher ``sequence`` of the two serves). ``poll_seconds`` ± ``jitter``
    (a fraction) between polls; after errors the delay doubles up to ``max_backoff_seconds`` and
    is never shorter than a ``Retry-After``. ``stale_after_seconds`` after the last good contact
    ``CACHED`` turns ``STALE``. ``pins`` ``{slot: version}`` or ``{slot: {"version", "content",
    "ref", ...}}`` answers ``FALLBACK`` when there is no snapshot (or no such slot in it).
    ``initial_fetch`` polls once in the constructor (at most ``timeout`` seconds when the
    registry is down); ``background`` starts the refresher thread; ``clock`` is the monotonic
    clock freshness is measured with (injectable for tests).
    """

    def __init__(  # noqa: PLR0913 - each keyword-only parameter is a documented client setting
        self,
        url: str,
        token: str | None,
        application: str,
        tenant: str,
        *,
        public_keys: Mapping[str, str] | None = None,
        cache_dir: str | Path | None = None,
        bootstrap: str | Path | None = None,
        poll_seconds: float = 15.0,
        jitter: float = 0.2,
        stale_after_seconds: float = 300.0,
        max_backoff_seconds: float = 120.0,
        pins: Mapping[str, str | Mapping[str, Any]] | None = None,
        telemetry: bool = False,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        background: bool = True,
        initial_fetch: bool = True,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"url must be http(s)://..., not {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.application = application
        self.tenant = tenant
        self.poll_seconds = float(poll_seconds)
        self.jitter = max(0.0, min(float(jitter), 1.0))
        self.stale_after_seconds = float(stale_after_seconds)
        self.max_backoff_seconds = float(max_backoff_seconds)
        self.timeout = float(timeout)
        self.telemetry = telemetry
        #: Usage reporting (``report``): a background sender, only with ``telemetry=True``.
        self.reporter: Reporter | None = (
            Reporter(self.url, token, application, timeout=self.timeout)
            if telemetry and token
            else None
        )
        self.pins = dict(pins or {})
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.bootstrap = Path(bootstrap) if bootstrap is not None else None
        self._clock = clock
        self._pinned_keys = public_keys is not None
        self._keys: dict[str, str] = dict(public_keys or {})
        self._lock = threading.Lock()  # state changes (views, counters); never held for I/O
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._background = background
        self._closed = False
        self._listeners: list[Callable[[RegistryClient, int | None, int], None]] = []
        self._pin_answers: dict[tuple[int, str, str], Resolution | PinError] = {}
        self._failures = 0
        self._retry_after: float | None = None
        self._confirmed: float | None = None  # clock value of the last good contact
        self._view: _View = _view(None, NONE, None)
        #: Counters for operators and tests.
        self.stats: dict[str, int] = {
            "fetched": 0,
            "not_modified": 0,
            "failures": 0,
            "refused": 0,
        }
        self.last_status: int | None = None
        self.last_body_bytes: int | None = None
        self.last_error: str | None = None
        self._load_local()
        _clients.add(self)
        if initial_fetch:
            self.refresh()
        if background:
            self._start()

    # --- the hot path ------------------------------------------------------------------------

    def resolve(self, slot: str, subject: str | None = None, pin: str | None = None) -> Resolution:
        """What ``slot`` serves for ``subject`` (no network call unless pinned outside the snapshot)."""
        view = self._view
        if pin is None:
            answer = view.fixed.get(slot)
            if answer is not None:
                if view.stale_at is None or self._clock() < view.stale_at:
                    return answer
            elif subject:
                plan = view.canary.get(slot)
                if plan is not None and (view.stale_at is None or self._clock() < view.stale_at):
                    b = (
                        int.from_bytes(
                            _sha256((plan.prefix + subject).encode()).digest()[:8], "big"
                        )
                        % BUCKETS
                    )
                    if b < plan.weight:
                        head, tail = plan.candidate
                        return _new(Resolution, (*head, b, *tail))
                    if plan.stable is not None:
                        head, tail = plan.stable
                        return _new(Resolution, (*head, b, *tail))
        return self._resolve_slow(view, slot, subject, pin)

    def _resolve_slow(
        self, view: _View, slot: str, subject: str | None, pin: str | None
    ) -> Resolution:
        if view.stale_at is not None and self._clock() >= view.stale_at:
            view = self._go_stale(view)
        snap = view.snapshot
        if snap is None:
            return self._fallback(slot, "no runtime snapshot is available", None)
        plan = snap.slots.get(slot)
        if plan is None:
            return self._fallback(
                slot, f"No slot '{slot}' in {snap.application} for {snap.tenant}.", view
            )
        answer = _evaluate(snap, plan, subject or None, pin, None)
        if answer is None:
            assert pin is not None
            return self._pin_outside(view, slot, pin)
        return _label(answer, view.freshness)

    def _go_stale(self, view: _View) -> _View:
        with self._lock:
            if self._view is view:
                self._view = _view(view.snapshot, STALE, None)
            return self._view

    def _fallback(self, slot: str, why: str, view: _View | None) -> Resolution:
        freshness = view.freshness if view is not None else NONE
        sequence = view.snapshot.sequence if view is not None and view.snapshot else None
        configured = self.pins.get(slot)
        if configured is None:
            answer = _disabled(slot, (why,), sequence, self.tenant, self.application)
            return answer._replace(freshness=freshness)
        spec: Mapping[str, Any] = (
            {"version": configured} if isinstance(configured, str) else configured
        )
        content = spec.get("content")
        return Resolution(
            slot=slot,
            ref=spec.get("ref"),
            version=spec.get("version"),
            sha256=spec.get("sha256"),
            content=content,
            content_kind=spec.get("content_kind", "text" if isinstance(content, str) else None),
            reason="FALLBACK",
            variant="fallback",
            rollout=None,
            rollout_id=None,
            step=None,
            arm=None,
            bucket=None,
            sequence=sequence,
            warnings=(f"{why}; serving the configured pin",),
            freshness=freshness,
            rule_reason="FALLBACK",
            path=None,
            stage=None,
            tenant=self.tenant,
            application=self.application,
        )

    def _pin_outside(self, view: _View, slot: str, pin: str) -> Resolution:
        """A pin the snapshot does not hold: ``POST /api/v1/resolve/`` once per snapshot."""
        assert view.snapshot is not None
        key = (view.snapshot.sequence, slot, pin)
        known = self._pin_answers.get(key)
        if known is None and view.freshness != LIVE:  # the registry is away: do not wait on it
            return self._fallback(slot, f"pin {pin!r} is not in the snapshot", view)
        if known is None:
            body = {
                "tenant": self.tenant,
                "application": self.application,
                "slot": slot,
                "pin": pin,
            }
            try:
                got = self._request(
                    "/api/v1/resolve/", method="POST", data=json.dumps(body).encode()
                )
            except OSError as exc:
                return self._fallback(slot, f"pin {pin!r} is not in the snapshot ({exc})", view)
            if got.status == 200:
                raw = json.loads(got.body)
                known = Resolution(
                    slot=slot,
                    ref=raw.get("ref"),
                    version=raw.get("version"),
                    sha256=raw.get("sha256"),
                    content=raw.get("content"),
                    content_kind=raw.get("content_kind"),
                    reason=raw.get("reason", "STATIC"),
                    variant=raw.get("variant", "pinned"),
                    rollout=None,
                    rollout_id=None,
                    step=None,
                    arm=None,
                    bucket=None,
                    sequence=raw.get("sequence"),
                    warnings=tuple(raw.get("warnings") or ()),
                    freshness=LIVE,
                    rule_reason=raw.get("reason", "STATIC"),
                    path=raw.get("path"),
                    stage=raw.get("stage"),
                    tenant=self.tenant,
                    application=self.application,
                )
            elif got.status in (400, 404):
                try:
                    detail = json.loads(got.body).get("detail", "")
                except ValueError:
                    detail = ""
                known = PinError(f"'{pin}' may not serve: {detail}".strip())
            else:
                return self._fallback(
                    slot, f"pin {pin!r} is not in the snapshot (HTTP {got.status})", view
                )
            if len(self._pin_answers) > 256:
                self._pin_answers.clear()
            self._pin_answers[key] = known
        if isinstance(known, PinError):
            raise known
        return known

    # --- rendering ---------------------------------------------------------------------------

    def render(
        self,
        slot: str,
        subject: str | None = None,
        variables: Mapping[str, Any] | None = None,
        pin: str | None = None,
    ) -> str:
        """The slot's text for ``subject`` with ``{{ name }}`` filled from ``variables``.

        Dotted names (``{{ customer.name }}``) look into mappings and attributes; filters
        (``{{ x | upper }}``) are not applied (the value is inserted as text). Raises
        ``MissingVariables`` naming every variable not given, ``NoContent`` when the answer
        has no text (disabled, a file, a fallback without content).
        """
        answer = self.resolve(slot, subject, pin)
        if not isinstance(answer.content, str):
            raise NoContent(f"{slot} has no text to render ({answer.reason}).")
        values = variables or {}
        missing: list[str] = []
        found: dict[str, str] = {}
        for name in template_variables(answer.content):
            value = _lookup(values, name)
            if value is _MISSING:
                missing.append(name)
            else:
                found[name] = str(value)
        if missing:
            raise MissingVariables(slot, missing)
        return _VARIABLE_RE.sub(lambda m: found[m.group(1)], answer.content)

    # --- state ------------------------------------------------------------------------------

    @property
    def sequence(self) -> int | None:
        """The ``sequence`` of the snapshot being served (None without one)."""
        snap = self._view.snapshot
        return snap.sequence if snap is not None else None

    @property
    def freshness(self) -> str:
        view = self._view
        if view.stale_at is not None and self._clock() >= view.stale_at:
            view = self._go_stale(view)
        return view.freshness

    @property
    def snapshot(self) -> Snapshot | None:
        return self._view.snapshot

    def add_listener(self, listener: Callable[[RegistryClient, int | None, int], None]) -> None:
        """``listener(client, old_sequence, new_sequence)`` after each new snapshot (errors ignored)."""
        self._listeners.append(listener)

    def _install(self, snap: Snapshot, live: bool, confirmed: float | None = None) -> None:
        with self._lock:
            old = self._view.snapshot
            if live:
                self._confirmed = self._clock()
                self._view = _view(snap, LIVE, None)
            else:
                self._confirmed = confirmed
                stale_at = (confirmed or self._clock()) + self.stale_after_seconds
                self._view = _view(snap, CACHED, stale_at)
        for listener in list(self._listeners):
            try:
                listener(self, old.sequence if old else None, snap.sequence)
            except Exception:  # a listener never breaks the client
                log.exception("registry_client listener failed")

    def _confirm(self) -> None:
        with self._lock:
            self._confirmed = self._clock()
            view = self._view
            if view.snapshot is not None and view.freshness != LIVE:
                self._view = _view(view.snapshot, LIVE, None)

    def _degrade(self) -> None:
        with self._lock:
            view = self._view
            if view.snapshot is not None and view.freshness == LIVE:
                stale_at = (self._confirmed or self._clock()) + self.stale_after_seconds
                self._view = _view(view.snapshot, CACHED, stale_at)

    # --- local files -------------------------------------------------------------------------

    @property
    def cache_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        name = f"{_safe(self.tenant)}.{_safe(self.application)}.runtime.json"
        return self.cache_dir / name

    def _load_local(self) -> None:
        if not self._pinned_keys and self.cache_dir is not None:
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                self._keys.update(json.loads((self.cache_dir / "keys.json").read_text()))
        best: tuple[Snapshot, float] | None = None
        for path in (self.cache_path, self.bootstrap):
            if path is None:
                continue
            try:
                data = path.read_bytes()
                age = max(0.0, time.time() - path.stat().st_mtime)
            except OSError:
                continue
            try:
                snap = self._verified(data)
            except SnapshotError as exc:
                self.stats["refused"] += 1
                log.warning("registry_client: refusing %s: %s", path, exc)
                continue
            if best is None or snap.sequence > best[0].sequence:
                best = (snap, age)
        if best is not None:
            self._install(best[0], live=False, confirmed=self._clock() - best[1])

    def _verified(self, data: bytes) -> Snapshot:
        snap = load_snapshot(data, self._keys)
        if snap.tenant != self.tenant or snap.application != self.application:
            raise SnapshotError(
                f"the snapshot is for {snap.tenant}/{snap.application}, "
                f"not {self.tenant}/{self.application}"
            )
        return snap

    def _persist(self, snap: Snapshot) -> None:
        path = self.cache_path
        if path is None:
            return
        try:
            _atomic_write(path, snap.document)
        except OSError as exc:
            log.warning("registry_client: cannot persist the snapshot to %s: %s", path, exc)

    def _touch(self) -> None:
        """A 304 confirmed the persisted snapshot: its age (mtime) starts again for a cold start."""
        path = self.cache_path
        if path is not None:
            with contextlib.suppress(OSError):
                os.utime(path)

    # --- the network -------------------------------------------------------------------------

    def _request(
        self,
        path: str,
        *,
        method: str = "GET",
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> _Fetched:
        # the scheme is checked in __init__ (http or https only)
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        request.add_header("Accept", "application/json")
        request.add_header("User-Agent", "governance-registry-client/0.1")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return _Fetched(response.status, response.read(), dict(response.headers.items()))
        except urllib.error.HTTPError as exc:
            body = exc.read() if exc.fp is not None else b""
            return _Fetched(exc.code, body, dict(exc.headers.items()) if exc.headers else {})

    def _fetch_keys(self) -> None:
        got = self._request("/api/v1/keys/", auth=False)
        if got.status != 200:
            raise OSError(f"GET /api/v1/keys/ answered {got.status}")
        listed = json.loads(got.body)
        # A revoked key (compromised) signs nothing this client accepts, even if it held it before.
        for k in listed:
            if k.get("revoked_at"):
                self._keys.pop(str(k["kid"]), None)
        self._keys.update(
            {str(k["kid"]): str(k["public_key"]) for k in listed if not k.get("revoked_at")}
        )
        if self.cache_dir is not None:
            try:
                _atomic_write(
                    self.cache_dir / "keys.json", json.dumps(self._keys, sort_keys=True).encode()
                )
            except OSError as exc:
                log.warning("registry_client: cannot persist the keys: %s", exc)

    def refresh(self) -> bool:
        """One poll now: True when a new snapshot was installed. Never raises for an outage."""
        with self._refresh_lock:
            try:
                return self._poll()
            except Exception as exc:  # noqa: BLE001 -- an outage (or a bad answer) never raises
                self._failed(f"{type(exc).__name__}: {exc}", None)
                return False

    def _poll(self) -> bool:
        view = self._view
        headers = {}
        if view.snapshot is not None:
            headers["If-None-Match"] = view.snapshot.etag
        path = (
            f"/api/v1/runtime/{urllib.parse.quote(self.tenant, safe='')}/"
            f"{urllib.parse.quote(self.application, safe='')}/"
        )
        got = self._request(path, headers=headers)
        self.last_status = got.status
        self.last_body_bytes = len(got.body)
        if got.status == 304:
            self.stats["not_modified"] += 1
            self._succeeded()
            self._confirm()
            self._touch()
            return False
        if got.status != 200:
            self._failed(f"HTTP {got.status}", got.headers)
            return False
        try:
            snap = self._checked(got.body)
        except SnapshotError as exc:
            self.stats["refused"] += 1
            self._failed(f"refused: {exc}", None)
            return False
        self.stats["fetched"] += 1
        self._succeeded()
        held = view.snapshot
        if held is not None and snap.sequence < held.sequence:
            self._failed(f"refused: sequence {snap.sequence} < held {held.sequence}", None)
            return False
        self._install(snap, live=True)
        self._persist(snap)
        return held is None or snap.document != held.document

    def _checked(self, data: bytes) -> Snapshot:
        if not self._pinned_keys:
            try:
                key_id = json.loads(data)["signature"]["key_id"]
            except (ValueError, KeyError, TypeError) as exc:
                raise SnapshotError(f"not a signed runtime snapshot: {exc!r}") from exc
            if key_id not in self._keys:
                try:
                    self._fetch_keys()
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    raise SnapshotError(f"cannot fetch the public keys: {exc}") from exc
        return self._verified(data)

    def _succeeded(self) -> None:
        self._failures = 0
        self._retry_after = None
        self.last_error = None

    def _failed(self, why: str, headers: Mapping[str, str] | None) -> None:
        self.stats["failures"] += 1
        self._failures += 1
        self.last_error = why
        self._retry_after = _retry_after(headers) if headers else None
        log.warning("registry_client: %s/%s refresh failed: %s", self.tenant, self.application, why)
        self._degrade()

    def next_delay(self) -> float:
        """Seconds until the next poll: ``poll_seconds`` ± jitter; after errors, doubling up to
        ``max_backoff_seconds``; never sooner than a ``Retry-After`` the registry sent."""
        base = self.poll_seconds
        if self._failures:
            base = min(
                self.poll_seconds * (2 ** min(self._failures - 1, 16)),
                max(self.max_backoff_seconds, self.poll_seconds),
            )
        delay = base * (1.0 + random.uniform(-self.jitter, self.jitter))
        if self._retry_after is not None:
            delay = max(delay, self._retry_after)
        return max(delay, 0.0)

    # --- the refresher -----------------------------------------------------------------------

    def _start(self) -> None:
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._run, name=f"registry-client-{self.application}", daemon=True
        )
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.next_delay()):
            self.refresh()

    def _after_fork(self) -> None:
        """In a forked child: new locks, the same snapshot, a new refresher thread."""
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._thread = None
        self._stop = threading.Event()
        if self._background and not self._closed:
            self._start()

    def report(  # noqa: PLR0913 - keyword-only: the measured fields of one served request
        self,
        resolution: Resolution,
        *,
        latency_ms: float,
        error: bool = False,
        refusal: bool = False,
        policy_violation: bool = False,
        cost: float = 0.0,
        quality: float | None = None,
        manifest_sha256: str | None = None,
    ) -> None:
        """Count one served request in the telemetry (batched, sent in the background; never
        blocks or raises). Does nothing unless the client was made with ``telemetry=True``.

        The row carries the manifest hash the application ran: ``manifest_sha256`` if given
        (the hash of what it actually loaded), else the answer's ``sha256``; a hash other than
        the approved one is reported to the owner as deployment drift."""
        reporter = self.reporter
        if reporter is not None:
            reporter.record(
                resolution,
                latency_ms=latency_ms,
                error=error,
                refusal=refusal,
                policy_violation=policy_violation,
                cost=cost,
                quality=quality,
                manifest_sha256=manifest_sha256,
            )

    def close(self) -> None:
        """Stop the refresher (the snapshot keeps serving) and send the queued telemetry."""
        if self.reporter is not None:
            self.reporter.close(timeout=self.timeout)
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.timeout + 1)
        self._thread = None

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_MISSING = object()


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name in values:
        return values[name]
    current: Any = values
    for part in name.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return _MISSING
            current = current[part]
        elif hasattr(current, part):
            current = getattr(current, part)
        else:
            return _MISSING
    return current


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
