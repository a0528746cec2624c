"""Kinds and states of the registry: the one place they are named."""

from django.db import models


class ContentKind(models.TextChoices):
    """What a version of a class holds."""

    TEXT = "text", "Text"
    JSON = "json", "JSON"
    FILE = "file", "File"


class ImpactChoice(models.TextChoices):
    """A change's declared risk, as semantic versioning expresses it."""

    PATCH = "patch", "Patch"
    MINOR = "minor", "Minor"
    MAJOR = "major", "Major"


class Stage(models.TextChoices):
    """Where a version stands in the lifecycle (learning-artifact-lifecycle.md)."""

    DRAFT = "draft", "Draft"
    EVALUATED = "evaluated", "Evaluated"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    DEPRECATED = "deprecated", "Deprecated"
    SIMULATION_ONLY = "simulation_only", "Simulation-only"


class ArtifactClass(models.TextChoices):
    """The built-in artifact classes by slug (tenants may add their own classes beside them)."""

    PROMPT = "prompt", "Prompt"
    PROMPT_TEMPLATE = "prompt-template", "Prompt template"
    RESPONSE_TEMPLATE = "response-template", "Response template"
    MODEL = "model", "Model"
    ROUTING_RULESET = "routing-ruleset", "Routing ruleset"
    EVALUATION_SUITE = "evaluation-suite", "Evaluation suite"
    SCORECARD = "scorecard", "Scorecard"
    GOLDEN_CORPUS = "golden-corpus", "Golden corpus"
    RELEASE_MANIFEST = "release-manifest", "Release manifest"
    KOS_SNAPSHOT = "kos-snapshot", "KOS snapshot"
    COVERAGE_PLAN = "coverage-plan", "Coverage plan"
    MAPPING = "mapping", "Mapping / crosswalk"
    OVERLAY_PROPOSAL = "overlay-proposal", "Overlay proposal"
    SERVICE_RUN_BUNDLE = "service-run-bundle", "Service run bundle"
    POLICY_PACK = "policy-pack", "Policy pack"
    RECOVERY_DRILL = "recovery-drill", "Recovery drill"
    DATASET = "dataset", "Dataset"


class Determinism(models.TextChoices):
    """A version's classification (learning-artifact-lifecycle.md, Draft's entry criteria)."""

    DETERMINISTIC = "deterministic", "Deterministic"
    PROBABILISTIC = "probabilistic", "Probabilistic"


#: Built-in artifact classes: (slug, name, content kind, interface pointer, description).
#: Every member of :class:`ArtifactClass`, in its order (tests/registry check they agree).
BUILTIN_CLASSES: list[tuple[str, str, str, str, str]] = [
    (
        ArtifactClass.PROMPT,
        ArtifactClass.PROMPT.label,
        ContentKind.TEXT,
        "",
        "A system or task prompt, with declared input variables.",
    ),
    (
        ArtifactClass.PROMPT_TEMPLATE,
        ArtifactClass.PROMPT_TEMPLATE.label,
        ContentKind.TEXT,
        "",
        "A reusable template other prompts reference.",
    ),
    (
        ArtifactClass.RESPONSE_TEMPLATE,
        ArtifactClass.RESPONSE_TEMPLATE.label,
        ContentKind.TEXT,
        "",
        "A template for responses sent to users.",
    ),
    (
        ArtifactClass.MODEL,
        ArtifactClass.MODEL.label,
        ContentKind.FILE,
        "",
        "A model artifact (weights or a pinned provider model card).",
    ),
    (
        ArtifactClass.ROUTING_RULESET,
        ArtifactClass.ROUTING_RULESET.label,
        ContentKind.JSON,
        "/interface",
        "Rules that route requests; may declare an interface schema.",
    ),
    (
        ArtifactClass.EVALUATION_SUITE,
        ArtifactClass.EVALUATION_SUITE.label,
        ContentKind.JSON,
        "/interface",
        "Cases and metrics that evaluate a change.",
    ),
    (
        ArtifactClass.SCORECARD,
        ArtifactClass.SCORECARD.label,
        ContentKind.JSON,
        "",
        "Evaluation results for a version.",
    ),
    (
        ArtifactClass.GOLDEN_CORPUS,
        ArtifactClass.GOLDEN_CORPUS.label,
        ContentKind.JSON,
        "/interface",
        "Inputs with expected outcomes, for simulation.",
    ),
    (
        ArtifactClass.RELEASE_MANIFEST,
        ArtifactClass.RELEASE_MANIFEST.label,
        ContentKind.JSON,
        "",
        "Versions that are promoted and rolled back together.",
    ),
    (
        ArtifactClass.KOS_SNAPSHOT,
        ArtifactClass.KOS_SNAPSHOT.label,
        ContentKind.FILE,
        "",
        "A knowledge-organisation-system snapshot.",
    ),
    (
        ArtifactClass.COVERAGE_PLAN,
        ArtifactClass.COVERAGE_PLAN.label,
        ContentKind.JSON,
        "",
        "What a change must be evaluated against.",
    ),
    (
        ArtifactClass.MAPPING,
        ArtifactClass.MAPPING.label,
        ContentKind.JSON,
        "/interface",
        "A mapping between vocabularies.",
    ),
    (
        ArtifactClass.OVERLAY_PROPOSAL,
        ArtifactClass.OVERLAY_PROPOSAL.label,
        ContentKind.JSON,
        "",
        "A proposed overlay on a base artifact.",
    ),
    (
        ArtifactClass.SERVICE_RUN_BUNDLE,
        ArtifactClass.SERVICE_RUN_BUNDLE.label,
        ContentKind.FILE,
        "",
        "Packaged evidence of a service run.",
    ),
    (
        ArtifactClass.POLICY_PACK,
        ArtifactClass.POLICY_PACK.label,
        ContentKind.JSON,
        "",
        "Prohibited-content and personal-data patterns the template policy check applies.",
    ),
    (
        ArtifactClass.RECOVERY_DRILL,
        ArtifactClass.RECOVERY_DRILL.label,
        ContentKind.JSON,
        "",
        "The signed outcome of a recovery drill or rollback rehearsal (written by the system).",
    ),
    (
        ArtifactClass.DATASET,
        ArtifactClass.DATASET.label,
        ContentKind.JSON,
        "",
        "A dataset version pinned by hash (its location, SHA-256 and size); versions that were "
        "trained or evaluated on it name it as a dependency (dataset lineage).",
    ),
]
