"""Statuses and kinds of the runtime half: rollout states, strategies, reasons, pointer kinds.

The allowed rollout transitions are written down once, here (``TRANSITIONS``); the
services check them with compare-and-swap on ``Rollout.revision``.
"""

from __future__ import annotations

from django.db import models

from reviews.choices import RolloutStrategy  # the change names its strategy

__all__ = [
    "ACTIVE_STATES",
    "BUCKETS",
    "CANARY_DEFAULT_STEPS",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "Arm",
    "PointerKind",
    "PromotionTarget",
    "Reason",
    "Resolution",
    "RolloutState",
    "RolloutStrategy",
]

#: Canary buckets: a subject's bucket is 0..BUCKETS-1; a weight is a count of buckets.
BUCKETS = 100_000

#: Default canary steps: 1% -> 5% -> 25% -> 50% -> 100% (in buckets of BUCKETS).
CANARY_DEFAULT_STEPS = [1_000, 5_000, 25_000, 50_000, 100_000]


class RolloutState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PROGRESSING = "progressing", "Progressing"
    PAUSED = "paused", "Paused"
    SUCCEEDED = "succeeded", "Succeeded"
    ROLLED_BACK = "rolled_back", "Rolled back"
    ABORTED = "aborted", "Aborted"


#: state -> the states an action may take it to (advance stays in progressing).
TRANSITIONS: dict[str, frozenset[str]] = {
    RolloutState.DRAFT: frozenset({RolloutState.PROGRESSING, RolloutState.ABORTED}),
    RolloutState.PROGRESSING: frozenset(
        {
            RolloutState.PROGRESSING,
            RolloutState.PAUSED,
            RolloutState.SUCCEEDED,
            RolloutState.ROLLED_BACK,
            RolloutState.ABORTED,
        }
    ),
    RolloutState.PAUSED: frozenset(
        {RolloutState.PROGRESSING, RolloutState.ROLLED_BACK, RolloutState.ABORTED}
    ),
    RolloutState.SUCCEEDED: frozenset({RolloutState.ROLLED_BACK}),
    RolloutState.ROLLED_BACK: frozenset(),
    RolloutState.ABORTED: frozenset(),
}

#: Rollouts whose rules take part in resolution.
ACTIVE_STATES = frozenset({RolloutState.PROGRESSING, RolloutState.PAUSED})
TERMINAL_STATES = frozenset({RolloutState.ROLLED_BACK, RolloutState.ABORTED})


class PromotionTarget(models.TextChoices):
    """The seed's ``requested_promotion_target``: ``paper`` = a designated cohort only, ``live`` = a share of all subjects."""

    PAPER = "paper", "Paper (designated cohort only)"
    LIVE = "live", "Live (a share of all subjects)"


class Reason(models.TextChoices):
    """Why a slot resolved as it did (OpenFeature's resolution reasons)."""

    STATIC = "STATIC", "Pinned in the request"
    TARGETING_MATCH = "TARGETING_MATCH", "A rule for this tenant or subject"
    SPLIT = "SPLIT", "Canary split by the subject's bucket"
    DEFAULT = "DEFAULT", "The slot's default version"
    DISABLED = "DISABLED", "Nothing may serve (switched off)"


class Arm(models.TextChoices):
    CANARY = "canary", "Canary"
    STABLE = "stable", "Stable"


class Resolution(models.TextChoices):
    """How much time one telemetry row covers: a raw bucket as sent, or an hour folded by the sweep."""

    RAW = "raw", "Raw bucket"
    HOUR = "hour", "Hour (folded)"


class PointerKind(models.TextChoices):
    """What a pointer move moved."""

    DEFAULT = "default", "Default version"
    OVERRIDE = "override", "Tenant override"
    CANARY = "canary", "Canary weight"
    FLAG = "flag", "Feature flag"
    COHORT = "cohort", "Canary cohort"
