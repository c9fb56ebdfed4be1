from django.urls import path

from marketplace.members import apis

urlpatterns = [
    path("organizations/<slug:slug>/members/", apis.MemberListApi.as_view(), name="organization-members"),
    path("organizations/<slug:slug>/members/<str:username>/", apis.MemberDetailApi.as_view(), name="organization-member"),
    path("organizations/<slug:slug>/invitations/", apis.InvitationListApi.as_view(), name="organization-invitations"),
    path("organizations/<slug:slug>/invitations/<int:invitation_id>/", apis.InvitationDetailApi.as_view(), name="organization-invitation"),
    path("invitations/<str:token>/accept/", apis.InvitationAcceptApi.as_view(), name="invitation-accept"),
]
