"""Organization members and invitations: members list their organization; admins invite,
change roles and remove; a member may leave; the invitee accepts with the token."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts.models import OrganizationRole
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.schema import paginated
from marketplace.members import selectors, services

ROLE_CHOICES = OrganizationRole.choices


class MemberOutputSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.SerializerMethodField()
    roles = serializers.ListField(child=serializers.CharField())
    joined_at = serializers.DateTimeField()

    def get_email(self, member) -> str | None:
        # Addresses are the admins' to see, not every member's.
        return member.email if self.context.get("admin") else None


class MemberListApi(APIView):
    OutputSerializer = MemberOutputSerializer

    @extend_schema(responses={200: paginated(MemberOutputSerializer, "MemberPage")})
    def get(self, request, slug: str):
        org, roles = selectors.organization_for_member(user=request.user, slug=slug)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.organization_members(organization=org), request, view=self)
        context = {"admin": OrganizationRole.ADMIN in roles}
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True, context=context).data)


class MemberDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        roles = serializers.ListField(child=serializers.ChoiceField(choices=ROLE_CHOICES), allow_empty=False, max_length=3)

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def patch(self, request, slug: str, username: str):
        """Replace a member's roles (admins)."""
        org = selectors.organization_for_admin(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = selectors.member_get(organization=org, username=username)
        roles = services.member_roles_set(organization=org, actor=request.user, member=member, roles=data.validated_data["roles"])
        return Response(self.OutputSerializer({"username": member.username, "roles": roles}).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str, username: str):
        """Remove a member (admins), or leave (your own username)."""
        org, _roles = selectors.organization_for_member(user=request.user, slug=slug)
        if username != request.user.get_username():
            org = selectors.organization_for_admin(user=request.user, slug=slug)
        member = selectors.member_get(organization=org, username=username)
        services.member_remove(organization=org, actor=request.user, member=member)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    organization = serializers.CharField(source="organization.slug")
    username = serializers.CharField()
    email = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    state = serializers.CharField()
    invited_by = serializers.CharField(source="invited_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    accepted_at = serializers.DateTimeField(allow_null=True)


class InvitationListApi(APIView):
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
        # no default: an email field's default must be an address (the service takes "")
        email = serializers.EmailField(required=False, allow_blank=True)
        roles = serializers.ListField(child=serializers.ChoiceField(choices=ROLE_CHOICES), allow_empty=False, max_length=3)

    class CreatedSerializer(InvitationOutputSerializer):
        token = serializers.CharField(help_text="shown once: hand it to the invitee, who accepts with POST invitations/{token}/accept/")

    OutputSerializer = InvitationOutputSerializer

    @extend_schema(responses={200: paginated(InvitationOutputSerializer, "InvitationPage")})
    def get(self, request, slug: str):
        org = selectors.organization_for_admin(user=request.user, slug=slug)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.organization_invitations(organization=org), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CreatedSerializer})
    def post(self, request, slug: str):
        org = selectors.organization_for_admin(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = services.invitation_create(organization=org, actor=request.user, **data.validated_data)
        invitation = selectors.invitation_get(organization=org, invitation_id=invitation.pk)
        invitation.token = token
        return Response(self.CreatedSerializer(invitation).data, status=status.HTTP_201_CREATED)


class InvitationDetailApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, slug: str, invitation_id: int):
        """Withdraw a pending invitation (admins)."""
        org = selectors.organization_for_admin(user=request.user, slug=slug)
        services.invitation_revoke(invitation=selectors.invitation_get(organization=org, invitation_id=invitation_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptApi(APIView):
    class OutputSerializer(serializers.Serializer):
        organization = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request, token: str):
        """The invitee (signed in as the invited username or email) joins the organization."""
        org_slug, roles = services.invitation_accept(token=token, user=request.user)
        return Response(self.OutputSerializer({"organization": org_slug, "roles": roles}).data)
