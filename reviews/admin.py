"""Admin for reviews: a read-only window on change requests and their evidence.

Every change to a change request goes through its services (pages, API, CLI), which
check the rules and append events; the admin only lets an operator look. Approval
policies and stage criteria are edited on their pages, which save a new version through
the service.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from typing_extensions import override

from governance.kernel.admin import ReadOnlyAdmin
from reviews.models import (
    Activation,
    Approval,
    ApprovalPolicy,
    ChangeGate,
    ChangeItem,
    ChangeRequest,
    CheckRun,
    EvaluationReport,
    LifecyclePolicy,
)


class ItemInline(admin.TabularInline[ChangeItem, ChangeRequest]):
    model = ChangeItem
    fields = ("artifact", "current", "proposed")
    readonly_fields = fields
    extra = 0
    can_delete = False

    @override
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChangeRequest)
class ChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "tenant", "title", "status", "change_type", "author", "created_at")
    list_filter = ("status", "tenant", "emergency", "privacy_related", "external_egress")
    search_fields = ("title", "description")
    list_select_related = ("tenant", "author")
    inlines = [ItemInline]


@admin.register(Approval)
class ApprovalAdmin(ReadOnlyAdmin):
    list_display = (
        "change",
        "approver",
        "requirement",
        "decision",
        "revision",
        "created_at",
        "voided_at",
    )
    list_select_related = ("change", "approver")


@admin.register(CheckRun)
class CheckRunAdmin(ReadOnlyAdmin):
    list_display = ("change", "kind", "revision", "attempt", "status", "summary", "finished_at")
    list_filter = ("kind", "status")
    list_select_related = ("change",)


@admin.register(EvaluationReport)
class EvaluationReportAdmin(ReadOnlyAdmin):
    list_display = ("version", "change", "sha256", "submitted_by", "created_at")
    list_select_related = (
        "version__artifact__artifact_class",
        "version__artifact__tenant",
        "change",
    )


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "reason", "created_by", "created_at")
    list_select_related = ("tenant", "created_by")


@admin.register(LifecyclePolicy)
class LifecyclePolicyAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "enforced", "reason", "created_by", "created_at")
    list_select_related = ("tenant", "created_by")


@admin.register(ChangeGate)
class ChangeGateAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "artifact_class", "gates", "updated_by", "updated_at")


@admin.register(Activation)
class ActivationAdmin(ReadOnlyAdmin):
    list_display = ("artifact", "version", "previous", "kind", "change", "actor", "created_at")
    list_filter = ("kind",)


# Waivers are the reviews floor's too; their admin lives beside them.
from reviews.waivers import admin as waiver_admin  # noqa: E402, F401 - registers WaiverAdmin
