"""Page routes for reviews: my reviews, change requests, sign-off, promotion, rollback, policy."""

from django.urls import path

from reviews import views

app_name = "reviews"
urlpatterns = [
    path("", views.index, name="index"),
    path("changes/", views.change_list, name="changes"),
    path("changes/new/", views.change_new, name="change-new"),
    path("changes/<str:reference>/", views.change_detail, name="change"),
    path("changes/<str:reference>/edit/", views.change_edit, name="change-edit"),
    path("changes/<str:reference>/record.json", views.change_record, name="change-record"),
    path("changes/<str:reference>/evidence/", views.change_evidence, name="change-evidence"),
    path(
        "changes/<str:reference>/passkey-challenge/",
        views.passkey_challenge,
        name="change-passkey-challenge",
    ),
    path("changes/<str:reference>/<str:action>/", views.change_action, name="change-action"),
    path("confirm/", views.confirm_password, name="confirm"),
    path("rollback/<slug:cls>/<slug:tenant>/<slug:slug>/", views.rollback, name="rollback"),
    path("deactivate/<slug:cls>/<slug:tenant>/<slug:slug>/", views.deactivate, name="deactivate"),
    path("policy/<slug:tenant>/", views.policy, name="policy"),
    path("policy/<slug:tenant>/stages/", views.stage_criteria, name="stage-criteria"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/<int:pk>/open/", views.notification_open_view, name="notification-open"),
]
