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
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import gunicorn, hammer

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def manage(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [PY, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout


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
        with gunicorn(env, workers=args.workers) as port:
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
                hammer(  # warm up
                    port,
                    path,
                    headers=headers,
                    seconds=1.0,
                    concurrency=args.concurrency,
                    max_requests=500,
                )
                results[name] = hammer(
                    port,
                    path,
                    headers=headers,
                    seconds=args.seconds,
                    concurrency=args.concurrency,
                    max_requests=args.max_requests,
                )

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
