"""Every change to the registry, one module per subject; every public name is importable here.

- :mod:`~registry.services.classes`: artifact classes (built-in, added, changed).
- :mod:`~registry.services.artifacts`: artifacts and their owners.
- :mod:`~registry.services.publishing`: publishing versions (validate, hash, sign, lineage).
- :mod:`~registry.services.recommendation`: the version users should take by default.
- :mod:`~registry.services.safety`: action-eligible artifacts, their deputy and safety switch.
- :mod:`~registry.services.lifecycle`: stages, deprecation, removal, retirement.
- :mod:`~registry.services.common`: the checks they share.

Each service checks permission, writes, and appends its event in one transaction.
"""

from registry.services.artifacts import artifact_create, artifact_describe, artifact_owner_set
from registry.services.classes import (
    artifact_class_check,
    artifact_class_create,
    artifact_class_update,
    install_builtin_classes,
)
from registry.services.common import check_slug, require_author
from registry.services.lifecycle import (
    StillServing,
    deprecation_remove,
    deprecations_remove_due,
    removal_held_alert,
    version_deprecate,
    version_retire,
    version_stage_set,
)
from registry.services.publishing import (
    LIFECYCLE_METADATA_KEYS,
    SHA256_RE,
    TEMPLATE_CLASSES,
    TEXT_CLASSES_WITH_VARIABLES,
    Content,
    PublishPlan,
    interface_of,
    version_plan,
    version_publish,
    versioner,
)
from registry.services.recommendation import artifact_recommend, recommendation_withdraw
from registry.services.safety import (
    artifact_action_eligible_set,
    artifact_deputy_set,
    safety_switch_engage,
    safety_switch_release,
)

__all__ = [
    "LIFECYCLE_METADATA_KEYS",
    "SHA256_RE",
    "TEMPLATE_CLASSES",
    "TEXT_CLASSES_WITH_VARIABLES",
    "Content",
    "PublishPlan",
    "StillServing",
    "artifact_action_eligible_set",
    "artifact_class_check",
    "artifact_class_create",
    "artifact_class_update",
    "artifact_create",
    "artifact_deputy_set",
    "artifact_describe",
    "artifact_owner_set",
    "artifact_recommend",
    "check_slug",
    "deprecation_remove",
    "deprecations_remove_due",
    "install_builtin_classes",
    "interface_of",
    "recommendation_withdraw",
    "removal_held_alert",
    "require_author",
    "safety_switch_engage",
    "safety_switch_release",
    "version_deprecate",
    "version_plan",
    "version_publish",
    "version_retire",
    "version_stage_set",
    "versioner",
]
