"""The readiness dashboard's rollouts: those in progress and the flags about to expire."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.choices import RolloutStrategy
from rollouts.choices import RolloutState
from rollouts.models import Rollout
from tests import factories
from tests.factories import TenantFactory
from tests.governance.test_readiness import section
from tests.reviews.conftest import people

__all__ = ["people"]  # fixtures used here

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def rollout_row(tenant: Any, author: Any, **fields: Any) -> Rollout:
    """A rollout as a row: the dashboard only reads, so how it got there does not matter."""
    fields.setdefault("strategy", RolloutStrategy.CANARY)
    fields.setdefault("steps", [1_000, 5_000, 25_000, 50_000, 100_000])
    fields.setdefault("step", 3)
    fields.setdefault("started_at", timezone.now() - 2 * DAY)
    return factories.rollout_row(tenant, author, **fields)


def rows(html: str, attribute: str) -> list[str]:
    return re.findall(rf'<tr {attribute}="([^"]+)">', html)


def test_rollouts_in_progress_and_expiring_flags_show(
    client: Client, acme: Any, globex: Any, people: dict[str, Any]
) -> None:
    now = timezone.now()
    author = people["author"]
    canary = rollout_row(acme, author)
    paused = rollout_row(
        acme,
        author,
        strategy=RolloutStrategy.TENANT,
        steps=[["acme"], ["b", "c"]],
        step=1,
        state=RolloutState.PAUSED,
        started_at=now - 3 * DAY,
    )
    soon = rollout_row(
        acme,
        author,
        strategy=RolloutStrategy.FLAG,
        steps=[],
        step=1,
        flag_key="new-tone",
        flag_on=True,
        flag_expires_at=now + 3 * DAY,
    )
    expired = rollout_row(
        acme,
        author,
        strategy=RolloutStrategy.FLAG,
        steps=[],
        step=1,
        flag_key="old-tone",
        flag_expires_at=now - DAY,
    )
    # Not shown: a flag far from expiry (listed as in progress only), finished or draft
    # rollouts, and another tenant's.
    later = rollout_row(
        acme,
        author,
        strategy=RolloutStrategy.FLAG,
        steps=[],
        step=1,
        flag_key="later",
        flag_expires_at=now + 30 * DAY,
    )
    for state in (RolloutState.DRAFT, RolloutState.SUCCEEDED, RolloutState.ROLLED_BACK):
        rollout_row(acme, author, state=state)
    rollout_row(globex, author)
    # The platform tenant's rollouts apply to every tenant, so acme's administrator sees them.
    platform = TenantFactory(slug="platform", name="Platform")
    shared = rollout_row(platform, author, started_at=now - 10 * DAY)

    client.force_login(people["admin"])
    html = client.get("/governance/readiness/").content.decode()
    board = section(html, "rollouts")
    assert rows(board, "data-rollout") == [
        shared.reference,
        paused.reference,
        canary.reference,
        soon.reference,
        expired.reference,
        later.reference,
    ]
    assert "step 3 of 5, 25%" in board
    assert "wave 1 of 2" in board
    assert ">Paused</span>" in board
    assert "flag new-tone on" in board
    assert canary.change.reference in board
    assert canary.change.get_absolute_url() in board
    assert f'<a href="/rollouts/{canary.reference}/">{canary.reference}</a>' in board
    assert f'<a href="/rollouts/{expired.reference}/">' in section(html, "rollouts")
    assert rows(board, "data-flag") == ["old-tone", "new-tone"]
    assert "expired: serves the default" in board
    assert board.count("expired: serves the default") == 1
    assert "(in 2\xa0days" in board or "(in 3\xa0days" in board


def test_the_rollout_rows_cost_a_fixed_number_of_queries(
    client: Client, acme: Any, people: dict[str, Any]
) -> None:
    client.force_login(people["admin"])
    author = people["author"]

    def build(n: int) -> None:
        for _ in range(n):
            rollout_row(acme, author)
            rollout_row(
                acme,
                author,
                strategy=RolloutStrategy.FLAG,
                steps=[],
                step=1,
                flag_key=f"f{uuid.uuid4().hex[:6]}",
                flag_expires_at=timezone.now() + DAY,
            )

    build(2)
    with CaptureQueriesContext(connection) as ctx:
        client.get("/governance/readiness/")
    few = len(ctx.captured_queries)
    build(6)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/governance/readiness/").content.decode()
    assert len(ctx.captured_queries) == few
    assert len(rows(section(html, "rollouts"), "data-rollout")) == 16
    assert len(rows(section(html, "rollouts"), "data-flag")) == 8
