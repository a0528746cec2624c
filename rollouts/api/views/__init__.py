"""REST endpoints of rollouts: the runtime (a tenant's signed configuration of an application,
resolving one slot) and the management of applications, slots, overrides and rollouts.

Thin: ``rollouts.runtime`` builds, caches and resolves; serializers check the shape of input,
one service call decides, selectors read what is shown. Another tenant's application or
rollout answers 404, as if it did not exist; ``304`` answers a matching ``If-None-Match``.

The package's modules: ``runtime`` (the snapshot and resolve endpoints, and who may read a
tenant's runtime), ``applications`` (applications, slots, overrides), ``rollout`` (rollouts
and their actions), ``common`` (what the management endpoints share).
"""

from rollouts.api.views.applications import (
    ApplicationDetail,
    ApplicationList,
    OverrideDetail,
    SlotDetail,
    SlotList,
)
from rollouts.api.views.common import ACTIONS, slot_for
from rollouts.api.views.rollout import RolloutViewSet, UnknownRolloutAction
from rollouts.api.views.runtime import (
    RUNTIME_AUTHENTICATION,
    ResolveView,
    RuntimeSnapshotView,
    reader_may_read,
    request_generation,
)

__all__ = [
    "ACTIONS",
    "RUNTIME_AUTHENTICATION",
    "ApplicationDetail",
    "ApplicationList",
    "OverrideDetail",
    "ResolveView",
    "RolloutViewSet",
    "RuntimeSnapshotView",
    "SlotDetail",
    "SlotList",
    "UnknownRolloutAction",
    "reader_may_read",
    "request_generation",
    "slot_for",
]
