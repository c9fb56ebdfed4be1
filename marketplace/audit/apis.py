"""The audit log over HTTP: staff read every event, sellers their organizations'."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from marketplace.audit import selectors
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.schema import paginated


class AuditEventListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        action = serializers.CharField(required=False)
        object_type = serializers.CharField(required=False)
        object_id = serializers.CharField(required=False)
        actor_label = serializers.CharField(required=False)
        organization = serializers.CharField(required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        actor = serializers.CharField(source="actor_label")
        action = serializers.CharField()
        object_type = serializers.CharField()
        object_id = serializers.CharField()
        organization = serializers.CharField(source="organization.slug", allow_null=True, default=None)
        before = serializers.JSONField()
        after = serializers.JSONField()
        reason = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(parameters=[FilterSerializer], responses={200: paginated(OutputSerializer, "AuditEventPage")})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        qs = selectors.audit_events_for(user=request.user, filters=filters.validated_data).select_related("organization")
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)
