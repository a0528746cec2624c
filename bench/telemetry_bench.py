"""`make bench` workload for telemetry ingest (issue 12): `POST /api/v1/telemetry/` with 1,000 rows.

A fresh app (production settings, the demo seeded by `seed_demo`), a service token of acme
with the scope telemetry:write, and batches of ROWS counter rows for sales-agent's
qualifyLead slot (half for the canary arm of its running rollout, half for the stable arm,
one bucket a minute). In process, each round times:
  - http: the whole request through Django's test client (middleware, token check, JSON
    parsing, the service, the answer), the figure the aim is about: <= 100 ms for 1,000 rows;
  - service: `telemetry_ingest` alone, with its query count, and its CPU time in this
    process (wall time on a loaded machine also counts other processes' turns).
Every batch has a new batch_id (a duplicate would be answered without work), so the table
grows by ROWS rows per round, as in production.

Run:
  .venv/bin/python bench/telemetry_bench.py [--database-url postgres://...] [--rows 1000] [--rounds 30]
(--database-url: a PostgreSQL database that is dropped, recreated, and dropped again after.)
"""

from __future__ import annotations

import argparse

from harness import fresh_app, manage, run_worker

WORK = r"""
import json, os, statistics, sys, time
from datetime import timedelta
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from accounts import services
from accounts.choices import TokenScope
from accounts.models import Tenant
from rollouts.choices import ACTIVE_STATES
from rollouts.models import RolloutTarget, TelemetryCounter
from rollouts.telemetry_services import telemetry_ingest

rows_n, rounds = int(sys.argv[1]), int(sys.argv[2])
acme = Tenant.objects.get(slug="acme")
_, token = services.service_token_create(
    tenant=acme, name="bench-telemetry", scopes=[TokenScope.TELEMETRY_WRITE], actor=None
)
target = (
    RolloutTarget.objects.filter(
        slot__application__slug="sales-agent", slot__name="qualifyLead",
        rollout__state__in=list(ACTIVE_STATES),
    )
    .select_related("rollout", "candidate", "baseline")
    .first()
)
assert target is not None and target.baseline is not None, "seed_demo has no running canary"
now = timezone.now().replace(second=0, microsecond=0)

def batch(n):
    rows = []
    for i in range(n):
        canary = i % 2 == 0
        rows.append({
            "application": "sales-agent", "slot": "qualifyLead",
            "version": (target.candidate if canary else target.baseline).version,
            "rollout": target.rollout.reference, "arm": "canary" if canary else "stable",
            "bucket_start": (now - timedelta(minutes=i // 2)).isoformat(),
            "requests": 100, "errors": 2, "refusals": 1, "policy_violations": 0,
            "latency_slo_breaches": 3, "latency_ms": [30, 40, 20, 5, 2, 1, 1, 1, 0],
            "cost": 0.42, "quality_sum": 81.5, "quality_sumsq": 67.2, "quality_n": 100,
            "snapshot_sequence": 7,
        })
    return rows

client = Client(SERVER_NAME="127.0.0.1")
auth = {"HTTP_AUTHORIZATION": f"Bearer {token}", "secure": True}
http, service, cpu, queries = [], [], [], []
for r in range(rounds + 2):  # two warm-up rounds, not counted
    body = json.dumps({"batch_id": f"bench-http-{r}", "rows": batch(rows_n)})
    t0 = time.perf_counter()
    resp = client.post("/api/v1/telemetry/", body, content_type="application/json", **auth)
    took = time.perf_counter() - t0
    assert resp.status_code == 201, resp.content[:300]
    rows = batch(rows_n)
    with CaptureQueriesContext(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        telemetry_ingest(principal_or_tenant=acme, batch_id=f"bench-svc-{r}", rows=rows)
        took_service = time.perf_counter() - t0
        took_cpu = time.process_time() - c0
    if r >= 2:
        http.append(took * 1000)
        service.append(took_service * 1000)
        cpu.append(took_cpu * 1000)
        queries.append(len(ctx.captured_queries))

def line(name, xs):
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(0.95 * len(xs)))]
    return f"  {name:8s} median {statistics.median(xs):6.1f} ms   p95 {p95:6.1f} ms   max {xs[-1]:6.1f} ms"

print(f"{rows_n} rows per batch, {rounds} rounds; table holds {TelemetryCounter.objects.count()} rows after")
print(line("http", http))
print(line("service", service))
print(line("cpu", cpu) + "   (the service's own CPU time: Python, without the database's)")
print(f"  service queries per batch: {sorted(set(queries))}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=__import__("argparse").RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with fresh_app(args.database_url) as env:
        manage(env, "seed_demo", "--quiet-logins", quiet=True)
        label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"telemetry ingest bench on {label}, production settings (in process)")
        run_worker(env, WORK, str(args.rows), str(args.rounds))


if __name__ == "__main__":
    main()
