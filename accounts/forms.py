"""Forms check the shape of input; services enforce the rules."""

from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.choices import Role


class RoleGrantForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        label="Username",
        help_text="A member of this tenant; a platform administrator adds new members.",
    )
    role = forms.ChoiceField(choices=Role.choices, label="Role")
    reason = forms.CharField(max_length=500, required=False, label="Reason")


class RoleRevokeForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.HiddenInput)
    role = forms.ChoiceField(choices=Role.choices, widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=500, label="Why", help_text="Recorded in the access history and the log."
    )


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Name", help_text="What will use it, e.g. 'ci-publish'."
    )
    expires_days = forms.IntegerField(
        min_value=1,
        max_value=settings.API_TOKEN_MAX_EXPIRY_DAYS,
        initial=settings.API_TOKEN_DEFAULT_EXPIRY_DAYS,
        label="Expires in (days)",
    )
