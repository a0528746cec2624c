"""Forms check the shape of input; services enforce the rules."""

from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.choices import Role, TokenScope
from governance.kernel.forms import PasswordMixin


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


class ServiceTokenCreateForm(forms.Form):
    name = forms.CharField(
        max_length=100, label="Name", help_text="The machine that will use it, e.g. 'sales-agent'."
    )
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[TokenScope.RUNTIME_READ],
        label="Scopes",
    )
    expires_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"],
        label="Expires at",
        help_text=f"Optional ({settings.TIME_ZONE}); empty keeps it until revoked.",
    )


class ServiceTokenRevokeForm(forms.Form):
    reason = forms.CharField(
        max_length=500, label="Why", help_text="Recorded in the log and shown on this page."
    )


class PasskeyRevokeForm(PasswordMixin):
    """Revoke a passkey: a deliberate act (the password, unless confirmed lately)."""

    reason = forms.CharField(max_length=500, required=False, label="Why")
