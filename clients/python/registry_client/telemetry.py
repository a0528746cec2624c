"""Usage and quality reporting to ``POST /api/v1/telemetry/``, off the request path.

``Reporter.record`` appends one event to a bounded in-memory queue and returns: it never
blocks on the network and never raises. A background thread folds the events into counter
rows (per slot, version, rollout, arm, snapshot sequence, manifest hash and minute bucket) and
sends them
every ``flush_seconds`` (10 s) or as soon as ``max_events`` (1,000) are waiting. Each batch
gets a ``batch_id`` (a uuid) when it is formed and keeps it across retries, so a batch the
server stored but whose answer was lost (a timeout) is answered ``duplicate`` on retry and
counts once. When the queue is full the oldest events are dropped and counted
(``Reporter.stats``). Retries back off exponentially (honouring ``Retry-After``); a batch the
server refuses (400/401/403) is dropped and counted, not retried forever.

Fork-safe: a child process (gunicorn, Celery prefork) starts with an empty queue and its own
thread on its first ``record`` — the parent's events are the parent's to send.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger("registry_client.telemetry")

#: Upper bounds of the server's latency histogram, in ms (the last catches the rest).
LATENCY_BOUNDS_MS: tuple[float, ...] = (50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)
#: The server's default ``TELEMETRY_MAX_BATCH_ROWS``.
MAX_BATCH_ROWS = 5000
TELEMETRY_PATH = "/api/v1/telemetry/"


class ResolutionLike(Protocol):
    """What ``record`` reads from a resolve answer (``registry_client.Resolution`` has it)."""

    @property
    def slot(self) -> str: ...
    @property
    def version(self) -> str | None: ...
    @property
    def rollout(self) -> str | None: ...
    @property
    def arm(self) -> str | None: ...
    @property
    def sequence(self) -> int | None: ...


# One queued event: slot, version, rollout, arm, sequence, wall time, latency, flags, cost, quality,
# and the manifest hash the application ran ("" when not reported).
_Event = tuple[str, str, str, str, int, float, float, bool, bool, bool, float, float | None, str]
_Key = tuple[str, str, str, str, int, int, str]


@dataclass
class Stats:
    """Counters of what became of the events (read them in tests and health checks)."""

    recorded: int = 0
    dropped_queue_full: int = 0
    skipped_no_version: int = 0
    batches_sent: int = 0
    batches_duplicate: int = 0
    batches_refused: int = 0
    batches_dropped: int = 0
    send_failures: int = 0
    events_sent: int = 0


@dataclass
class _Batch:
    batch_id: str
    rows: list[dict[str, Any]]
    events: int
    attempts: int = 0
    not_before: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _histogram_index(latency_ms: float) -> int:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if latency_ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS) - 1


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_rows(
    events: list[_Event], *, application: str, bucket_seconds: int = 60, slo_ms: float | None = None
) -> list[dict[str, Any]]:
    """Fold events into the counter rows ``POST /api/v1/telemetry/`` takes."""
    acc: dict[_Key, dict[str, Any]] = {}
    width = max(1, int(bucket_seconds))
    for slot, version, rollout, arm, seq, at, latency, err, refusal, viol, cost, q, sha in events:
        epoch = int(at)
        key = (slot, version, rollout, arm, seq, epoch - epoch % width, sha)
        row = acc.get(key)
        if row is None:
            row = acc[key] = {
                "application": application,
                "slot": slot,
                "version": version,
                "rollout": rollout or None,
                "arm": arm if rollout else "",
                "bucket_start": _iso(key[5]),
                "requests": 0,
                "errors": 0,
                "refusals": 0,
                "policy_violations": 0,
                "latency_slo_breaches": 0,
                "latency_ms": [0] * len(LATENCY_BOUNDS_MS),
                "cost": 0.0,
                "quality_sum": 0.0,
                "quality_sumsq": 0.0,
                "quality_n": 0,
                "snapshot_sequence": seq,
            }
            if sha:  # what the application ran: a hash other than the approved one is drift
                row["manifest_sha256"] = sha
        row["requests"] += 1
        row["errors"] += err
        row["refusals"] += refusal
        row["policy_violations"] += viol
        if slo_ms is not None and latency > slo_ms:
            row["latency_slo_breaches"] += 1
        row["latency_ms"][_histogram_index(latency)] += 1
        row["cost"] += cost
        if q is not None:
            row["quality_sum"] += q
            row["quality_sumsq"] += q * q
            row["quality_n"] += 1
    return list(acc.values())


class Reporter:
    """Batches events and sends them from a daemon thread; see the module docstring."""

    def __init__(  # noqa: PLR0913 - each keyword-only parameter is a documented reporter setting
        self,
        url: str,
        token: str,
        application: str,
        *,
        flush_seconds: float = 10.0,
        max_events: int = 1000,
        max_queue: int = 100_000,
        max_pending_batches: int = 100,
        timeout: float = 2.0,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        max_attempts: int = 20,
        bucket_seconds: int = 60,
        slo_ms: float | None = None,
        wall_clock: Callable[[], float] = time.time,
        user_agent: str = "governance-registry-client",
        report_hashes: bool = True,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s)://, got {url!r}")
        self.endpoint = url.rstrip("/") + TELEMETRY_PATH
        self.token = token
        self.application = application
        self.flush_seconds = flush_seconds
        self.max_events = max(1, max_events)
        self.max_queue = max(self.max_events, max_queue)
        self.max_pending_batches = max(1, max_pending_batches)
        self.timeout = timeout
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_attempts = max(1, max_attempts)
        self.bucket_seconds = bucket_seconds
        self.slo_ms = slo_ms
        self.wall_clock = wall_clock
        self.user_agent = user_agent
        #: Send each row's manifest hash (``manifest_sha256``); off for a server older than it.
        self.report_hashes = report_hashes
        self.stats = Stats()
        self._closed = False
        self._reset()
        _reporters.add(self)

    def _reset(self) -> None:
        """Fresh state (at start, and in a forked child: the parent's events are not ours)."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._queue: deque[_Event] = deque()
        self._pending: deque[_Batch] = deque()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._idle = threading.Condition(self._lock)
        self._busy = False

    # --- the request path -------------------------------------------------------------

    def record(  # noqa: PLR0913 - keyword-only: the measured fields of one served request
        self,
        resolution: ResolutionLike,
        *,
        latency_ms: float,
        error: bool = False,
        refusal: bool = False,
        policy_violation: bool = False,
        cost: float = 0.0,
        quality: float | None = None,
        manifest_sha256: str | None = None,
    ) -> None:
        """Queue one served request. Never blocks on I/O, never raises.

        ``manifest_sha256``: the manifest hash of what the application actually ran (say, of a
        bundle it loaded); by default the resolve answer's ``sha256``. The server compares it
        with the approved hash of the version (deployment drift alerts the owner). Not sent
        when the reporter was made with ``report_hashes=False``.
        """
        try:
            version = resolution.version
            if not version:
                self.stats.skipped_no_version += 1
                return
            sha = ""
            if self.report_hashes:
                sha = manifest_sha256 or getattr(resolution, "sha256", None) or ""
            event: _Event = (
                resolution.slot,
                version,
                resolution.rollout or "",
                resolution.arm or "",
                int(resolution.sequence or 0),
                self.wall_clock(),
                max(0.0, float(latency_ms)),
                bool(error),
                bool(refusal),
                bool(policy_violation),
                max(0.0, float(cost)),
                None if quality is None else float(quality),
                str(sha).lower(),
            )
            if self._closed:
                return
            if self._pid != os.getpid():  # forked without at-fork hooks (should not happen)
                self._reset()
            with self._lock:
                if len(self._queue) >= self.max_queue:
                    self._queue.popleft()
                    self.stats.dropped_queue_full += 1
                self._queue.append(event)
                self.stats.recorded += 1
                size = len(self._queue)
                if self._thread is None:
                    self._start()
            if size >= self.max_events:
                self._wake.set()
        except Exception:  # reporting must never break a request
            log.debug("telemetry record failed", exc_info=True)

    # --- the background thread --------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="registry-telemetry", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_seconds
        while not self._closed:
            timeout = max(0.0, next_flush - time.monotonic())
            if self._pending:
                timeout = min(timeout, max(0.0, self._pending[0].not_before - time.monotonic()))
            self._wake.wait(timeout)
            self._wake.clear()
            now = time.monotonic()
            full = len(self._queue) >= self.max_events
            if now >= next_flush or full:
                self._cut()
                next_flush = now + self.flush_seconds
            self._send_due()

    def _cut(self) -> None:
        """Move the queued events into batches (at most MAX_BATCH_ROWS rows each)."""
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
        if not events:
            return
        rows = build_rows(
            events,
            application=self.application,
            bucket_seconds=self.bucket_seconds,
            slo_ms=self.slo_ms,
        )
        for start in range(0, len(rows), MAX_BATCH_ROWS):
            chunk = rows[start : start + MAX_BATCH_ROWS]
            count = sum(r["requests"] for r in chunk)
            with self._lock:
                if len(self._pending) >= self.max_pending_batches:
                    old = self._pending.popleft()
                    self.stats.batches_dropped += 1
                    self.stats.dropped_queue_full += old.events
                self._pending.append(_Batch(str(uuid.uuid4()), chunk, count))

    def _send_due(self) -> None:
        while self._pending and not self._closed:
            batch = self._pending[0]
            if batch.not_before > time.monotonic():
                return
            outcome, retry_after = self._post(batch)
            if outcome == "retry":
                batch.attempts += 1
                if batch.attempts >= self.max_attempts:
                    self._drop(batch, "batches_dropped")
                    continue
                delay = min(
                    self.max_backoff_seconds, self.backoff_seconds * 2 ** (batch.attempts - 1)
                )
                delay *= 1 + random.random() * 0.2  # jitter, not crypto
                batch.not_before = time.monotonic() + max(delay, retry_after or 0.0)
                return
            self._drop(batch, outcome)

    def _drop(self, batch: _Batch, counter: str) -> None:
        with self._lock:
            if self._pending and self._pending[0] is batch:
                self._pending.popleft()
            setattr(self.stats, counter, getattr(self.stats, counter) + 1)
            if counter in ("batches_sent", "batches_duplicate"):
                self.stats.events_sent += batch.events
            self._idle.notify_all()

    def _post(self, batch: _Batch) -> tuple[str, float | None]:
        body = json.dumps({"batch_id": batch.batch_id, "rows": batch.rows}).encode()
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "User-Agent": self.user_agent,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
            if answer.get("status") == "duplicate":
                return "batches_duplicate", None
            return "batches_sent", None
        except urllib.error.HTTPError as exc:
            self.stats.send_failures += 1
            if exc.code in (408, 425, 429) or exc.code >= 500:
                return "retry", _retry_after(exc.headers.get("Retry-After"))
            log.warning("telemetry batch %s refused: %s %s", batch.batch_id, exc.code, _peek(exc))
            return "batches_refused", None
        except Exception:  # timeouts, resets, DNS: retry with the same batch_id
            self.stats.send_failures += 1
            log.debug("telemetry batch %s failed", batch.batch_id, exc_info=True)
            return "retry", None

    # --- control ------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Cut and send what is queued now; True when nothing is left to send in time."""
        deadline = time.monotonic() + timeout
        if self._thread is None:
            with self._lock:
                if not self._queue:
                    return True
                self._start()
        self._cut()
        for batch in list(self._pending):
            batch.not_before = 0.0
        self._wake.set()
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def pending(self) -> int:
        """Events queued or in unsent batches."""
        return len(self._queue) + sum(b.events for b in list(self._pending))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is left (up to ``timeout`` seconds) and stop the thread."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._wake.set()


#: Every live Reporter, so a forked child resets each one (one at-fork hook for them all).
_reporters: weakref.WeakSet[Reporter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for reporter in list(_reporters):
        reporter._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _peek(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(300).decode("utf-8", "replace")
    except OSError:
        return ""
