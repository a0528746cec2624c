"""The client package lives in clients/python (its own pyproject); `make install` installs it
editable. Running from a checkout without that install still finds it."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import registry_client  # noqa: F401
except ImportError:  # pragma: no cover - a venv without `pip install -e clients/python`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "clients" / "python"))
