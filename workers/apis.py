"""Job endpoints: a version's pipeline steps with progress, and the staff re-run."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketplace.core.permissions import IsPlatformStaff
from workers import selectors, services


class JobErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    location = serializers.CharField(help_text="a JSON path, a file or the step; empty when nothing more precise applies")


class JobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    step = serializers.CharField()
    state = serializers.CharField()
    attempts = serializers.IntegerField()
    progress = serializers.IntegerField(help_text="percent done")
    message = serializers.CharField()
    # Never Job.error (exception and traceback: staff read it in the admin).
    error = serializers.SerializerMethodField(help_text="a failed step's error; null otherwise")
    result = serializers.JSONField()
    engine_version = serializers.CharField()
    input_checksum = serializers.CharField()
    worker = serializers.CharField()
    device = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(JobErrorSerializer(allow_null=True))
    def get_error(self, job) -> dict | None:
        return selectors.job_failure(job)


class VersionJobListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField()
        state = serializers.CharField()
        jobs = JobOutputSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int):
        version, jobs = selectors.version_jobs(user=request.user, version_id=version_id)
        return Response(self.OutputSerializer({"version": version.pk, "state": version.state, "jobs": list(jobs)}).data)


class JobRerunApi(APIView):
    permission_classes = [IsPlatformStaff]

    class OutputSerializer(JobOutputSerializer):
        enqueued = serializers.BooleanField()

    @extend_schema(request=None, responses={200: OutputSerializer, 202: OutputSerializer})
    def post(self, request, version_id: int, step: str):
        job, enqueued = services.job_rerun(version_id=version_id, step=step, actor=request.user)
        job.enqueued = enqueued
        return Response(self.OutputSerializer(job).data, status=status.HTTP_202_ACCEPTED if enqueued else status.HTTP_200_OK)
