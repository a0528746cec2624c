"""`make bench` workloads for the runtime half (rollouts, issue 11).

1. http: gunicorn (2 sync workers, production settings, the demo seeded by `seed_demo`)
   serving the project's URLs plus a bare Django JSON view that only the bench mounts
   (`bench/bench_urls.py`, through `bench/bench_settings.py`). In one run, with a
   service token (scope runtime:read) of tenant acme, it measures requests/s of
   - the bare view, GET and POST (`/bench/bare/`),
   - `POST /api/v1/resolve/` for sales-agent's qualifyLead slot (a canary at 25%) and one
     subject (the answer is a bucket hash over the cached snapshot whatever the subject),
   - `GET /api/v1/runtime/acme/sales-agent/` (the whole signed snapshot, 200 every time),
   and prints each endpoint's requests/s over the bare view's (the aim: at least 0.7).
2. history: resolve time for a slot whose artifact has 10 versions against one whose
   artifact has 10,000 (the history bulk-created; the last two versions published and
   promoted through real change requests, the newer one in a canary at 25%), in process:
   building the snapshot cold (after a generation bump), `POST /api/v1/resolve/` warm
   (Django's test client, service token), and the same cold. The aim: within 1.2x.

Run:
  .venv/bin/python bench/rollouts_bench.py [--database-url postgres://...] http [--seconds 8] [--rounds 2] [--redis-url redis://127.0.0.1:6379/8]
  .venv/bin/python bench/rollouts_bench.py [--database-url postgres://...] history [--versions 10000]
(--database-url: a PostgreSQL database that is dropped, recreated, and dropped again after.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from harness import ROOT, fresh_app, gunicorn, hammer, manage, run_worker

#: Mints a runtime:read service token for acme and prints it (the plaintext is shown once).
MINT = r"""
import os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from accounts import services
from accounts.choices import TokenScope
from accounts.models import Tenant, User

token, plaintext = services.service_token_create(
    tenant=Tenant.objects.get(slug="acme"),
    name="bench",
    scopes=[TokenScope.RUNTIME_READ],
    actor=User.objects.get(username="acme-admin"),
)
print(plaintext)
"""


def mint_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", MINT], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def http_bench(args: argparse.Namespace) -> None:
    extra = {"SECURE_SSL_REDIRECT": "0"}
    if args.redis_url:
        extra["REDIS_URL"] = args.redis_url
    with fresh_app(args.database_url, **extra) as env:
        manage(env, "seed_demo", "--quiet-logins", quiet=True)
        token = mint_token(env)
        with gunicorn(env, workers=args.workers, settings_module="bench_settings") as port:
            forwarded = {"X-Forwarded-Proto": "https"}  # production mode redirects plain http
            auth = {**forwarded, "Authorization": f"Bearer {token}"}
            post = {**auth, "Content-Type": "application/json"}
            resolve_body = json.dumps(
                {
                    "tenant": "acme",
                    "application": "sales-agent",
                    "slot": "qualifyLead",
                    "subject": "lead-4711",
                }
            ).encode()
            workloads: dict[str, tuple[str, str, dict[str, str], bytes | None]] = {
                "bare GET /bench/bare/": ("GET", "/bench/bare/", forwarded, None),
                "bare POST /bench/bare/": (
                    "POST",
                    "/bench/bare/",
                    {**forwarded, "Content-Type": "application/json"},
                    resolve_body,
                ),
                "POST /api/v1/resolve/": ("POST", "/api/v1/resolve/", post, resolve_body),
                "GET /api/v1/runtime/acme/sales-agent/": (
                    "GET",
                    "/api/v1/runtime/acme/sales-agent/",
                    auth,
                    None,
                ),
            }
            results: dict[str, dict[str, float]] = {}
            for rnd in range(args.rounds):
                for name, (method, path, headers, body) in workloads.items():
                    hammer(
                        port,
                        path,
                        headers=headers,
                        seconds=1.0,
                        concurrency=args.concurrency,
                        max_requests=500,
                        method=method,
                        body=body,
                    )
                    r = hammer(
                        port,
                        path,
                        headers=headers,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        max_requests=args.max_requests,
                        method=method,
                        body=body,
                    )
                    # Interleaved rounds, best of each: other load on the machine hits all alike.
                    if name not in results or r["rps"] > results[name]["rps"]:
                        results[name] = r
                    if rnd == 0 and r["errors"]:
                        print(f"warning: {name}: {r['errors']} answers were not 200")

    db = "PostgreSQL" if args.database_url else "SQLite"
    gen = "Redis" if args.redis_url else "file"
    print(
        f"gunicorn {args.workers} sync workers, production settings, {db}, generation: {gen}; "
        f"{args.concurrency} client threads, {args.seconds}s per workload, best of {args.rounds}"
    )
    print(f"{'workload':<40} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<40} {r['rps']:>8} {r['p50_ms']:>8} {r['p95_ms']:>8} {r['errors']:>7}")
    bare_get = results["bare GET /bench/bare/"]["rps"]
    bare_post = results["bare POST /bench/bare/"]["rps"]
    resolve = results["POST /api/v1/resolve/"]["rps"]
    runtime = results["GET /api/v1/runtime/acme/sales-agent/"]["rps"]
    print(
        f"ratio resolve / bare POST: {resolve / bare_post:.2f}; "
        f"runtime / bare GET: {runtime / bare_get:.2f} (aim >= 0.70)"
    )
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "rollouts-http.json").write_text(
        json.dumps({"args": vars(args), "results": results}, indent=2)
    )


HISTORY = r"""
import hashlib, json, os, statistics, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from django.db import transaction
from django.test import Client
from django.utils import timezone
from accounts.models import Tenant, User
from governance.kernel.events import generation
from governance.kernel.events.keys import sign
from governance.kernel.events.services import active_key
from governance.demo.common import PINS, Crew, promoted_change
from registry import selectors as registry_selectors
from registry import services as registry
from registry.choices import Stage
from registry.models import Version, VersionState
from rollouts import runtime, services as rollouts
from rollouts.choices import PointerKind
from rollouts.models import PointerMove

n_big = int(sys.argv[1])
plaintext = sys.argv[2]
acme = Tenant.objects.get(slug="acme")
author, reviewer, admin = (User.objects.get(username=u) for u in ("acme-author", "acme-reviewer", "acme-admin"))
prompt_class = registry_selectors.artifact_class_by_slug("prompt")
TEXT = "You qualify leads for {{ product }}. Customer: {{ customer }}. "


def history(artifact, count):
    # Bench setup only: `count` old versions in one statement each for versions, their
    # stages and the default's moves, signed like real ones (the manifest is smaller).
    key = active_key()
    rows = []
    for i in range(1, count + 1):
        manifest = json.dumps({"artifact": artifact.path, "version": f"0.{i}.0"}, sort_keys=True).encode()
        digest = hashlib.sha256(manifest).hexdigest()
        text = TEXT + f"#{i}"
        rows.append(Version(
            artifact=artifact, version=f"0.{i}.0", ordinal=i, content_kind="text",
            content_text=text, content_size=len(text),
            content_sha256=hashlib.sha256(text.encode()).hexdigest(),
            input_variables=[{"name": "product"}, {"name": "customer"}],
            change_reason="history", declared_impact="minor", manifest=manifest,
            manifest_sha256=digest, key_id=key.kid, signature=sign(key.kid, bytes.fromhex(digest)),
        ))
    Version.objects.bulk_create(rows, batch_size=1000)
    VersionState.objects.bulk_create(
        [VersionState(version=v, stage=Stage.APPROVED) for v in rows], batch_size=1000
    )
    PointerMove.objects.bulk_create(
        [
            PointerMove(kind=PointerKind.DEFAULT, artifact=artifact, from_version=a, to_version=b, reason="history")
            for a, b in zip([None, *rows[:-1]], rows)
        ],
        batch_size=1000,
    )


def promote(versions, title):
    return promoted_change(acme, versions, title, Crew(author, reviewer, admin))


def fixture(app_slug, versions):
    artifact = registry.artifact_create(artifact_class=prompt_class, tenant=acme, slug=f"bench-{app_slug}", title=app_slug, owner=author, actor=None)
    history(artifact, versions - 2)
    content = registry.Content(text=TEXT + "Be brief.")
    stable, _ = registry.version_publish(artifact=artifact, content=content, impact="major", reason="stable", version="1.0.0", metadata=PINS, actor=None)
    promote([stable], f"{app_slug}: stable")
    app = rollouts.application_create(tenant=acme, slug=app_slug, name=app_slug, actor=admin)
    artifact.refresh_from_db()
    rollouts.slot_create(application=app, name="qualifyLead", artifact=artifact, actor=admin)
    content = registry.Content(text=TEXT + "Be brief and kind.")
    candidate, _ = registry.version_publish(artifact=artifact, content=content, impact="patch", reason="candidate", metadata=PINS, actor=None)
    change = promote([candidate], f"{app_slug}: candidate")
    rollout = rollouts.rollout_create(change=change, actor=admin, strategy="canary", reason="bench")
    rollout = rollouts.rollout_start(rollout=rollout, actor=admin, reason="bench")
    while rollout.weight < 25_000:
        rollout = rollouts.rollout_advance(rollout=rollout, actor=admin, reason="bench")
    assert registry_selectors.Artifact.objects.get(pk=artifact.pk).versions.count() == versions
    return app_slug


small, big = fixture("bench-small", 10), fixture("bench-big", n_big)
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {plaintext}", HTTP_X_FORWARDED_PROTO="https")


def ask(app, subject):
    body = {"tenant": "acme", "application": app, "slot": "qualifyLead", "subject": subject}
    resp = client.post("/api/v1/resolve/", body, content_type="application/json")
    assert resp.status_code == 200, resp.content
    return resp


def timed(fn, rounds):
    t = time.perf_counter()
    for i in range(rounds):
        fn(i)
    return (time.perf_counter() - t) / rounds


def compare(make, rounds, repeat=7):
    # Small and big alternate, best of each: a burst of other load hits both alike.
    few_fn, many_fn = make(small), make(big)
    few_fn(0), many_fn(0)
    few, many = [], []
    for _ in range(repeat):
        few.append(timed(few_fn, rounds))
        many.append(timed(many_fn, rounds))
    return min(few), min(many)


def cold_snapshot(app):
    def run(i):
        generation.bump()
        runtime.snapshot("acme", app)
    return run


def bump_only(i):
    generation.bump()


def warm_resolve(app):
    return lambda i: ask(app, f"lead-{i}")


def cold_resolve(app):
    def run(i):
        generation.bump()
        ask(app, f"lead-{i}")
    return run


print(f"answers: {small}: {ask(small, 'lead-1').json().get('reason')}, {big}: {ask(big, 'lead-1').json().get('reason')}")
from django.db import connection
from django.test.utils import CaptureQueriesContext


def statements(app):
    # Counted as each block ends: a request's start empties the connection's query log.
    generation.bump()
    with CaptureQueriesContext(connection) as cold:
        runtime.snapshot("acme", app)
    built = len(cold.captured_queries)
    ask(app, "lead-1")  # the token's check, cached by the generation too
    with CaptureQueriesContext(connection) as warm:
        ask(app, "lead-2")
    return built, len(warm.captured_queries)


print(f"statements (cold snapshot build, warm resolve): 10 versions {statements(small)}, {n_big} versions {statements(big)}")
bump = min(timed(bump_only, 200) for _ in range(5))
print(f"generation bump alone: {bump * 1e6:.0f}us (included in the cold figures)")
for label, make, rounds in (
    ("snapshot build, cold", cold_snapshot, 50),
    ("POST /api/v1/resolve/, warm", warm_resolve, 500),
    ("POST /api/v1/resolve/, cold", cold_resolve, 50),
):
    few, many = compare(make, rounds)
    print(f"{label:<30} 10 versions {few * 1e6:>8.0f}us, {n_big} versions {many * 1e6:>8.0f}us, ratio {many / few:.2f}")
"""


def history_bench(args: argparse.Namespace) -> None:
    with fresh_app(args.database_url) as env:
        manage(env, "seed_demo", "--quiet-logins", quiet=True)
        token = mint_token(env)
        label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"rollouts history bench on {label}, production settings (in process)")
        run_worker(env, HISTORY, str(args.versions), token)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (dropped and recreated)"
    )
    sub = parser.add_subparsers(dest="workload", required=True)
    http = sub.add_parser("http", help="gunicorn: resolve and runtime against a bare view")
    http.add_argument("--seconds", type=float, default=8.0, help="per workload and round")
    http.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best of)")
    http.add_argument("--concurrency", type=int, default=4)
    http.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    http.add_argument("--max-requests", type=int, default=200_000)
    http.add_argument("--redis-url", default="", help="keep the generation in Redis")
    hist = sub.add_parser("history", help="resolve time, 10 versions against 10,000")
    hist.add_argument("--versions", type=int, default=10_000)
    args = parser.parse_args()
    if args.workload == "http":
        http_bench(args)
    else:
        history_bench(args)


if __name__ == "__main__":
    main()
