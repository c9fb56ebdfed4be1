"""Quality endpoints: a version's reports, and buyers' evaluations of a listing's public split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from marketplace.core.errors import LimitExceeded, field_error
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.schema import paginated
from marketplace.core.storage import get_storage
from quality import selectors, services
from quality.errors import QualityErrorCode

ARTIFACT_URL_TTL = 300  # seconds: artifact links are short-lived


def _max_results_bytes() -> int:
    return int(getattr(settings, "QUALITY_EVALUATION_MAX_BYTES", 50 * 1024 * 1024))


class ReportListApi(APIView):
    """The version's quality reports (newest first per kind). Public for published versions;
    the seller organization's members and staff see them in every state; others get 404."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        kind = serializers.CharField()
        status = serializers.CharField()
        engine_version = serializers.CharField()
        inputs_checksum = serializers.CharField()
        summary = serializers.JSONField()
        device = serializers.CharField()
        seconds = serializers.FloatField()
        created_at = serializers.DateTimeField()

    @extend_schema(operation_id="versions_quality_list", responses={200: inline_serializer("ReportListPage", {"results": OutputSerializer(many=True)})})
    def get(self, request, version_id: int):
        reports = selectors.report_list(user=request.user, version_id=version_id)
        return Response({"results": self.OutputSerializer(reports, many=True).data})


class ReportDetailApi(APIView):
    """The newest report of one kind with short-lived links to its plots and full JSON."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        version_id = serializers.IntegerField()
        kind = serializers.CharField()
        status = serializers.CharField()
        engine_version = serializers.CharField()
        inputs_checksum = serializers.CharField()
        summary = serializers.JSONField()
        device = serializers.CharField()
        seconds = serializers.FloatField()
        created_at = serializers.DateTimeField()
        report_url = serializers.CharField(allow_null=True)
        plots = serializers.DictField(child=serializers.CharField())
        links_expire_in = serializers.IntegerField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int, kind: str):
        report = selectors.report_get(user=request.user, version_id=version_id, kind=kind)
        storage = get_storage()
        artifacts = report.artifacts or {}
        data: dict[str, Any] = {
            field: getattr(report, field)
            for field in ("id", "version_id", "kind", "status", "engine_version", "inputs_checksum", "summary", "device", "seconds", "created_at")
        }
        # Storage keys never leave the server: only signed, expiring links do.
        data["report_url"] = storage.download_url(artifacts["report"], ttl=ARTIFACT_URL_TTL, filename=f"{kind}-report.json") if artifacts.get("report") else None
        data["plots"] = {name: storage.download_url(key, ttl=ARTIFACT_URL_TTL, filename=f"{name}.png") for name, key in (artifacts.get("plots") or {}).items()}
        data["links_expire_in"] = ARTIFACT_URL_TTL
        return Response(self.OutputSerializer(data).data)


class ReportPlotApi(APIView):
    """One plot of the version's newest report of a kind, as PNG (the links a listing gives
    stay valid; the report's own ``plots`` links are short-lived)."""

    permission_classes = [AllowAny]

    @extend_schema(operation_id="versions_quality_plot", responses={(200, "image/png"): OpenApiTypes.BINARY})
    def get(self, request, version_id: int, kind: str, name: str):
        key = selectors.report_plot_for(user=request.user, version_id=version_id, kind=kind, name=name)
        response = HttpResponse(get_storage().read_bytes(key), content_type="image/png")
        response["Cache-Control"] = "private, max-age=300"
        return response


class EvaluationSplitApi(APIView):
    """The listing's public evaluation split for a signed-in buyer: the images' (or
    frames') ids, file names, sizes and short-lived URLs, and the categories; never the
    annotations. Run a model on the images, then POST COCO results for these ids to
    ``evaluations`` (paged: ``page``, ``page_size``)."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField(help_text="the image id COCO results name")
        file_name = serializers.CharField()
        width = serializers.IntegerField(allow_null=True)
        height = serializers.IntegerField(allow_null=True)
        size = serializers.IntegerField(allow_null=True, help_text="bytes")
        content_type = serializers.CharField(allow_null=True)
        url = serializers.CharField(allow_null=True, help_text="short-lived download URL of the image")

    @extend_schema(
        responses={
            200: paginated(
                OutputSerializer,
                "EvaluationSplitPage",
                version_id=serializers.IntegerField(),
                rule=serializers.CharField(help_text="folder: the seller's val/test folder; seeded: 10 % drawn outside the audit sample"),
                categories=serializers.ListField(child=serializers.DictField()),
                links_expire_in=serializers.IntegerField(),
                evaluations=serializers.CharField(help_text="POST COCO results here"),
            )
        }
    )
    def get(self, request, slug: str):
        split = services.evaluation_split_for_buyer(user=request.user, slug=slug)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(list(split.images), request, view=self)
        files = selectors.split_image_files(split=split, images=page)
        storage, ttl = get_storage(), int(settings.PRESIGNED_URL_TTL_SECONDS)
        rows = []
        for img in page:
            f = files.get(img["file_name"])
            # absolute either way: a presigned store URL as it is, a local signed link on this host
            url = request.build_absolute_uri(storage.download_url(f.storage_key, ttl=ttl, filename=f.path.rsplit("/", 1)[-1])) if f else None
            rows.append({**img, "size": f.size if f else None, "content_type": f.content_type if f else None, "url": url})
        response = paginator.get_paginated_response(self.OutputSerializer(rows, many=True).data)
        response.data |= {
            "version_id": split.version_id,
            "rule": split.rule,
            "categories": split.categories,
            "links_expire_in": ttl,
            "evaluations": request.build_absolute_uri(reverse("listing-evaluation-create", kwargs={"slug": slug})),
        }
        return response


@dataclass(frozen=True)
class ParsedBody:
    """A request's JSON: the bytes and the parsed value, or ``services.UNPARSED`` when the
    compiled results reader read the bytes (valid JSON; parsed later only if needed), with
    what it read (``read``)."""

    value: Any
    raw: bytes
    read: dict | None = None


class LimitedJSONParser(BaseParser):
    """JSON with a size cap checked before reading (Content-Length) and while reading, so an
    oversized upload gets a clear 413 instead of exhausting memory. ``request.data`` is a
    :class:`ParsedBody`: the evaluation stores the body as it came instead of writing the
    parsed results out again."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = _max_results_bytes()
        request = (parser_context or {}).get("request")
        declared = int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
        too_big = LimitExceeded(
            f"Results may be at most {limit} bytes.", code=QualityErrorCode.RESULTS_TOO_LARGE, details=[field_error("body", f"limit is {limit} bytes", "too_large")]
        )
        if declared > limit:
            raise too_big
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_big
        try:
            # Results the compiled reader reads are valid JSON: not parsed into Python objects
            # here (100,000 detections: about 1 s); the service checks them from the bytes.
            read = services.results_read_compiled(raw)
            if read is not None:
                return ParsedBody(services.UNPARSED, raw, read)
            return ParsedBody(json.loads(raw), raw)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class EvaluationThrottle(UserRateThrottle):
    """Evaluations cost worker time: a per-user budget (``QUALITY_EVALUATION_RATE``, default 20/hour)."""

    scope = "quality_evaluation"

    def get_rate(self) -> str:
        return getattr(settings, "QUALITY_EVALUATION_RATE", "20/hour")


class EvaluationCreateApi(APIView):
    """POST the buyer's COCO results (a JSON list of ``{"image_id", "category_id",
    "segmentation", "score"}``) for the listing's public evaluation split; 202 with the job."""

    parser_classes = [LimitedJSONParser]
    throttle_classes = [EvaluationThrottle]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField(source="state")
        url = serializers.SerializerMethodField(help_text="poll here for the report")

        def get_url(self, evaluation) -> str:
            return self.context["request"].build_absolute_uri(reverse("evaluation-detail", kwargs={"evaluation_id": evaluation.pk}))

    @extend_schema(
        request={"application/json": {"type": "array", "items": {"type": "object"}}},
        parameters=[OpenApiParameter("organization", int, description="buyer organization id, when the user has several")],
        responses={202: OutputSerializer},
    )
    def post(self, request, slug: str):
        org = request.query_params.get("organization")
        body = request.data  # a ParsedBody, or DRF's empty {} for a request without a body
        results, raw, read = (body.value, body.raw, body.read) if isinstance(body, ParsedBody) else (body, None, None)
        evaluation = services.evaluation_create(
            user=request.user, slug=slug, results=results, payload=raw, read=read, organization_id=int(org) if org and org.isdigit() else None
        )
        return Response(self.OutputSerializer(evaluation, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class EvaluationDetailApi(APIView):
    """The evaluation job and, when done, its COCO AP report (the buyer organization only)."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        listing = serializers.CharField(source="dataset.slug")
        version_id = serializers.IntegerField()
        status = serializers.CharField(source="state")
        n_detections = serializers.IntegerField()
        engine_version = serializers.CharField()
        report = serializers.JSONField()
        error = serializers.JSONField()
        seconds = serializers.FloatField()
        created_at = serializers.DateTimeField()
        finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, evaluation_id: int):
        evaluation = selectors.evaluation_get(user=request.user, evaluation_id=evaluation_id)
        return Response(self.OutputSerializer(evaluation).data)
