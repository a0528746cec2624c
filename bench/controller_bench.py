"""`python bench/controller_bench.py [--rollouts 100] [--database-url URL]`: one controller cycle
over many progressing canary rollouts.

Production settings on a fresh database (SQLite in a temp folder, or the PostgreSQL URL,
dropped and recreated), `seed_demo`, then (bench setup only, in bulk) ``--rollouts`` copies
of the demo's canary rollout at step 1 (10%), each with its canary pointer move and ten
minutes of telemetry per arm (10 canary requests a minute: the step is still collecting,
so no rollout moves). Measures, in process:

- cold: the first cycle (every manifest built and appended, every note written);
- steady: the next cycle with nothing new (manifests reused, a note each);
- traffic: a cycle after a new minute of telemetry for every rollout (counts change, the
  verdicts do not: manifests reused, a note each).

Each line gives the wall time and the statements run. Target: <= 2 s for 100 rollouts.
"""

from __future__ import annotations

import argparse

from harness import fresh_app, manage, run_worker

WORKER = r"""
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from datetime import timedelta
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rollouts.choices import PointerKind, RolloutState
from rollouts.controller import controller_cycle
from rollouts.models import PointerMove, Rollout, RolloutTarget, TelemetryCounter

n = int(sys.argv[1])
template = RolloutTarget.objects.select_related("rollout", "slot__application").filter(
    rollout__strategy="canary").order_by("rollout__number").first()
assert template is not None, "seed_demo made no canary rollout"
src = template.rollout
Rollout.objects.exclude(state__in=["succeeded", "rolled_back", "aborted"]).update(state="aborted")
start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=12)
top = Rollout.objects.order_by("-number").values_list("number", flat=True).first()
rows, moves, counters = [], [], []
for i in range(n):
    r = Rollout(number=top + 1 + i, tenant=src.tenant, change=src.change, strategy="canary",
                target="live", state=RolloutState.PROGRESSING, step=1,
                steps=[10_000, 50_000, 100_000], salt=f"bench-{i}", created_by=src.created_by,
                started_at=start)
    rows.append(r)
Rollout.objects.bulk_create(rows)
RolloutTarget.objects.bulk_create([RolloutTarget(rollout=r, slot=template.slot,
    baseline=template.baseline, candidate=template.candidate) for r in rows])
PointerMove.objects.bulk_create([PointerMove(kind=PointerKind.CANARY, artifact=template.slot.artifact,
    slot=template.slot, tenant=src.tenant, from_version=template.baseline,
    to_version=template.candidate, weight=10_000, rollout=r, reason="bench", created_at=start)
    for r in rows])


def minute(at):
    out = []
    for r in rows:
        for arm, version, requests, errors in (("canary", template.candidate, 10, 0),
                                               ("stable", template.baseline, 90, 2)):
            out.append(TelemetryCounter(tenant=src.tenant, application=template.slot.application,
                slot=template.slot, version=version, rollout=r, arm=arm, bucket_start=at,
                requests=requests, errors=errors, received_at=timezone.now()))
    TelemetryCounter.objects.bulk_create(out)


for m in range(1, 10):
    minute(start + timedelta(minutes=m))
now = timezone.now()


def cycle(label, at):
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        t = time.perf_counter()
        counts = controller_cycle(now=at)
        took = time.perf_counter() - t
    print(f"{label:<8} {took:6.2f} s {len(ctx.captured_queries):6d} statements  {counts}")


print(f"controller cycle over {n} progressing canary rollouts ({connection.vendor})")
cycle("cold", now)
cycle("steady", now + timedelta(seconds=31))
minute(start + timedelta(minutes=10))
cycle("traffic", now + timedelta(seconds=62))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="PostgreSQL (dropped, recreated)")
    args = parser.parse_args()
    with fresh_app(args.database_url) as env:
        manage(env, "seed_demo", "--quiet-logins", quiet=True)
        run_worker(env, WORKER, str(args.rollouts))


if __name__ == "__main__":
    main()
