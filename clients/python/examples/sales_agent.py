"""A runnable example service for seed_demo's applications: resolve, render, report.

Against `make run` (the demo seeded), in another terminal:

    .venv/bin/python manage.py accounts service-token create acme sales-agent \\
        --scope runtime:read --scope telemetry:write          # prints gsv_...
    REGISTRY_TOKEN=gsv_... .venv/bin/python clients/python/examples/sales_agent.py

It serves a few "requests" per second for random leads of acme: each resolves sales-agent's
``qualifyLead`` slot for the lead (25% of subjects are in the 1.1.0 canary), renders the prompt,
pretends to call a model, and reports latency, errors and a quality score; every fifth request
also drafts a support reply through support-bot's ``reply`` slot. Stop the registry (Ctrl-C
`make run`) and the service keeps answering (reason CACHED, then STALE); start it again and
it converges within one poll. Options: --url, --requests, --interval, --cache-dir.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

try:
    from registry_client import RegistryClient
except ImportError:  # run from a checkout without `pip install -e clients/python`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from registry_client import RegistryClient


def fake_model(_prompt: str, rng: random.Random) -> tuple[str, float, bool]:
    """Stands in for an LLM call: an answer, its latency in ms, and whether it failed.

    It takes the rendered prompt as a real call would, but does not read it: the answer is drawn."""
    latency = rng.lognormvariate(5.0, 0.5)  # ~150 ms
    failed = rng.random() < 0.02
    return ("QUALIFIED" if rng.random() < 0.4 else "NURTURE"), latency, failed


def main() -> int:
    parser = argparse.ArgumentParser(description="Example service for seed_demo's sales-agent.")
    parser.add_argument("--url", default=os.environ.get("REGISTRY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("REGISTRY_TOKEN"))
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--requests", type=int, default=50, help="0: run until Ctrl-C")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between requests")
    parser.add_argument("--cache-dir", default=os.environ.get("REGISTRY_CACHE_DIR", "var/client"))
    args = parser.parse_args()
    if not args.token:
        parser.error("set REGISTRY_TOKEN (manage.py accounts service-token create ...)")

    common = {"tenant": args.tenant, "cache_dir": args.cache_dir, "telemetry": True}
    sales = RegistryClient(
        args.url,
        args.token,
        application="sales-agent",
        pins={"qualifyLead": "1.0.0"},  # what serves if the registry was never reached
        **common,
    )
    support = RegistryClient(args.url, args.token, application="support-bot", **common)
    rng = random.Random(7)
    served = 0
    try:
        while args.requests == 0 or served < args.requests:
            lead = f"lead-{rng.randrange(1000)}"
            started = time.perf_counter()
            r = sales.resolve("qualifyLead", subject=lead)
            try:
                prompt = sales.render(
                    "qualifyLead",
                    subject=lead,
                    variables={"product": "Acme CRM", "customer": lead},
                )
            except (KeyError, LookupError) as exc:  # a missing variable, or nothing to render
                print(f"{lead}: cannot render ({exc}); serving without the model")
                sales.report(r, latency_ms=0, error=True)
                served += 1
                continue
            answer, model_ms, failed = fake_model(prompt, rng)
            latency = (time.perf_counter() - started) * 1000 + model_ms
            quality = None if failed else rng.uniform(0.6, 1.0)
            sales.report(r, latency_ms=latency, error=failed, cost=0.002, quality=quality)
            print(
                f"{lead:9} {r.version or '-':7} {r.reason:15} {r.arm or '':7} "
                f"seq={r.sequence} {answer if not failed else 'ERROR'}"
            )
            if served % 5 == 0:
                reply = support.resolve("reply", subject=lead)
                support.report(reply, latency_ms=model_ms)
                print(f"          support-bot.reply -> {reply.version} ({reply.reason})")
            served += 1
            time.sleep(args.interval)
    except KeyboardInterrupt:
        pass
    finally:
        sales.close()  # sends the telemetry still queued
        support.close()
    print(f"served {served} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
