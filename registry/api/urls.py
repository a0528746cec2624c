"""Routes for the registry under /api/v1/."""

from django.urls import path

from registry.api import views

PATH = "artifacts/<slug:cls>/<slug:tenant>/<slug:slug>/"
urlpatterns = [
    path("artifact-classes/", views.ArtifactClassList.as_view(), name="api-artifact-classes"),
    path("artifacts/", views.ArtifactList.as_view(), name="api-artifacts"),
    path("resolve/", views.Resolve.as_view(), name="api-resolve"),
    path(PATH, views.ArtifactDetail.as_view(), name="api-artifact"),
    path(PATH + "owner/", views.ArtifactOwner.as_view(), name="api-artifact-owner"),
    path(PATH + "describe/", views.ArtifactDescribe.as_view(), name="api-artifact-describe"),
    path(
        PATH + "action-eligible/",
        views.ArtifactActionEligible.as_view(),
        name="api-artifact-action-eligible",
    ),
    path(PATH + "deputy/", views.ArtifactDeputy.as_view(), name="api-artifact-deputy"),
    path(
        PATH + "safety-switch/",
        views.ArtifactSafetySwitch.as_view(),
        name="api-artifact-safety-switch",
    ),
    path(
        PATH + "safety-switch/engage/",
        views.ArtifactSafetySwitchFlip.as_view(action="engage"),
        name="api-artifact-safety-engage",
    ),
    path(
        PATH + "safety-switch/release/",
        views.ArtifactSafetySwitchFlip.as_view(action="release"),
        name="api-artifact-safety-release",
    ),
    path(PATH + "versions/", views.VersionList.as_view(), name="api-versions"),
    path(PATH + "versions/<str:version>/", views.VersionDetail.as_view(), name="api-version"),
    path(
        PATH + "versions/<str:version>/diff/", views.VersionDiff.as_view(), name="api-version-diff"
    ),
    path(
        PATH + "versions/<str:version>/deprecate/",
        views.VersionDeprecate.as_view(),
        name="api-version-deprecate",
    ),
    path(
        PATH + "versions/<str:version>/retire/",
        views.VersionRetire.as_view(),
        name="api-version-retire",
    ),
]
