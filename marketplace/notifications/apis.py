"""Notifications (each user's, per organization) and webhooks (an organization's admins
register endpoints, rotate their secret, read the delivery log and re-send)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.accounts import acting
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.schema import paginated
from marketplace.members.selectors import organization_for_admin
from marketplace.notifications import selectors, services
from marketplace.notifications.models import EventKind


class NotificationListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        unread = serializers.BooleanField(required=False, allow_null=True, default=None)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        organization = serializers.CharField(source="organization.slug")
        kind = serializers.CharField()
        title = serializers.CharField()
        payload = serializers.JSONField()
        created_at = serializers.DateTimeField()
        read = serializers.SerializerMethodField()

        def get_read(self, notification) -> bool:
            return notification.read_at is not None

    @extend_schema(
        parameters=[FilterSerializer, OpenApiParameter(acting.HEADER, str, OpenApiParameter.HEADER, description="only this organization's")],
        responses={200: paginated(OutputSerializer, "NotificationPage")},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.notifications_for(user=request.user, slug=acting.requested_slug(request), unread=filters.validated_data["unread"])
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class NotificationReadApi(APIView):
    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=1000, help_text="omit: all")

    class OutputSerializer(serializers.Serializer):
        marked = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        marked = services.notifications_mark_read(user=request.user, ids=data.validated_data.get("ids"))
        return Response(self.OutputSerializer({"marked": marked}).data)


class WebhookOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    organization = serializers.CharField(source="organization.slug")
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    active = serializers.BooleanField(source="is_active")
    created_at = serializers.DateTimeField()
    secret_rotated_at = serializers.DateTimeField(allow_null=True)


class WebhookSecretSerializer(WebhookOutputSerializer):
    secret = serializers.CharField(help_text="shown once: keep it to verify the X-Market-Signature header")


class WebhookListApi(APIView):
    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=2000)
        events = serializers.ListField(child=serializers.ChoiceField(choices=EventKind.choices), required=False, default=list, help_text="omit: every kind")

    OutputSerializer = WebhookOutputSerializer

    @extend_schema(responses={200: paginated(WebhookOutputSerializer, "WebhookPage")})
    def get(self, request, slug: str):
        org = organization_for_admin(user=request.user, slug=slug)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.webhooks_for_admin(user=request.user).filter(organization=org), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: WebhookSecretSerializer})
    def post(self, request, slug: str):
        org = organization_for_admin(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = services.webhook_create(organization=org, actor=request.user, **data.validated_data)
        return Response(WebhookSecretSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def delete(self, request, webhook_id: int):
        services.webhook_delete(webhook=selectors.webhook_for_admin(user=request.user, webhook_id=webhook_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(APIView):
    @extend_schema(request=None, responses={200: WebhookSecretSerializer})
    def post(self, request, webhook_id: int):
        webhook = services.webhook_rotate_secret(webhook=selectors.webhook_for_admin(user=request.user, webhook_id=webhook_id), actor=request.user)
        return Response(WebhookSecretSerializer(webhook).data)


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    webhook = serializers.IntegerField(source="webhook_id")
    event_id = serializers.UUIDField()
    kind = serializers.CharField()
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    log = serializers.JSONField(help_text="every attempt: attempt, at, status_code, error, retry_in (seconds)")


class WebhookDeliveryListApi(APIView):
    OutputSerializer = DeliveryOutputSerializer

    @extend_schema(responses={200: paginated(DeliveryOutputSerializer, "WebhookDeliveryPage")})
    def get(self, request, webhook_id: int):
        webhook = selectors.webhook_for_admin(user=request.user, webhook_id=webhook_id)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.webhook_deliveries(webhook=webhook), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class DeliveryResendApi(APIView):
    @extend_schema(request=None, responses={202: DeliveryOutputSerializer})
    def post(self, request, delivery_id):
        delivery = services.delivery_resend(delivery=selectors.delivery_for_admin(user=request.user, delivery_id=delivery_id), actor=request.user)
        return Response(DeliveryOutputSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
