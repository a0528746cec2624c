"""What every `make bench` script needs: a fresh app (temp folder, migrated database) to run a workload in."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent


@contextmanager
def fresh_app(database_url: str | None, **extra_env: str) -> Iterator[dict[str, str]]:
    """Production settings in a temporary folder, on SQLite there or on ``database_url``
    (a PostgreSQL database that is dropped, recreated, migrated, and dropped again after).
    Yields the environment to run ``manage.py`` or a worker script with."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
            "GOVERNANCE_VAR_DIR": tmp,
            "GOVERNANCE_ENV": "production",
            "SECRET_KEY": "bench-" + "x" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SIGNING_KEY_AUTOGENERATE": "1",
            "LOG_LEVEL": "WARNING",
            **extra_env,
        }
        admin = db = ""
        if database_url:
            env["DATABASE_URL"] = database_url
            db = database_url.rsplit("/", 1)[1]
            admin = database_url.rsplit("/", 1)[0] + "/postgres"
            drop = ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"]
            subprocess.run(drop, check=True, env=env, capture_output=True)
            subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {db}"], check=True, env=env)
        manage(env, "migrate", "-v0")
        try:
            yield env
        finally:
            if database_url:
                drop = ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {db}"]
                subprocess.run(drop, check=False, env=env, capture_output=True)


def manage(env: dict[str, str], *args: str, quiet: bool = False) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=quiet
    )


def run_worker(env: dict[str, str], script: str, *args: str) -> None:
    """Run a workload script (Python source) in the prepared app."""
    subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


@contextmanager
def gunicorn(
    env: dict[str, str], workers: int = 2, settings_module: str | None = None
) -> Iterator[int]:
    """Serve the app with gunicorn (sync workers) on a free loopback port; yields the port.

    ``settings_module`` names a module in ``bench/`` (put on the server's path), e.g. the
    bench-only settings that add a bare view to the project's URLs."""
    port = free_port()
    server_env = dict(env)
    args = [
        str(Path(sys.executable).with_name("gunicorn")),
        "governance.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--log-level",
        "warning",
    ]
    if settings_module:
        server_env["DJANGO_SETTINGS_MODULE"] = settings_module
        args += ["--pythonpath", str(BENCH)]
    server = subprocess.Popen(args, cwd=ROOT, env=server_env)
    try:
        wait_until_up(port)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=20)


def hammer(  # noqa: PLR0913 - keyword-only: each is one knob of the request or the load
    port: int,
    path: str,
    *,
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
    max_requests: int,
    method: str = "GET",
    body: bytes | None = None,
    expect: tuple[int, ...] = (200,),
) -> dict[str, float]:
    """Send requests from ``concurrency`` threads (keep-alive connections) for ``seconds``
    (or ``max_requests`` in all). An answer whose status is not in ``expect`` is an error."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            with lock:
                if len(latencies) + errors >= max_requests:
                    return
            started = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status in expect
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            except OSError:
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            elapsed = time.perf_counter() - started
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(wall, 2),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else 0.0,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2) if latencies else 0.0,
    }
