"""Routes of the OpenFeature Remote Evaluation Protocol, mounted at /ofrep/v1/ (as the protocol says)."""

from django.urls import path

from rollouts.api import ofrep

urlpatterns = [
    path("evaluate/flags", ofrep.BulkEvaluateView.as_view(), name="ofrep-evaluate-flags"),
    path("evaluate/flags/<str:key>", ofrep.EvaluateFlagView.as_view(), name="ofrep-evaluate-flag"),
]
