"""The version page's checklist: the criteria of the version's current stage and of the next
one, met or missing, with what is there or how to add it (registered with registry's hooks)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from django.urls import reverse

from registry.choices import Stage
from registry.selectors import stage_of
from reviews.lifecycle.catalog import STAGES, WATCHED, Subject
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
    #: "current" (where the version stands), "next" (what moving on needs) or "earlier"
    #: (what the stages before the current one ask and is still missing).
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
    """Rows for ``version``'s current stage and the next one (Active: its watched rows), after
    the earlier stages' criteria it still misses, if any.

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
    sections = [_section(subject, stage, "current")]
    if at + 1 < len(STAGES):
        sections.append(_section(subject, STAGES[at + 1], "next"))
    # What an earlier stage asks and is missing (the criteria changed since, or they were
    # advisory when it moved on): moving on needs it too, so it is said first.
    behind = [
        row
        for earlier in STAGES[:at]
        if earlier not in WATCHED
        for row in _section(subject, earlier, "earlier").rows
        if not row.met
    ]
    if behind:
        sections.insert(
            0,
            ChecklistSection(
                stage="earlier", label="Earlier stages", role="earlier", watched=False, rows=behind
            ),
        )
    return replace(base, sections=sections)


def _section(subject: Subject, stage: str, role: str) -> ChecklistSection:
    return ChecklistSection(
        stage=stage,
        label=Stage(stage).label,
        role=role,
        watched=stage in WATCHED,
        rows=[
            ChecklistRow(
                key=j.criterion.key,
                label=j.criterion.label,
                asks=j.criterion.asks,
                met=j.verdict.met,
                detail=j.verdict.detail,
                url=j.verdict.url,
            )
            for j in judge(subject, stage)
        ],
    )
