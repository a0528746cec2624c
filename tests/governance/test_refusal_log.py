"""Every refusal of authorization is logged, whichever way it came in."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client


def refusals(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "governance.kernel.security"]


@pytest.mark.usefixtures("db")
def test_api_refusals_are_logged(api: Any, caplog: Any) -> None:
    with caplog.at_level(logging.WARNING, logger="governance.kernel.security"):
        response = api.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401
    assert refusals(caplog) == ["refused 401 GET /api/v1/me/ for anonymous from 127.0.0.1"]


@pytest.mark.usefixtures("acme")
def test_csrf_refusal_is_logged(make_user: Any, caplog: Any) -> None:
    alice = make_user("alice", acme="member")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    with caplog.at_level(logging.WARNING, logger="governance.kernel.security"):
        response = client.post("/account/tokens/", {"name": "x"})
    assert response.status_code == 403
    assert refusals(caplog) == ["refused 403 POST /account/tokens/ for alice from 127.0.0.1"]


@pytest.mark.usefixtures("acme")
def test_cli_refusal_is_logged(make_user: Any, caplog: Any, tmp_path: Any) -> None:
    from registry import services as registry

    registry.install_builtin_classes()
    gates = tmp_path / "gates.json"
    gates.write_text('[{"metric": "safety", "min": 0.9}]')
    bob = make_user("bob", acme="member")
    err = io.StringIO()
    with (
        caplog.at_level(logging.WARNING, logger="governance.kernel.security"),
        pytest.raises(SystemExit),
    ):
        call_command(
            "changes",
            "gates",
            "acme",
            "prompt",
            "--set",
            str(gates),
            "--as",
            bob.username,
            stdout=io.StringIO(),
            stderr=err,
        )
    assert err.getvalue().strip() == "error: Only an administrator can change the gates."
    assert refusals(caplog) == ["refused cli gates: Only an administrator can change the gates."]
