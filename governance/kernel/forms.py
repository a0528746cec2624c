"""Form helpers every page uses: a service's error shown on the form, common widgets."""

from __future__ import annotations

from typing import Any

from django import forms

from governance.kernel.errors import DomainError

TEXTAREA = forms.Textarea(attrs={"rows": 3})


def lines(text: str) -> list[str]:
    """One entry per line; blank lines and surrounding space ignored."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


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
