"""Form helpers every page uses: a service's error shown on the form, common widgets, and the
cleaning of the typed-list fields (lines, comma lists, ``name=value`` lines)."""

from __future__ import annotations

import json
from typing import Any, Literal

from django import forms

from governance.kernel.errors import DomainError

TEXTAREA = forms.Textarea(attrs={"rows": 3})


def lines(text: str) -> list[str]:
    """One entry per line; blank lines and surrounding space ignored."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def entries(text: str) -> list[str]:
    """Entries separated by commas or new lines; blank entries and surrounding space ignored."""
    return [
        item.strip()
        for line in (text or "").splitlines()
        for item in line.split(",")
        if item.strip()
    ]


def typed_value(text: str) -> Any:
    """A value typed on a form line: a JSON number, true/false, else the text itself."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


def name_values(
    text: str,
    *,
    values: Literal["text", "typed", "number"] = "text",
    blank_values: bool = False,
    noun: str = "",
) -> dict[str, Any]:
    """``name=value`` lines as an object, blank lines skipped; a malformed line or a name given
    twice raises ``ValidationError`` naming it. ``values``: kept as text, read by
    ``typed_value``, or required to be numbers; ``blank_values`` allows ``name=``; ``noun``
    names an entry in the "given twice" message (``Label 'x' is given twice.``)."""
    out: dict[str, Any] = {}
    for number, line in enumerate((text or "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, raw = line.partition("=")
        name, raw = name.strip(), raw.strip()
        if not sep or not name or not (raw or blank_values):
            raise forms.ValidationError(f"Line {number} ('{line.strip()}') is not name=value.")
        if name in out:
            raise forms.ValidationError(f"{noun} '{name}' is given twice.".lstrip())
        value: Any = raw if values == "text" else typed_value(raw)
        if values == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise forms.ValidationError(f"'{name}' must be a number, not '{raw}'.")
        out[name] = value
    return out


def form_error(form: Any, exc: DomainError, aliases: dict[str, str] | None = None) -> None:
    """Show a service's error on the field it names (``aliases`` maps service to form names),
    else above the form. Every page turns a refused service call into a form message this way."""
    field = (aliases or {}).get(exc.field or "", exc.field)
    form.add_error(field if field in form.fields else None, exc.message)


class PasswordMixin(forms.Form):
    """The password re-confirmation a person gives for a deliberate act (governance.kernel.reauth)."""

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        required=False,
        label="Your password",
        help_text="A deliberate act: confirm your password (remembered for a few minutes).",
    )

    def __init__(self, *args: Any, needs_password: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not needs_password:
            del self.fields["password"]

    @property
    def needs_password(self) -> bool:
        return "password" in self.fields
