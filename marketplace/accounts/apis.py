"""Auth endpoints: register, login, logout, password change, and ``me``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts import selectors, services
from marketplace.accounts.models import REGISTRATION_ROLES, ApiToken
from marketplace.core.throttling import ClientScopedRateThrottle, client_address


class LoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        raw = services.user_login(**data.validated_data, client=client_address(request))
        return Response(self.OutputSerializer({"token": raw}).data)


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            services.token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class InputSerializer(serializers.Serializer):
        username = serializers.RegexField(r"^[\w.@+-]{3,150}$")
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        # no default: an email field's default must be an address (absent: "")
        email = serializers.EmailField(required=False, allow_blank=True)
        organization = serializers.CharField(max_length=200)
        role = serializers.ChoiceField(choices=[(r.value, r.label) for r in REGISTRATION_ROLES], help_text="you become the new organization's admin as well")

    @extend_schema(request=InputSerializer, responses={201: inline_serializer("Registered", {"id": serializers.IntegerField(), "username": serializers.CharField()})})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        user = services.user_register(username=v["username"], password=v["password"], email=v.get("email", ""), organization_name=v["organization"], role=v["role"])
        return Response({"id": user.pk, "username": user.username}, status=status.HTTP_201_CREATED)


class PasswordChangeApi(APIView):
    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.user_change_password(user=request.user, **data.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        email = serializers.CharField()
        organizations = inline_serializer("MeOrganization", {"slug": serializers.CharField(), "name": serializers.CharField(), "role": serializers.CharField()}, many=True)
        staff_roles = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        return Response(self.OutputSerializer(selectors.user_profile(user=request.user)).data)


# Login and registration are the brute-force targets: a tighter, scoped rate.
for _view in (LoginApi, RegisterApi):
    _view.throttle_classes = [ClientScopedRateThrottle]
    _view.throttle_scope = "auth"
