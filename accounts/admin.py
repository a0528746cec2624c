"""Admin for accounts. Every change goes through the services, so the rules hold here too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from typing_extensions import override

from accounts import services
from accounts.authentication import user_of
from accounts.models import (
    ApiToken,
    Membership,
    Passkey,
    RoleGrant,
    ServiceToken,
    Tenant,
    User,
)
from accounts.selectors import is_platform_admin
from governance.kernel import errors
from governance.kernel.admin import ReadOnlyAdmin
from governance.kernel.errors import DomainError

REASON_HELP = "Recorded in the event log with the change."


def refused(exc: DomainError) -> Exception:
    """A service's refusal as the admin shows it: 403 for permissions, else a validation error."""
    if isinstance(exc, errors.Forbidden):
        return PermissionDenied(exc.message)
    return forms.ValidationError(str(exc))


# django-stubs types these by their model; Django's classes take no [...] at runtime.
if TYPE_CHECKING:
    _UserChangeForm = UserChangeForm[User]
    _UserAdmin = BaseUserAdmin[User]
    _TenantForm = forms.ModelForm[Tenant]
    _TenantAdmin = admin.ModelAdmin[Tenant]
else:
    _UserChangeForm = UserChangeForm
    _UserAdmin = BaseUserAdmin
    _TenantForm = forms.ModelForm
    _TenantAdmin = admin.ModelAdmin

# Changes to these fields go through a service that records them with the reason.
ACCESS_FIELDS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


class UserAdminChangeForm(_UserChangeForm):
    change_reason = forms.CharField(
        max_length=500,
        required=False,
        label="Why",
        help_text="Required when changing active, staff or superuser status, groups or "
        "permissions. " + REASON_HELP,
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        changed = set(ACCESS_FIELDS) & set(self.changed_data)
        if changed and not (data.get("change_reason") or "").strip():
            self.add_error(
                "change_reason",
                "Say why active, staff or superuser status, groups or permissions change.",
            )
        return data


@admin.register(User)
class UserAdmin(_UserAdmin):
    """Active, staff and superuser flags, groups and permissions change through their services,
    each with an event and a reason; a refusal rolls the whole save back and says why."""

    form = UserAdminChangeForm
    list_display = ("username", "email", "is_active", "is_staff", "is_superuser", "last_login")
    fieldsets = (*BaseUserAdmin.fieldsets, ("Why", {"fields": ("change_reason",)}))  # type: ignore[misc]

    @override
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            if not request.user.is_superuser:
                fixed += ["is_superuser", "groups", "user_permissions"]
            if not is_platform_admin(request.user):
                fixed += ["is_staff", "is_active"]
        return fixed

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except forms.ValidationError as exc:
            # A service refused in save_model; the admin's transaction rolled everything back.
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @override
    def save_model(self, request: HttpRequest, obj: User, form: Any, change: bool) -> None:
        if not change:
            # A new user is made by user_create (and its event); the form checked the password.
            try:
                created = services.user_create(
                    username=obj.username,
                    email=obj.email,
                    password=form.cleaned_data.get("password1") or None,
                    actor=user_of(request),
                    validate=False,
                )
            except DomainError as exc:
                raise refused(exc) from exc
            obj.pk = created.pk
            obj.password = created.password
            obj._state.adding = False
            return
        stored = User.objects.get(pk=obj.pk)
        wanted = {
            "is_active": obj.is_active,
            "is_staff": obj.is_staff,
            "is_superuser": obj.is_superuser,
        }
        # Everything else saves as Django saves it; the flags go through their services.
        obj.is_active, obj.is_staff, obj.is_superuser = (
            stored.is_active,
            stored.is_staff,
            stored.is_superuser,
        )
        super().save_model(request, obj, form, change)
        reason = form.cleaned_data.get("change_reason", "")
        actor = user_of(request)
        try:
            if wanted["is_staff"] != stored.is_staff:
                services.user_set_staff(
                    user=obj, is_staff=wanted["is_staff"], actor=actor, reason=reason
                )
            if wanted["is_superuser"] != stored.is_superuser:
                services.user_set_superuser(
                    user=obj, is_superuser=wanted["is_superuser"], actor=actor, reason=reason
                )
            if wanted["is_active"] != stored.is_active:
                services.user_set_active(
                    user=obj, active=wanted["is_active"], actor=actor, reason=reason
                )
        except DomainError as exc:
            raise refused(exc) from exc

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Groups and permissions are set by user_set_admin_permissions, never by save_m2m."""
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
        if not change or not {"groups", "user_permissions"} & set(form.changed_data):
            return
        user: User = form.instance
        data = form.cleaned_data
        try:
            services.user_set_admin_permissions(
                user=user,
                groups=data["groups"] if "groups" in data else user.groups.all(),
                permissions=(
                    data["user_permissions"]
                    if "user_permissions" in data
                    else user.user_permissions.all()
                ),
                actor=user_of(request),
                reason=data.get("change_reason", ""),
            )
        except DomainError as exc:
            raise refused(exc) from exc


class TenantAdminForm(_TenantForm):
    change_reason = forms.CharField(
        max_length=500, required=False, label="Why", help_text=REASON_HELP
    )

    class Meta:
        model = Tenant
        fields = ["slug", "name"]


@admin.register(Tenant)
class TenantAdmin(_TenantAdmin):
    form = TenantAdminForm
    list_display = ("slug", "name", "created_at", "created_by")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at", "created_by")

    @override
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug is part of every artifact's identity: it never changes.
        return (*self.readonly_fields, "slug") if obj else self.readonly_fields

    @override
    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            try:
                services.tenant_rename(
                    tenant=obj,
                    name=obj.name,
                    actor=user_of(request),
                    reason=form.cleaned_data.get("change_reason", ""),
                )
            except DomainError as exc:
                raise refused(exc) from exc
            return
        try:
            created = services.tenant_create(
                slug=obj.slug,
                name=obj.name,
                actor=user_of(request),
            )
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc
        obj.pk = created.pk

    @override
    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# History rows (memberships, grants, tokens) are never edited or deleted here; changes go
# through actions calling services: the kernel's ReadOnlyAdmin.


@admin.register(Membership)
class MembershipAdmin(ReadOnlyAdmin):
    list_display = ("user", "tenant", "added_at", "added_by", "removed_at", "removed_by")
    list_filter = ("tenant",)
    search_fields = ("user__username",)


class RevokeActionForm(ActionForm):
    reason = forms.CharField(
        max_length=500, required=False, label="Why", help_text="Required to revoke grants."
    )


@admin.register(RoleGrant)
class RoleGrantAdmin(ReadOnlyAdmin):
    action_form = RevokeActionForm
    list_display = (
        "user",
        "tenant",
        "role",
        "granted_at",
        "granted_by",
        "revoked_at",
        "revoked_by",
    )
    list_filter = ("role", "tenant")
    search_fields = ("user__username",)
    actions = ["revoke_selected"]

    @admin.action(description="Revoke selected grants")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[RoleGrant]) -> None:
        done = 0
        reason = request.POST.get("reason", "")
        for grant in queryset.filter(revoked_at__isnull=True).select_related("user", "tenant"):
            try:
                services.role_revoke(
                    user=grant.user,
                    role=grant.role,
                    tenant=grant.tenant,
                    actor=user_of(request),
                    reason=reason,
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                if exc.field == "reason":
                    return  # the same answer for every grant, and nothing was revoked
        self.message_user(request, f"Revoked {done} grant(s).")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    search_fields = ("user__username", "name", "prefix")
    exclude = ("digest",)
    actions = ["revoke_selected"]

    @admin.action(description="Revoke selected tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        done = 0
        for token in queryset.filter(revoked_at__isnull=True):
            services.token_revoke(token=token, actor=user_of(request))
            done += 1
        self.message_user(request, f"Revoked {done} token(s).")


@admin.register(ServiceToken)
class ServiceTokenAdmin(ReadOnlyAdmin):
    """A tenant's machine tokens; created on the tenant page, the API or the CLI (shown once)."""

    action_form = RevokeActionForm
    list_display = (
        "prefix",
        "name",
        "tenant",
        "scopes",
        "created_at",
        "created_by",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    list_filter = ("tenant",)
    search_fields = ("name", "prefix", "tenant__slug")
    exclude = ("digest",)
    actions = ["revoke_selected"]

    @admin.action(description="Revoke selected service tokens")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ServiceToken]) -> None:
        done = 0
        reason = request.POST.get("reason", "")
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                services.service_token_revoke(
                    token=token,
                    actor=user_of(request),
                    reason=reason,
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                if exc.field == "reason":
                    return  # the same answer for every token, and nothing was revoked
        self.message_user(request, f"Revoked {done} service token(s).")


@admin.register(Passkey)
class PasskeyAdmin(ReadOnlyAdmin):
    """People's passkeys (registered on their account page). A platform administrator revokes
    one here, for a lost laptop say (``passkey_revoke``; the reason is logged)."""

    action_form = RevokeActionForm
    list_display = (
        "name",
        "user",
        "algorithm",
        "created_at",
        "last_used_at",
        "revoked_at",
        "revoked_by",
        "revoke_reason",
    )
    list_filter = ("user",)
    search_fields = ("user__username", "name", "credential_id")
    actions = ["revoke_selected"]

    @admin.action(description="Revoke selected passkeys")
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Passkey]) -> None:
        done = 0
        reason = request.POST.get("reason", "")
        for passkey in queryset.filter(revoked_at__isnull=True).select_related("user"):
            try:
                services.passkey_revoke(passkey=passkey, actor=user_of(request), reason=reason)
                done += 1
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return  # the same answer for every passkey
        self.message_user(request, f"Revoked {done} passkey(s).")
