"""Stage criteria (issue 17, learning-artifact-lifecycle.md): what each lifecycle stage asks of
a version, as data per tenant and class, checked against the evidence where it is kept.

- ``catalog``: the types (``Criterion``, ``Subject``, ``Verdict``) and ``register``;
- ``criteria``: the built-in checks (registered on import);
- ``policy``: ``DEFAULT_CRITERIA`` (the seed's table), validation and ``policy_for``;
- ``engine``: the rule, ``unmet`` and ``require`` (the services' refusal);
- ``checklist``: what the version page shows.
"""

from reviews.lifecycle import criteria as _builtin  # noqa: F401 - registers the built-in criteria
from reviews.lifecycle.catalog import STAGES, WATCHED, Criterion, Subject, Verdict, register
from reviews.lifecycle.engine import (
    CRITERIA_UNMET,
    Judged,
    blocking,
    describe,
    enforced,
    require,
    subject_for,
    unmet,
)
from reviews.lifecycle.policy import DEFAULT_CRITERIA, Policy, PolicyError, policy_for

__all__ = [
    "CRITERIA_UNMET",
    "DEFAULT_CRITERIA",
    "STAGES",
    "WATCHED",
    "Criterion",
    "Judged",
    "Policy",
    "PolicyError",
    "Subject",
    "Verdict",
    "blocking",
    "describe",
    "enforced",
    "policy_for",
    "register",
    "require",
    "subject_for",
    "unmet",
]
