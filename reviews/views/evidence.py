"""Attaching an evaluation report from the change page (upload a report file or type the metrics).

Both go through ``reviews.services.evidence_attach``, as the API's evidence endpoint does, so
the rules and the re-run of the checks that read evidence are the same.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_http_methods

from governance.kernel.views import submit
from reviews import presenters, selectors, services
from reviews.forms import EvidenceForm
from reviews.models import EvaluationReport
from reviews.views.common import change_page, user_of


@login_required
@require_http_methods(["GET", "POST"])
def change_evidence(request: HttpRequest, reference: str) -> HttpResponse:
    change = selectors.change_by_reference(reference, visible_to=request.user)
    if request.method == "GET":  # a reload of the form's address: back to the form
        return redirect(f"{change.get_absolute_url()}#evidence")
    form = EvidenceForm(
        request.POST,
        request.FILES,
        versions=presenters.evidence_versions(selectors.items_of(change)),
    )

    def attach(_data: dict[str, Any]) -> EvaluationReport:
        body = form.body
        return services.evidence_attach(
            change=change,
            actor=user_of(request),
            version=body["version"],
            metrics=body["metrics"],
            bias=body.get("bias") or {},
            safety=body.get("safety") or {},
            seed=body.get("seed", ""),
            rng=body.get("rng", ""),
            test_run_ids=body.get("test_run_ids", []),
            notes=body.get("notes", ""),
            simulation=bool(body.get("simulation", False)),
        )

    # A refusal of a file's report belongs on the file; of a typed one, on its field.
    aliases = {name: "report" for name in EvidenceForm.TYPED_FIELDS} if form.from_file else {}
    done = submit(form, attach, aliases={**aliases, "status": "version"}, invalid_status=400)
    if not done.ok or done.result is None:
        return change_page(request, change, posted=form, status=done.status)
    messages.success(
        request,
        f"Attached an evaluation report to {done.result.version.path}; "
        "the checks that read evidence are running again.",
    )
    return redirect(f"{change.get_absolute_url()}#checks")
