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


#: Built-in artifact classes: (slug, name, content kind, interface pointer, description).
BUILTIN_CLASSES: list[tuple[str, str, str, str, str]] = [
    ("prompt", "Prompt", "text", "", "A system or task prompt, with declared input variables."),
    (
        "prompt-template",
        "Prompt template",
        "text",
        "",
        "A reusable template other prompts reference.",
    ),
    (
        "response-template",
        "Response template",
        "text",
        "",
        "A template for responses sent to users.",
    ),
    ("model", "Model", "file", "", "A model artifact (weights or a pinned provider model card)."),
    (
        "routing-ruleset",
        "Routing ruleset",
        "json",
        "/interface",
        "Rules that route requests; may declare an interface schema.",
    ),
    (
        "evaluation-suite",
        "Evaluation suite",
        "json",
        "/interface",
        "Cases and metrics that evaluate a change.",
    ),
    ("scorecard", "Scorecard", "json", "", "Evaluation results for a version."),
    (
        "golden-corpus",
        "Golden corpus",
        "json",
        "/interface",
        "Inputs with expected outcomes, for simulation.",
    ),
    (
        "release-manifest",
        "Release manifest",
        "json",
        "",
        "Versions that are promoted and rolled back together.",
    ),
    ("kos-snapshot", "KOS snapshot", "file", "", "A knowledge-organisation-system snapshot."),
    ("coverage-plan", "Coverage plan", "json", "", "What a change must be evaluated against."),
    ("mapping", "Mapping / crosswalk", "json", "/interface", "A mapping between vocabularies."),
    ("overlay-proposal", "Overlay proposal", "json", "", "A proposed overlay on a base artifact."),
    ("service-run-bundle", "Service run bundle", "file", "", "Packaged evidence of a service run."),
    (
        "policy-pack",
        "Policy pack",
        "json",
        "",
        "Prohibited-content and personal-data patterns the template policy check applies.",
    ),
]
