"""RegistryClient against a live server: verified snapshots, the server's answers computed locally,
and production that keeps answering while the registry is away.

The server is pytest-django's ``live_server``; a small switchable proxy sits in front of it so a
test can take the registry away (connections dropped), answer 503 with ``Retry-After``, and see
every status and body size on the wire. Time is a fake clock, so "30 minutes" is simulated.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone
from registry_client import MissingVariables, PinError, RegistryClient, Resolution
from rest_framework.test import APIClient

from accounts import services as accounts
from governance.kernel.events.models import SigningKey
from governance.kernel.events.services import key_revoke, key_rotate
from rollouts import runtime
from rollouts.choices import RolloutState, RolloutStrategy
from rollouts.models import Override, Rollout
from tests.rollouts.runtime_world import World, build_world, canary, changed, override

APP, SLOT = "sales-agent", "qualifyLead"
FIELDS = (
    *("ref", "version", "sha256", "content", "content_kind", "variant", "rollout"),
    *("rollout_id", "step", "arm", "bucket", "sequence", "path", "stage"),
)


class Clock:
    """An injectable monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Proxy:
    """Forwards to the live server; ``mode`` "up", "down" (drops connections) or "503"."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "up"
        self.retry_after = "120"
        self.seen: list[tuple[str, str, int, int]] = []  # method, path, status, body bytes
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.mode == "down":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if proxy.mode == "503":
                    self._answer(method, 503, b"", {"Retry-After": proxy.retry_after})
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in ("authorization", "if-none-match", "content-type", "accept")
                }
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, method=method, headers=headers
                )
                try:
                    with urllib.request.urlopen(request, timeout=30) as answer:
                        code, payload, got = answer.status, answer.read(), answer.headers
                except urllib.error.HTTPError as exc:
                    code, payload, got = exc.code, exc.read(), exc.headers
                keep = {k: v for k, v in got.items() if k.lower() in ("etag", "content-type")}
                self._answer(method, code, payload, keep)

            def _answer(
                self, method: str, code: int, payload: bytes, headers: dict[str, str]
            ) -> None:
                proxy.seen.append((method, self.path, code, len(payload)))
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                if code != 304:
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if payload:
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def runtime_calls(self) -> list[tuple[str, str, int, int]]:
        return [s for s in self.seen if s[1].startswith("/api/v1/runtime/")]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A URL nothing listens on: the registry is down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def public_keys() -> dict[str, str]:
    return {k["kid"]: k["public_key"] for k in APIClient().get("/api/v1/keys/").json()}


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def token(world: World) -> str:
    _, raw = accounts.service_token_create(
        tenant=world.acme, name="sales-agent", scopes=["runtime:read"], actor=None
    )
    return raw


@pytest.fixture
def proxy(live_server: Any) -> Iterator[Proxy]:
    p = Proxy(live_server.url)
    yield p
    p.close()


@pytest.fixture
def make_client(
    proxy: Proxy, token: str, tmp_path: Path
) -> Iterator[Callable[..., RegistryClient]]:
    made: list[RegistryClient] = []

    def make(**kw: Any) -> RegistryClient:
        kw.setdefault("public_keys", public_keys())
        kw.setdefault("background", False)
        kw.setdefault("cache_dir", tmp_path / "cache")
        url = kw.pop("url", proxy.url)
        client = RegistryClient(url, token, application=APP, tenant="acme", **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def server_answer(subject: str | None = None, pin: str | None = None) -> dict[str, Any]:
    snap = runtime.snapshot("acme", APP)
    return runtime.resolve(snap, SLOT, subject, pin).as_json()


def assert_same(got: Resolution, want: dict[str, Any]) -> None:
    """The client's answer is the server's, field for field."""
    for name in FIELDS:
        assert getattr(got, name) == want[name], name
    assert got.rule_reason == want["reason"]
    assert list(got.warnings) == want["warnings"]


pytestmark = pytest.mark.django_db(transaction=True)


def test_the_client_answers_what_the_server_answers(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    client = make_client()
    subjects = [None, "", "user-1", "user-42", "cohort-ann"]
    answer = client.resolve(SLOT, "user-1")
    assert (answer.reason, answer.freshness, answer.version) == (
        "DEFAULT",
        "LIVE",
        world.v["v1"].version,
    )
    for subject in subjects:
        assert_same(client.resolve(SLOT, subject), server_answer(subject))
    # an override, then a paper cohort over it, then a flag over both: each reaches the client
    override(world, world.acme, world.v["v3"])
    assert client.refresh()
    assert client.resolve(SLOT, "user-1").reason == "TARGETING_MATCH"
    for subject in subjects:
        assert_same(client.resolve(SLOT, subject), server_answer(subject))
    canary(world, target="paper", cohort=["cohort-ann"], salt="s-paper")
    assert client.refresh()
    assert client.resolve(SLOT, "cohort-ann").arm == "canary"
    for subject in subjects:
        assert_same(client.resolve(SLOT, subject), server_answer(subject))
    flag = canary(world, strategy=RolloutStrategy.FLAG, flag_key="polite", flag_on=True)
    assert client.refresh()
    assert client.resolve(SLOT).variant == "on"
    for subject in subjects:
        assert_same(client.resolve(SLOT, subject), server_answer(subject))
    # an expired flag: the default with a warning (overrides skipped), as the server says
    Rollout.objects.filter(pk=flag.pk).update(flag_expires_at=timezone.now() - timedelta(minutes=1))
    changed()
    assert client.refresh()
    expired = client.resolve(SLOT, "user-1")
    assert expired.reason == "DEFAULT"
    assert any("expired" in w for w in expired.warnings)
    for subject in subjects:
        assert_same(client.resolve(SLOT, subject), server_answer(subject))
    # pins: a version the snapshot holds is STATIC locally; a bad hash is refused
    pinned = client.resolve(SLOT, "user-1", pin=world.v["v3"].version)
    assert_same(pinned, server_answer("user-1", world.v["v3"].version))
    assert pinned.reason == "STATIC"
    with pytest.raises(PinError):
        client.resolve(SLOT, pin=f"qualify-lead:{world.v['v3'].version}#{'0' * 64}")
    # a servable pin outside the snapshot: asked of the server once
    outside = client.resolve(SLOT, pin=world.v["deprecated"].version)
    assert (outside.reason, outside.version) == ("STATIC", world.v["deprecated"].version)
    # an unknown slot: DISABLED with a warning, never an exception
    unknown = client.resolve("nope", "user-1")
    assert unknown.reason == "DISABLED"
    assert "nope" in unknown.warnings[0]


@pytest.mark.usefixtures("world")
def test_render_fills_variables_and_names_missing_ones(
    make_client: Callable[..., RegistryClient],
) -> None:
    client = make_client()
    assert client.render(SLOT, "user-1", {"customer": "Ada"}) == "Qualify Ada."
    with pytest.raises(MissingVariables) as missing:
        client.render(SLOT, "user-1", {"name": "Ada"})
    assert missing.value.missing == ["customer"]
    assert "customer" in str(missing.value)


def test_a_ten_percent_canary_over_100000_subjects_matches_the_server(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    canary(world, weight=10_000, salt="salt-canary")
    client = make_client()
    snap = runtime.snapshot("acme", APP)
    assert client.sequence == snap.sequence
    canaries = 0
    for i in range(100_000):
        subject = f"user-{i}"
        mine = client.resolve(SLOT, subject)
        theirs = runtime.resolve(snap, SLOT, subject)
        assert (mine.ref, mine.arm, mine.bucket, mine.reason, mine.rollout) == (
            theirs.ref,
            theirs.arm,
            theirs.bucket,
            theirs.reason,
            theirs.rollout,
        ), subject
        canaries += mine.arm == "canary"
    assert abs(canaries / 100_000 - 0.10) <= 0.005, canaries
    assert_same(client.resolve(SLOT, "user-7"), server_answer("user-7"))


def test_registry_away_for_30_minutes_with_a_warm_cache(
    world: World, make_client: Callable[..., RegistryClient], proxy: Proxy
) -> None:
    clock = Clock()
    client = make_client(clock=clock, poll_seconds=15, stale_after_seconds=300)
    before = client.resolve(SLOT, "user-1")
    assert (before.reason, before.freshness) == ("DEFAULT", "LIVE")
    proxy.mode = "down"
    start = clock.now
    seen = set()
    while clock.now - start <= 30 * 60:
        assert client.refresh() is False  # never raises
        answer = client.resolve(SLOT, "user-1")
        expected = "CACHED" if clock.now - start < 300 else "STALE"
        assert (answer.reason, answer.freshness) == (expected, expected), clock.now - start
        assert (answer.rule_reason, answer.ref, answer.content) == (
            "DEFAULT",
            before.ref,
            before.content,
        )
        seen.add(answer.reason)
        clock.now += 15
    assert seen == {"CACHED", "STALE"}
    assert client.stats["failures"] >= 120
    assert client.last_error
    # backing off, but never past max_backoff_seconds
    assert client.poll_seconds * 4 <= client.next_delay() <= client.max_backoff_seconds * 1.2 + 1
    # the registry returns with a new configuration: one poll converges
    override(world, world.acme, world.v["v3"])
    proxy.mode = "up"
    assert client.refresh()
    after = client.resolve(SLOT, "user-1")
    assert (after.reason, after.freshness, after.version) == (
        "TARGETING_MATCH",
        "LIVE",
        world.v["v3"].version,
    )


@pytest.mark.usefixtures("world")
def test_retry_after_is_honoured(make_client: Callable[..., RegistryClient], proxy: Proxy) -> None:
    client = make_client(poll_seconds=1)
    proxy.mode = "503"
    proxy.retry_after = "90"
    assert client.refresh() is False
    assert client.next_delay() >= 90
    assert client.resolve(SLOT, "user-1").reason == "CACHED"


def test_an_unchanged_poll_is_a_304_without_a_body(
    world: World, make_client: Callable[..., RegistryClient], proxy: Proxy
) -> None:
    client = make_client()
    assert client.last_status == 200
    assert client.refresh() is False
    assert (client.last_status, client.last_body_bytes) == (304, 0)
    assert proxy.runtime_calls()[-1][2:] == (304, 0)
    # the log grows for another tenant: still 304 (the content digest did not change)
    override(world, world.globex, world.v["v3"])
    assert client.refresh() is False
    assert client.last_status == 304


def test_a_rollback_reaches_the_client_within_one_poll(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    rollout = canary(world, weight=100_000, salt="salt-all")
    client = make_client(background=True, poll_seconds=0.5, jitter=0.2)
    assert client.resolve(SLOT, "user-1").arm == "canary"
    Rollout.objects.filter(pk=rollout.pk).update(state=RolloutState.ROLLED_BACK)
    changed()
    rolled_back = time.monotonic()
    while client.resolve(SLOT, "user-1").arm == "canary":
        assert time.monotonic() - rolled_back < 0.5 * 1.2 + 3.0, "not within one poll"
        time.sleep(0.02)
    assert client.resolve(SLOT, "user-1").reason == "DEFAULT"


def test_cold_start_with_the_registry_down(
    world: World, make_client: Callable[..., RegistryClient], tmp_path: Path
) -> None:
    override(world, world.acme, world.v["v3"])
    warm = make_client()
    cache = warm.cache_path
    assert cache is not None
    assert cache.exists()
    assert not list(cache.parent.glob("*.tmp"))  # written atomically, nothing left behind
    warm.close()
    down = closed_port_url()
    cold = make_client(url=down)
    answer = cold.resolve(SLOT, "user-1")
    assert (answer.reason, answer.rule_reason, answer.version) == (
        "CACHED",
        "TARGETING_MATCH",
        world.v["v3"].version,
    )
    assert cold.sequence == warm.sequence
    # a pin outside the snapshot while the registry is away: answered at once, no exception
    started = time.monotonic()
    outside = cold.resolve(SLOT, "user-1", pin=world.v["deprecated"].version)
    assert outside.reason == "DISABLED"
    assert "not in the snapshot" in outside.warnings[0]
    assert time.monotonic() - started < 0.5
    # the same file as a bootstrap for a first start (no cache dir)
    bootstrap = tmp_path / "bootstrap.json"
    bootstrap.write_bytes(cache.read_bytes())
    first = make_client(url=down, cache_dir=None, bootstrap=bootstrap)
    assert first.resolve(SLOT, "user-1").version == world.v["v3"].version
    # a tampered file is refused, and the configured pin serves
    tampered = cache.read_bytes().replace(b"briefly", b"rudely!")
    assert tampered != cache.read_bytes()
    cache.write_bytes(tampered)
    pinned = make_client(
        url=down, pins={SLOT: {"version": "9.9.9", "content": "Fallback {{ customer }}."}}
    )
    assert pinned.stats["refused"] == 1
    assert pinned.sequence is None
    fallback = pinned.resolve(SLOT, "user-1")
    assert (fallback.reason, fallback.version, fallback.freshness) == ("FALLBACK", "9.9.9", "NONE")
    assert pinned.render(SLOT, "user-1", {"customer": "Ada"}) == "Fallback Ada."
    # nothing at all: DISABLED, still no exception
    nothing = make_client(url=down, cache_dir=tmp_path / "empty")
    assert nothing.resolve(SLOT, "user-1").reason == "DISABLED"


@pytest.mark.usefixtures("world")
def test_keys_fetched_on_first_contact_then_pinned(
    make_client: Callable[..., RegistryClient], tmp_path: Path
) -> None:
    first = make_client(public_keys=None)
    assert first.resolve(SLOT).freshness == "LIVE"
    assert json.loads((tmp_path / "cache" / "keys.json").read_text()) == public_keys()
    cold = make_client(public_keys=None, url=closed_port_url())
    assert cold.resolve(SLOT).reason == "CACHED"
    # a snapshot signed by a key the pins do not hold is refused
    stranger = make_client(public_keys={"0" * 16: "00" * 32}, cache_dir=tmp_path / "other")
    assert stranger.sequence is None
    assert "unknown key" in (stranger.last_error or "")


def test_revoked_keys_are_not_trusted(
    world: World, make_client: Callable[..., RegistryClient], tmp_path: Path
) -> None:
    old = SigningKey.objects.get(status=SigningKey.Status.ACTIVE)
    with transaction.atomic():
        new = key_rotate(actor=None)
    with transaction.atomic():
        key_revoke(kid=old.kid, reason="The old key's file leaked.", actor=None)
    override(world, world.acme, world.v["v3"])  # a new snapshot, signed with the new key
    client = make_client(public_keys=None)
    assert client.resolve(SLOT, "user-1").version == world.v["v3"].version
    kept = json.loads((tmp_path / "cache" / "keys.json").read_text())
    assert kept == {new.kid: new.public_key}  # the revoked key was listed, and left out


def test_a_forked_child_keeps_refreshing(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    client = make_client(background=True, poll_seconds=0.2, jitter=0.1)
    assert client.resolve(SLOT, "user-1").version == world.v["v1"].version
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no database, only the client
        code = 1
        try:
            os.close(read)
            deadline = time.monotonic() + 15
            answer = client.resolve(SLOT, "user-1")
            while answer.version != world.v["v3"].version and time.monotonic() < deadline:
                time.sleep(0.05)
                answer = client.resolve(SLOT, "user-1")
            alive = client._thread is not None and client._thread.is_alive()
            os.write(write, json.dumps([answer.version, answer.reason, alive]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    override(world, world.acme, world.v["v3"])  # after the fork: only a refresher sees it
    ready, _, _ = select.select([read], [], [], 20)
    data = os.read(read, 4096) if ready else b""
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert json.loads(data) == [world.v["v3"].version, "TARGETING_MATCH", True]


def test_eight_threads_never_see_half_a_snapshot(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    """Refreshes swap one immutable compiled snapshot: every answer is whole (its ref, version,
    hash and content belong together), whichever snapshot it came from."""
    # the readers hold the GIL hard; the live server shares this process: a patient client
    client = make_client(timeout=30)
    whole = {
        runtime.version_ref(v): (v.version, v.manifest_sha256, v.content_text, v.path)
        for v in (world.v["v1"], world.v["v3"])
    }
    stop = threading.Event()
    bad: list[Any] = []
    seen: list[set[str]] = []

    def reader() -> None:
        refs: set[str] = set()
        n = 0
        while not stop.is_set():
            a = client.resolve(SLOT, f"s-{n}")
            if a.ref not in whole or whole[a.ref] != (a.version, a.sha256, a.content, a.path):
                bad.append(a)
            refs.add(str(a.ref))
            n += 1
            if n % 64 == 0:
                time.sleep(0.0005)  # let the server (same process) answer the refresh
        seen.append(refs)

    threads = [threading.Thread(target=reader) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for i in range(6):  # refreshes land while the readers read
            if i % 2 == 0:
                override(world, world.acme, world.v["v3"])
            else:
                Override.objects.filter(tenant=world.acme).delete()
                changed()
            assert client.refresh()
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not bad, bad[:3]
    assert len(seen) == 8
    assert set().union(*seen) == set(whole)


def test_a_canary_keeps_its_arms_while_the_registry_is_away(
    world: World, make_client: Callable[..., RegistryClient], proxy: Proxy
) -> None:
    canary(world, weight=30_000, salt="salt-away")
    clock = Clock()
    client = make_client(clock=clock, stale_after_seconds=300)
    subjects = [f"user-{i}" for i in range(2000)]
    live = [client.resolve(SLOT, s) for s in subjects]
    assert {a.freshness for a in live} == {"LIVE"}
    assert {a.arm for a in live} == {"canary", "stable"}
    proxy.mode = "down"
    assert client.refresh() is False
    for label, step in (("CACHED", 299), ("STALE", 2)):
        clock.now += step
        away = [client.resolve(SLOT, s) for s in subjects]
        for before, after in zip(live, away, strict=True):
            assert after._replace(reason=before.reason, freshness="LIVE") == before
            assert (after.reason, after.freshness, after.rule_reason) == (label, label, "SPLIT")


def test_pins_in_every_reference_form_answer_as_the_server(
    world: World, make_client: Callable[..., RegistryClient]
) -> None:
    from governance.kernel.errors import DomainError

    override(world, world.acme, world.v["v3"])
    client = make_client()
    v3 = world.v["v3"]
    forms = [
        v3.version,
        f"qualify-lead@{v3.version}",
        f"qualify-lead:{v3.version}#{v3.manifest_sha256}",
        f"qualify-lead@{v3.version}#{v3.manifest_sha256[:12]}",
        f"prompt/platform/qualify-lead@{v3.version}",
        f"prompt/platform/qualify-lead/{v3.version}",
        f"prompt/platform/qualify-lead/{v3.version}#{v3.manifest_sha256}",
        f"prompt/platform/other/{v3.version}",
        f"qualify-lead:{v3.version}#{'0' * 64}",
        "qualify-lead",
    ]
    snap = runtime.snapshot("acme", APP)
    for pin in forms:
        try:
            want: dict[str, Any] | None = runtime.resolve(snap, SLOT, "user-1", pin).as_json()
        except DomainError:
            want = None
        if want is None:
            with pytest.raises(PinError):
                client.resolve(SLOT, "user-1", pin=pin)
        else:
            assert_same(client.resolve(SLOT, "user-1", pin=pin), want)
