"""The floors' contract (``[tool.importlinter]`` in pyproject.toml, checked by ``make lint``) covers
the whole project level: a new module in governance/ is forbidden to the floors below at once."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import governance

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_the_roof_contract_names_every_module_of_governance_but_the_kernel():
    children = {
        f"governance.{m.name}"
        for m in pkgutil.iter_modules(governance.__path__)
        if m.name != "kernel"
    }
    assert set(contracts()["roof"]["forbidden_modules"]) == children


def test_the_floors_run_bottom_to_top_with_accounts_and_the_kernel_on_the_ground():
    assert contracts()["floors"]["layers"] == [
        "rollouts",
        "reviews",
        "registry",
        "accounts : governance.kernel",
    ]
    assert set(contracts()["roof"]["source_modules"]) == {
        "accounts",
        "governance.kernel",
        "registry",
        "reviews",
        "rollouts",
    }
