"""Admin for accounts. Every change goes through the services, so the rules hold here too."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts import services
from accounts.models import ApiToken, Membership, RoleGrant, Tenant, User
from governance.errors import DomainError


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "last_login")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "created_at", "created_by")
    search_fields = ("slug", "name")
    readonly_fields = ("created_at", "created_by")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug is part of every artifact's identity: it never changes.
        return (*self.readonly_fields, "slug") if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        try:
            created = services.tenant_create(
                slug=obj.slug,
                name=obj.name,
                actor=request.user,  # type: ignore[arg-type]
            )
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc
        obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyHistoryAdmin(admin.ModelAdmin):
    """History rows are never edited or deleted; changes go through actions calling services."""

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Membership)
class MembershipAdmin(ReadOnlyHistoryAdmin):
    list_display = ("user", "tenant", "added_at", "added_by", "removed_at", "removed_by")
    list_filter = ("tenant",)
    search_fields = ("user__username",)


@admin.register(RoleGrant)
class RoleGrantAdmin(ReadOnlyHistoryAdmin):
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
        for grant in queryset.filter(revoked_at__isnull=True).select_related("user", "tenant"):
            try:
                services.role_revoke(
                    user=grant.user,
                    role=grant.role,
                    tenant=grant.tenant,
                    actor=request.user,  # type: ignore[arg-type]
                    reason="revoked in admin",
                )
                done += 1
            except DomainError as exc:
                self.message_user(request, str(exc), messages.ERROR)
        self.message_user(request, f"Revoked {done} grant(s).")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyHistoryAdmin):
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
            services.token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
            done += 1
        self.message_user(request, f"Revoked {done} token(s).")
