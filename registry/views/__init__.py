"""Registry pages: reading (list, artifact, version, diff), publishing, and the lifecycle.

Every view is importable here (``registry.views.artifact``), as ``registry/urls.py`` names them.
"""

from registry.views.browse import artifact, diff, index, version
from registry.views.lifecycle import (
    artifact_describe,
    artifact_owner,
    version_deprecate,
    version_retire,
)
from registry.views.publishing import artifact_new, publish
from registry.views.safety import (
    artifact_action_eligible,
    artifact_deputy,
    artifact_safety_switch,
)

__all__ = [
    "artifact",
    "artifact_action_eligible",
    "artifact_deputy",
    "artifact_describe",
    "artifact_new",
    "artifact_owner",
    "artifact_safety_switch",
    "diff",
    "index",
    "publish",
    "version",
    "version_deprecate",
    "version_retire",
]
