"""`make bench`: serve the app under gunicorn on loopback and measure it.

Workload 1 (foundation): an authenticated JSON API endpoint (`/api/v1/me/`,
bearer token, database reads, DRF rendering) against a bare Django view
(`/healthz`, no database) on the same gunicorn config. Prints requests/s of
both and their ratio. Workload 2 (runtime): unversioned resolution
(`/api/v1/resolve/?ref=prompt/acme/support-reply`, the active version), what a
production service asks on every cache miss.

Everything runs on 127.0.0.1 against a throwaway SQLite database; the request
loops are bounded by count and time and stop by themselves.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


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


def hammer(
    port: int,
    path: str,
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
    max_requests: int,
) -> dict[str, float]:
    """Send GETs from `concurrency` threads for `seconds` (or `max_requests` in all)."""
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
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="per endpoint (default 8)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--max-requests", type=int, default=200_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gov-bench-") as tmp:
        env = {
            k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG"}
        }
        env.update(
            GOVERNANCE_ENV="production",
            SECRET_KEY="bench-" + "x" * 60,
            ALLOWED_HOSTS="127.0.0.1",
            SECURE_SSL_REDIRECT="0",
            GOVERNANCE_VAR_DIR=tmp,
            LOG_LEVEL="WARNING",
        )
        manage(env, "migrate", "--noinput")
        # Production settings never make a signing key by themselves: create one the way
        # an operator does (`make run` too), before anything is signed.
        manage(env, "keys", "generate", "--if-missing")
        manage(env, "seed_demo", "--quiet-logins")
        token = manage(env, "accounts", "token", "acme-reviewer", "--expires-days", "1").strip()
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(PY).with_name("gunicorn")),
                "governance.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--worker-class",
                "sync",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_until_up(port)
            forwarded = {"X-Forwarded-Proto": "https"}  # production mode redirects plain http
            workloads = {
                "bare Django view  GET /healthz": ("/healthz", forwarded),
                "JSON API endpoint GET /api/v1/me/": (
                    "/api/v1/me/",
                    {**forwarded, "Authorization": f"Bearer {token}"},
                ),
                # What production asks: the active version of an artifact, no version named.
                "resolve GET /api/v1/resolve/?ref=...": (
                    "/api/v1/resolve/?ref=prompt/acme/support-reply",
                    {**forwarded, "Authorization": f"Bearer {token}"},
                ),
            }
            results = {}
            for name, (path, headers) in workloads.items():
                hammer(port, path, headers, 1.0, args.concurrency, 500)  # warm up
                results[name] = hammer(
                    port, path, headers, args.seconds, args.concurrency, args.max_requests
                )
        finally:
            server.terminate()
            server.wait(timeout=20)

    print(
        f"gunicorn {args.workers} sync workers, {args.concurrency} client threads, {args.seconds}s each, SQLite, production settings"
    )
    print(f"{'workload':<40} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<40} {r['rps']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['errors']:>7}")
    bare, api, resolve = (results[k]["rps"] for k in workloads)
    print(f"ratio API / bare: {api / bare:.2f}; resolve / bare: {resolve / bare:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()
