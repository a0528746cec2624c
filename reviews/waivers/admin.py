"""Admin for waivers (under their ``governance`` label: /admin/governance/waiver/)."""

from __future__ import annotations

from django.contrib import admin

from governance.kernel.admin import ReadOnlyAdmin
from reviews.waivers.models import Waiver


@admin.register(Waiver)
class WaiverAdmin(ReadOnlyAdmin):
    """Read-only: waivers are granted, renewed and revoked through their pages, API or CLI."""

    list_display = ("__str__", "tenant", "owner", "starts_at", "expires_at", "revoked_at")
    list_filter = ("check_kind", "tenant")
    search_fields = ("justification", "mitigation", "owner__username")
    list_select_related = ("tenant", "owner")
