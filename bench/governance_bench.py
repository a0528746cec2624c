"""`make bench` workloads for waivers: the time-driven sweep and the readiness dashboard.

1. grant: waivers/s through `waiver_grant` (artifact-scoped, an administrator as grantor;
   counter, insert, scope, `waiver.granted` event), all expiring 20 days after the start.
2. sweep: `governance_sweep(now=start + 15 days)` with every waiver inside the 7-day
   warning window (3 notifications each: the owner and 2 administrators, emailed through
   Django's locmem backend), the same sweep again (idempotent: creates nothing), then
   `governance_sweep(now=start + 21 days)` with every waiver expired (3 more each), and
   that one again (what every later sweep costs while the expired waivers stay).
3. dashboard: `/governance/readiness/` rendered by django.test.Client as a tenant
   administrator (median of 20 renders, plus the query count of one), after --small
   waivers and after all of them, both today (no waiver expiring soon) and at start + 15
   days (every waiver listed as expiring). The query count must not grow with the waivers.

Run: .venv/bin/python bench/governance_bench.py [--database-url postgres://postgres@127.0.0.1:5432/governance_bench_governance]
"""

from __future__ import annotations

import argparse

from harness import fresh_app, manage, run_worker

WORKER = r"""
import os, sys, time, statistics
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from datetime import timedelta
import time_machine
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from accounts import services as accounts
from accounts.choices import Role
from governance.sweep import governance_sweep
from governance.kernel.models import Notification
from reviews.waivers import services as waivers
from reviews.waivers.models import Waiver
from registry import services as registry
from registry.models import ArtifactClass

n, small, renders = int(sys.argv[1]), int(sys.argv[2]), 20
registry.install_builtin_classes()
tenant = accounts.tenant_create(slug="acme", name="Acme", actor=None)

def person(name, role=None):
    user = accounts.user_create(username=name, email=f"{name}@example.com", actor=None)
    if role:
        accounts.role_grant(user=user, role=role, tenant=tenant, actor=None, reason="bench")
    else:
        accounts.membership_add(user=user, tenant=tenant, actor=None)
    return user

owner = person("owner")
admin = person("admin-1", Role.ADMINISTRATOR)
person("admin-2", Role.ADMINISTRATOR)
cls = ArtifactClass.objects.get(slug="prompt")
artifacts = [
    registry.artifact_create(artifact_class=cls, tenant=tenant, slug=f"bench-{i}", title=f"bench {i}", actor=None, owner=owner)
    for i in range(20)
]
start = timezone.now()
granting = 0.0

def grant(count):
    global granting
    first = Waiver.objects.count()
    t = time.perf_counter()
    for i in range(first, first + count):
        waivers.waiver_grant(
            tenant=tenant, actor=admin, check_kind="offline_evaluation", owner=owner,
            justification="j", mitigation="m", expires_at=start + timedelta(days=20),
            artifacts=[artifacts[i % len(artifacts)]],
        )
    granting += time.perf_counter() - t

URL = "/governance/readiness/"

def render(client):
    response = client.get(URL, secure=True, HTTP_HOST="127.0.0.1")
    assert response.status_code == 200, response.status_code
    return response

def dashboard(at):
    client = Client()
    with time_machine.travel(at, tick=True):
        client.force_login(admin)
        body = render(client).content.decode()  # warm-up
        table = body.split('id="expiring"', 1)[1].split("</table>", 1)[0]
        listed = table.count("<tr><td><a ")
        with CaptureQueriesContext(connection) as queries:
            render(client)
        count = len(queries)  # now: the next request empties the log
        times = []
        for _ in range(renders):
            t = time.perf_counter()
            render(client)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, count, listed, len(body) / 1024

def dashboards(count):
    for label, at in (("today", timezone.now()), ("day 15", start + timedelta(days=15))):
        ms, queries, listed, kib = dashboard(at)
        print(f"dashboard, {count} waivers, {label} ({listed} listed as expiring, {kib:.0f} KiB): {ms:.1f} ms per render (median of {renders}), {queries} queries")
        counts.setdefault(label, []).append(queries)

counts = {}
grant(small)
dashboards(small)
grant(n - small)
print(f"grant: {n} waivers in {granting:.2f}s = {n / granting:.0f} waivers/s")
dashboards(n)
for label, seen in counts.items():
    print(f"dashboard queries {label}: {' == '.join(map(str, seen))} -> {'equal' if len(set(seen)) == 1 else 'GROWS'}")

def sweep(label, at):
    before = Notification.objects.count()
    mails = len(getattr(mail, "outbox", []))
    t = time.perf_counter()
    result = governance_sweep(now=at)
    elapsed = time.perf_counter() - t
    made = Notification.objects.count() - before
    sent = len(getattr(mail, "outbox", [])) - mails
    rate = f" = {made / elapsed:.0f} notifications/s" if made else ""
    print(f"sweep {label}: {elapsed:.2f}s, {made} notifications{rate}, {sent} emails, {result}")

sweep("day 15 (all expiring)", start + timedelta(days=15))
sweep("day 15 again (idempotent)", start + timedelta(days=15))
sweep("day 21 (all expired)", start + timedelta(days=21))
sweep("day 21 again (idempotent, all expired)", start + timedelta(days=21))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--waivers", type=int, default=2_000)
    parser.add_argument(
        "--small", type=int, default=200, help="waivers at the first dashboard timing"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (the database is dropped and recreated)",
    )
    args = parser.parse_args()
    if not 0 < args.small <= args.waivers:
        parser.error("--small must be between 1 and --waivers")
    locmem = "django.core.mail.backends.locmem.EmailBackend"
    with fresh_app(args.database_url, EMAIL_BACKEND=locmem) as env:
        # Production settings serve static files from a manifest; the page needs it.
        manage(env, "collectstatic", "--noinput", "-v0")
        label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"governance bench on {label}, production settings")
        run_worker(env, WORKER, str(args.waivers), str(args.small))


if __name__ == "__main__":
    main()
