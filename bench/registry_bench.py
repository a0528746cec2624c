"""`make bench` workloads for the registry.

1. publish: versions/s through `version_publish` (validate, hash, sign, write, event) on the
   configured database (SQLite by default; pass --database-url for PostgreSQL).
2. lookup: time to resolve `slug@version` with 10 and with 10,000 versions of one artifact
   (one indexed query either way; the ratio should stay near 1).
3. lookup without a version: the artifact's active version, found through its pointer, with
   10 and 10,000 versions (the ratio should stay near 1), beside the query it replaced (the
   newest version by ordinal, which read and sorted the history).

Run: .venv/bin/python bench/registry_bench.py [--database-url postgres://postgres@127.0.0.1:5432/governance_bench_registry]
"""

from __future__ import annotations

import argparse

from harness import fresh_app, manage, run_worker

WORKER = r"""
import os, sys, time, statistics
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
import django
django.setup()
from registry import services, selectors
from registry.models import ArtifactClass
from accounts.models import Tenant

services.install_builtin_classes()
tenant = Tenant.objects.get(slug="acme")
cls = ArtifactClass.objects.get(slug="prompt")
n = int(sys.argv[1])

def artifact(slug):
    return services.artifact_create(artifact_class=cls, tenant=tenant, slug=slug, title=slug, actor=None)

pub = artifact("bench-publish")
text = "Qualify leads for {{ product }}. Customer: {{ customer }}."
start = time.perf_counter()
for i in range(n):
    services.version_publish(artifact=pub, content=services.Content(text=text + f" #{i}"), impact="patch", reason="bench", actor=None)
elapsed = time.perf_counter() - start
print(f"publish: {n} versions in {elapsed:.2f}s = {n / elapsed:.0f} versions/s")

def lookup_time(slug, version, rounds=2000):
    selectors.version_by_reference_unscoped(f"{slug}@{version}", tenant="acme")
    times = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(rounds):
            selectors.version_by_reference_unscoped(f"{slug}@{version}", tenant="acme")
        times.append((time.perf_counter() - t) / rounds)
    return min(times)

small = artifact("bench-small")
for i in range(10):
    services.version_publish(artifact=small, content=services.Content(text=text + f" #{i}"), impact="patch", reason="bench", actor=None)
big = pub  # already has n versions
few = lookup_time("bench-small", "1.0.5")
many = lookup_time("bench-publish", f"1.0.{n // 2}")
print(f"lookup slug@version: 10 versions {few * 1e6:.0f}us, {n} versions {many * 1e6:.0f}us, ratio {many / few:.2f}")

# Bench setup only: point each artifact at an early version, as a promotion would.
from registry.models import Artifact, Version
for slug in ("bench-small", "bench-publish"):
    a = Artifact.objects.get(slug=slug)
    Artifact.objects.filter(pk=a.pk).update(active_version=Version.objects.get(artifact=a, ordinal=2))

def timed(fn, rounds=500):
    fn()
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(rounds):
            fn()
        best.append((time.perf_counter() - t) / rounds)
    return min(best)

def active(slug):
    return lambda: selectors.version_by_reference(slug, tenant="acme")

def newest(slug):  # the query unversioned resolution used before: read and sort the history
    return lambda: (
        Version.objects.select_related("artifact", "artifact__artifact_class", "artifact__tenant", "created_by")
        .filter(artifact__tenant__slug="acme", artifact__slug=slug)
        .exclude(deprecation__removed_at__isnull=False)
        .order_by("-ordinal")[:1]
        .get()
    )

assert selectors.version_by_reference("bench-publish", tenant="acme").ordinal == 2
few, many = timed(active("bench-small")), timed(active("bench-publish"))
print(f"lookup slug (active version): 10 versions {few * 1e6:.0f}us, {n} versions {many * 1e6:.0f}us, ratio {many / few:.2f}")
few, many = timed(newest("bench-small")), timed(newest("bench-publish"))
print(f"  replaced query (newest by ordinal): 10 versions {few * 1e6:.0f}us, {n} versions {many * 1e6:.0f}us, ratio {many / few:.2f}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL (the database is dropped and recreated)",
    )
    args = parser.parse_args()
    with fresh_app(args.database_url) as env:
        manage(env, "accounts", "tenant-add", "acme", "--name", "Acme", quiet=True)
        label = "PostgreSQL" if args.database_url else "SQLite"
        print(f"registry bench on {label}, production settings")
        run_worker(env, WORKER, str(args.versions))


if __name__ == "__main__":
    main()
