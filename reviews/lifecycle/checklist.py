"""The version page's checklist: the criteria of the version's current stage and of the next
one, met or missing, with what is there or how to add it (registered with registry's hooks)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from django.urls import reverse

from registry.choices import Stage
from registry.selectors import stage_of
from reviews.lifecycle.catalog import STAGES, WATCHED
from reviews.lifecycle.engine import judge, subject_for

if TYPE_CHECKING:
    from registry.models import Version


@dataclass(frozen=True)
class ChecklistRow:
    key: str
    label: str
    asks: str
    met: bool
    detail: str
    url: str


@dataclass(frozen=True)
class ChecklistSection:
    stage: str
    label: str
    #: "current" (where the version stands) or "next" (what moving on needs).
    role: str
    #: Active's criteria are watched: shown, never required to enter.
    watched: bool
    rows: list[ChecklistRow]

    @property
    def met_count(self) -> int:
        return sum(1 for r in self.rows if r.met)


@dataclass(frozen=True)
class Checklist:
    stage: str
    sections: list[ChecklistSection] = field(default_factory=list)
    enforced: bool = True
    #: Where the criteria come from: "tenant", "default" or "built-in", and the row's number.
    scope: str = "built-in"
    number: int | None = None
    policy_url: str = ""
    note: str = ""


def checklist(version: Version) -> Checklist:
    """Rows for ``version``'s current stage and the next one (Active: its watched rows).

    A deprecated or retired version has no criteria left to meet: only a note.
    """
    stage = stage_of(version)
    subject = subject_for(version)
    policy = subject.policy
    base = Checklist(
        stage=stage,
        enforced=policy.enforced,
        scope=policy.scope,
        number=policy.row.number if policy.row is not None else None,
        policy_url=reverse(
            "reviews:stage-criteria", kwargs={"tenant": version.artifact.tenant.slug}
        ),
    )
    if stage not in STAGES:
        return replace(
            base, note=f"It is {Stage(stage).label.lower()}: no stage criteria apply any more."
        )
    at = STAGES.index(stage)
    shown = [(stage, "current")]
    if at + 1 < len(STAGES):
        shown.append((STAGES[at + 1], "next"))
    sections = [
        ChecklistSection(
            stage=s,
            label=Stage(s).label,
            role=role,
            watched=s in WATCHED,
            rows=[
                ChecklistRow(
                    key=j.criterion.key,
                    label=j.criterion.label,
                    asks=j.criterion.asks,
                    met=j.verdict.met,
                    detail=j.verdict.detail,
                    url=j.verdict.url,
                )
                for j in judge(subject, s)
            ],
        )
        for s, role in shown
    ]
    return replace(base, sections=sections)
