"""The client's telemetry Reporter against a live server: batches arrive once each, even when
the first POST times out (the server stored it; the retry with the same batch_id is answered
"duplicate"); reporting never blocks or raises; a full queue drops the oldest and counts."""

from __future__ import annotations

import os
import runpy
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from registry_client import RegistryClient
from registry_client.telemetry import LATENCY_BOUNDS_MS, Reporter, build_rows
from rest_framework.test import APIClient

from accounts import services as accounts
from rollouts.models import TelemetryBatch, TelemetryCounter
from tests.rollouts.runtime_world import build_world, canary


@dataclass(frozen=True)
class Served:
    """What the Reporter reads from a resolve answer (registry_client.Resolution has these)."""

    slot: str
    version: str | None
    rollout: str | None = None
    arm: str | None = None
    sequence: int | None = 7


class SlowFirstProxy:
    """Forwards POSTs to the live server; holds the first answer back (after the server
    stored the batch) until the client, having timed out, sends its retry."""

    def __init__(self, upstream: str, hold_seconds: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.hold = hold_seconds
        self.answers: list[tuple[str, int, bytes]] = []
        self.retried = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = urllib.request.Request(
                    proxy.upstream + self.path,
                    data=body,
                    method="POST",
                    headers={
                        "Authorization": self.headers["Authorization"],
                        "Content-Type": "application/json",
                    },
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    code, payload = answer.status, answer.read()
                first = not proxy.answers
                proxy.answers.append((self.path, code, payload))
                if first:  # stored upstream; answer only once the client has given up
                    proxy.retried.wait(proxy.hold)
                else:
                    proxy.retried.set()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_proxy(live_server: Any) -> Iterator[SlowFirstProxy]:
    proxy = SlowFirstProxy(live_server.url, hold_seconds=15.0)
    yield proxy
    proxy.close()


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_first_post_times_out_counts_once(slow_proxy: SlowFirstProxy) -> None:
    world = build_world()
    rollout = canary(world, weight=50_000)
    _, token = accounts.service_token_create(
        tenant=world.acme, name="sales-agent", scopes=["telemetry:write"], actor=None
    )
    reporter = Reporter(
        slow_proxy.url,
        token,
        "sales-agent",
        flush_seconds=60,  # only the size trigger and flush() send
        max_events=1000,
        timeout=1.0,
        backoff_seconds=0.05,
        slo_ms=400,
    )
    v1, v2 = world.v["v1"].version, world.v["v2"].version
    sent = {"requests": 0, "errors": 0, "quality_n": 0, "breaches": 0}
    for n in range(2500):
        if n % 2:
            served = Served("qualifyLead", v2, rollout.reference, "canary", sequence=9)
        else:
            served = Served("qualifyLead", v1, rollout.reference, "stable", sequence=9)
        latency = (n * 37) % 3000
        reporter.record(
            served,
            latency_ms=latency,
            error=n % 10 == 0,
            cost=0.01,
            quality=0.5 if n % 4 == 0 else None,
        )
        sent["requests"] += 1
        sent["errors"] += n % 10 == 0
        sent["quality_n"] += n % 4 == 0
        sent["breaches"] += latency > 400
    assert reporter.flush(timeout=20), reporter.stats
    reporter.close()

    stats = reporter.stats
    assert stats.recorded == 2500
    assert stats.events_sent == 2500
    assert stats.send_failures == 1
    assert stats.dropped_queue_full == 0
    statuses = [code for _, code, _ in slow_proxy.answers]
    # One batch was posted twice (the same batch_id): the server answered one of the two
    # "duplicate" (200; normally the retry, whose "duplicate" the client counts).
    assert statuses.count(200) == 1
    assert statuses.count(201) == len(statuses) - 1
    batches = TelemetryBatch.objects.filter(tenant=world.acme)
    assert batches.count() == stats.batches_sent + stats.batches_duplicate
    assert batches.count() == len(statuses) - 1  # every POST but one stored a batch
    totals = TelemetryCounter.objects.filter(tenant=world.acme).aggregate(
        requests=Sum("requests"),
        errors=Sum("errors"),
        quality_n=Sum("quality_n"),
        breaches=Sum("latency_slo_breaches"),
    )
    assert totals == sent
    arms = dict(
        TelemetryCounter.objects.filter(tenant=world.acme)
        .values_list("arm")
        .annotate(n=Sum("requests"))
    )
    assert arms == {"canary": 1250, "stable": 1250}
    assert set(TelemetryCounter.objects.values_list("snapshot_sequence", flat=True)) == {9}


def test_rows_fold_events_per_slot_version_arm_and_minute() -> None:
    served = Served("qualifyLead", "1.0.0", "RO-3", "canary", sequence=4)
    events = [
        (
            "qualifyLead",
            "1.0.0",
            "RO-3",
            "canary",
            4,
            120.5,
            30.0,
            False,
            True,
            False,
            0.1,
            0.9,
            "",
        ),
        (
            "qualifyLead",
            "1.0.0",
            "RO-3",
            "canary",
            4,
            125.0,
            7000.0,
            True,
            False,
            True,
            0.2,
            None,
            "",
        ),
        (
            "qualifyLead",
            "1.0.0",
            "RO-3",
            "canary",
            4,
            185.0,
            60.0,
            False,
            False,
            False,
            0.0,
            None,
            "",
        ),
        ("qualifyLead", "2.0.0", "", "", 4, 125.0, 60.0, False, False, False, 0.0, None, ""),
    ]
    rows = build_rows(events, application="sales-agent", slo_ms=5000)
    assert served.slot == rows[0]["slot"]
    assert [(r["version"], r["bucket_start"], r["requests"]) for r in rows] == [
        ("1.0.0", "1970-01-01T00:02:00Z", 2),
        ("1.0.0", "1970-01-01T00:03:00Z", 1),
        ("2.0.0", "1970-01-01T00:02:00Z", 1),
    ]
    first = rows[0]
    assert first["latency_ms"] == [1, 0, 0, 0, 0, 0, 0, 1, 0]
    assert len(first["latency_ms"]) == len(LATENCY_BOUNDS_MS)
    assert (first["errors"], first["refusals"], first["policy_violations"]) == (1, 1, 1)
    assert first["latency_slo_breaches"] == 1
    assert first["quality_n"] == 1
    assert first["quality_sum"] == pytest.approx(0.9)
    assert first["cost"] == pytest.approx(0.3)
    assert (rows[2]["rollout"], rows[2]["arm"]) == (None, "")


def test_reporting_never_blocks_or_raises_when_the_registry_is_down() -> None:
    reporter = Reporter(
        "http://127.0.0.1:9",  # nothing listens
        "token",
        "sales-agent",
        max_events=10,
        max_queue=100,
        max_pending_batches=5,
        timeout=0.2,
        backoff_seconds=10,
    )
    started = time.perf_counter()
    for n in range(1000):
        reporter.record(Served("s", "1.0.0"), latency_ms=n)
    reporter.record(Served("s", None), latency_ms=1)  # nothing served: not counted
    reporter.record(object(), latency_ms=1)  # type: ignore[arg-type]  # never raises
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert reporter.stats.recorded == 1000
    assert reporter.stats.skipped_no_version == 1
    # Bounded: the queue plus 5 pending batches; the rest dropped and counted (polled: the
    # sender thread may be between taking events from the queue and filing their batch).
    deadline = time.monotonic() + 5
    while reporter.stats.dropped_queue_full + reporter.pending() != 1000:
        assert time.monotonic() < deadline, (reporter.stats, reporter.pending())
        time.sleep(0.01)
    # A cut takes the whole queue into one batch, so a pending batch holds up to max_queue
    # events (not max_events): the bound is the queue plus 5 batches of at most 100 each.
    assert reporter.pending() <= 100 + 5 * 100 < 1000
    assert reporter.stats.dropped_queue_full >= 1000 - 600
    assert not reporter.flush(timeout=0.3)  # cannot send: says so, does not hang
    reporter.close(timeout=0.1)


def test_a_forked_child_starts_with_an_empty_queue() -> None:
    reporter = Reporter("http://127.0.0.1:9", "t", "app", flush_seconds=60, backoff_seconds=60)
    reporter.record(Served("s", "1.0.0"), latency_ms=1)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its own empty queue, and record still works
        try:
            before = reporter.pending()
            reporter.record(Served("s", "1.0.0"), latency_ms=1)
            ok = before == 0 and reporter.pending() == 1 and reporter._thread is not None
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1)
    os.waitpid(pid, 0)
    assert answer == b"1"
    assert reporter.pending() == 1
    reporter.close(timeout=0.1)


@pytest.mark.django_db(transaction=True)
def test_a_client_with_telemetry_reports_what_it_served(live_server: Any) -> None:
    world = build_world()
    _, token = accounts.service_token_create(
        tenant=world.acme,
        name="sales-agent",
        scopes=["runtime:read", "telemetry:write"],
        actor=None,
    )
    keys = {k["kid"]: k["public_key"] for k in APIClient().get("/api/v1/keys/").json()}
    client = RegistryClient(
        live_server.url,
        token,
        application="sales-agent",
        tenant="acme",
        public_keys=keys,
        background=False,
        telemetry=True,
    )
    served = [client.resolve("qualifyLead", subject=f"user-{n}") for n in range(30)]
    for n, r in enumerate(served):
        client.report(r, latency_ms=20 + n, error=n == 0, quality=1.0)
    client.close()  # sends what is queued
    assert client.reporter is not None
    assert client.reporter.stats.events_sent == 30
    row = TelemetryCounter.objects.get(tenant=world.acme)
    assert (row.requests, row.errors, row.quality_n) == (30, 1, 30)
    assert row.version.version == world.v["v1"].version
    assert row.snapshot_sequence == served[0].sequence
    # Without telemetry=True, report() does nothing (and never fails).
    quiet = RegistryClient(
        live_server.url,
        token,
        application="sales-agent",
        tenant="acme",
        public_keys=keys,
        background=False,
    )
    quiet.report(served[0], latency_ms=1)
    assert quiet.reporter is None
    quiet.close()


@pytest.mark.django_db(transaction=True)
def test_the_example_service_resolves_renders_and_reports(
    live_server: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    world = build_world()
    _, token = accounts.service_token_create(
        tenant=world.acme,
        name="sales-agent",
        scopes=["runtime:read", "telemetry:write"],
        actor=None,
    )
    example = Path(__file__).resolve().parents[2] / "clients/python/examples/sales_agent.py"
    argv = [str(example), "--url", live_server.url, "--token", token, "--requests", "6"]
    argv += ["--interval", "0", "--cache-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(example), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "served 6 requests" in out
    assert "DEFAULT" in out
    row = TelemetryCounter.objects.get(tenant=world.acme, slot=world.slot)
    assert row.requests == 6
    assert row.version == world.v["v1"]


@dataclass(frozen=True)
class ServedWithHash(Served):
    sha256: str | None = None


class Capturing(Reporter):
    """Sends nothing: keeps the rows it would have posted."""

    sent: list[dict[str, Any]]

    def _post(self, batch: Any) -> tuple[str, float | None]:
        self.sent = [*getattr(self, "sent", []), *batch.rows]
        return "batches_sent", None


def test_rows_carry_the_manifest_hash_the_application_ran() -> None:
    approved, local = "a" * 64, "B" * 64
    reporter = Capturing("http://127.0.0.1:9", "token", "sales-agent", flush_seconds=60)
    served = ServedWithHash("qualifyLead", "1.0.0", sha256=approved)
    reporter.record(served, latency_ms=10)
    reporter.record(served, latency_ms=10)
    reporter.record(served, latency_ms=10, manifest_sha256=local)  # what it actually loaded
    reporter.record(Served("qualifyLead", "1.0.0"), latency_ms=10)  # no hash known
    assert reporter.flush(timeout=5)
    reporter.close()
    by_hash = {r.get("manifest_sha256"): r["requests"] for r in reporter.sent}
    assert by_hash == {approved: 2, local.lower(): 1, None: 1}

    quiet = Capturing(
        "http://127.0.0.1:9", "token", "sales-agent", flush_seconds=60, report_hashes=False
    )
    quiet.record(served, latency_ms=10)
    assert quiet.flush(timeout=5)
    quiet.close()
    assert ["manifest_sha256" in r for r in quiet.sent] == [False]
