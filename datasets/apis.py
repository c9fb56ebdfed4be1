"""Seller, auditor and staff endpoints for datasets, versions, uploads and audits.
Views parse, call one service or selector, and serialize with explicit field lists."""

from __future__ import annotations

import os
import tempfile

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets import selectors, services
from datasets.errors import DatasetErrorCode
from datasets.models import AnnotationKind, Dataset, FileRole, Sensor, UploadState, VocabularyKind, VocabularyTerm
from datasets.selectors import VersionAccess
from datasets.vocabulary import unknown_message, vocabulary_load
from marketplace.accounts.acting import acting_organization, requested_slug
from marketplace.accounts.models import OrganizationRole
from marketplace.core.errors import InvalidInput, field_error
from marketplace.core.permissions import IsAuditor
from marketplace.core.storage import get_storage


def _results(serializer_class, name: str):
    """Schema of the ``{"results": [...]}`` bodies these lists answer (capped, unpaged)."""
    return inline_serializer(name=name, fields={"results": serializer_class(many=True)})


class VocabularyTermsField(serializers.ListField):
    """Terms of one vocabulary, named by slug, name or alias (``UR5e``, ``ur5-e``); an
    unknown value is refused with the closest known ones."""

    def __init__(self, kind: str, **kwargs) -> None:
        self.kind = kind
        super().__init__(child=serializers.CharField(max_length=120), max_length=50, **kwargs)

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        vocab = vocabulary_load([self.kind])
        slugs, errors = [], []
        for value in values:
            slug = vocab.resolve(self.kind, value)
            if slug is None:
                errors.append(serializers.ErrorDetail(unknown_message(self.kind, value, vocab.suggest(self.kind, value)), code="unknown_value"))
            elif slug not in slugs:
                slugs.append(slug)
        if errors:
            raise serializers.ValidationError(errors)
        return list(VocabularyTerm.objects.filter(kind=self.kind, slug__in=slugs))


def _terms(kind: str):
    return VocabularyTermsField(kind, required=False)


def _sensors():
    return serializers.ListField(child=serializers.ChoiceField(choices=Sensor.choices), max_length=len(Sensor), required=False)


def _refuse_renamed(data) -> None:
    """``modality`` was the annotation format; it is ``annotation_kind`` now, and sensors are ``sensors``."""
    if isinstance(data, dict) and "modality" in data:
        raise InvalidInput(
            "The field modality was renamed.",
            code=DatasetErrorCode.RENAMED_FIELD,
            details=[field_error("modality", "renamed: annotation_kind (instances, video, panoptic); the sensors go in sensors", "renamed")],
        )


class DatasetOutput(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    embodiments = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    tasks = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    scene_types = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    sensors = serializers.ListField(child=serializers.ChoiceField(choices=Sensor.choices), read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "slug",
            "owner",
            "title",
            "summary",
            "description",
            "annotation_kind",
            "sensors",
            "embodiments",
            "tasks",
            "scene_types",
            "annotation_license",
            "price",
            "currency",
            "created_at",
            "updated_at",
        ]


class VocabularyListApi(APIView):
    """The controlled vocabularies (public): what ``embodiment``, ``task`` and ``scene``
    take, on datasets and in search, with the aliases each term is also found by."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=VocabularyKind.choices)
        slug = serializers.CharField()
        name = serializers.CharField()
        aliases = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="vocabularies_list",
        parameters=[OpenApiParameter("kind", str, enum=list(VocabularyKind.values), description="one vocabulary (default: all)")],
        responses={200: _results(OutputSerializer, "VocabularyList")},
    )
    def get(self, request):
        kind = request.query_params.get("kind")
        if kind is not None and kind not in VocabularyKind.values:
            raise InvalidInput(
                "The vocabulary is not known.",
                code=DatasetErrorCode.INVALID_FILTER,
                details=[field_error("kind", f"one of {list(VocabularyKind.values)}", "unknown_value")],
            )
        return Response({"results": self.OutputSerializer(selectors.vocabulary_terms(kind=kind), many=True).data})


class DatasetListApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=80)
        title = serializers.CharField(max_length=200)
        summary = serializers.CharField(max_length=500, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
        annotation_kind = serializers.ChoiceField(choices=AnnotationKind.choices, required=False)
        sensors = _sensors()
        embodiments = _terms(VocabularyKind.EMBODIMENT)
        tasks = _terms(VocabularyKind.TASK)
        scene_types = _terms(VocabularyKind.SCENE)
        annotation_license = serializers.CharField(max_length=64)
        price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
        currency = serializers.CharField(max_length=3, min_length=3, required=False)
        organization = serializers.SlugField(required=False, help_text="seller organization slug when the user sells for several (or the X-Organization header)")

    OutputSerializer = DatasetOutput

    @extend_schema(operation_id="datasets_list", responses={200: _results(DatasetOutput, "DatasetList")})
    def get(self, request):
        qs = selectors.datasets_for_seller(user=request.user)
        return Response({"results": self.OutputSerializer(qs[:500], many=True).data})

    @extend_schema(request=InputSerializer, responses={201: DatasetOutput})
    def post(self, request):
        _refuse_renamed(request.data)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        if "sensors" in data:
            data["sensors"] = list(dict.fromkeys(data["sensors"]))
        data.pop("organization", None)
        org = acting_organization(user=request.user, role=OrganizationRole.SELLER, slug=requested_slug(request, field="organization"))
        dataset = services.dataset_create(owner=org, actor=request.user, **data)
        return Response(self.OutputSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200, required=False)
        summary = serializers.CharField(max_length=500, required=False, allow_blank=True)
        description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
        annotation_kind = serializers.ChoiceField(choices=AnnotationKind.choices, required=False)
        sensors = _sensors()
        embodiments = _terms(VocabularyKind.EMBODIMENT)
        tasks = _terms(VocabularyKind.TASK)
        scene_types = _terms(VocabularyKind.SCENE)
        annotation_license = serializers.CharField(max_length=64, required=False)
        price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
        currency = serializers.CharField(max_length=3, min_length=3, required=False)

    OutputSerializer = DatasetOutput

    @extend_schema(responses={200: DatasetOutput})
    def get(self, request, slug: str):
        return Response(self.OutputSerializer(selectors.dataset_for_seller(user=request.user, slug=slug)).data)

    @extend_schema(request=InputSerializer, responses={200: DatasetOutput})
    def patch(self, request, slug: str):
        dataset = selectors.dataset_for_seller(user=request.user, slug=slug)
        _refuse_renamed(request.data)
        unknown = sorted(set(request.data) - set(self.InputSerializer().fields)) if isinstance(request.data, dict) else []
        if unknown:  # server-owned fields (owner, slug, state, ...) are refused, not ignored
            raise InvalidInput(
                "These fields cannot be changed.",
                code=DatasetErrorCode.READ_ONLY_FIELD,
                details=[field_error(f, "read-only", "read_only") for f in unknown],
            )
        s = self.InputSerializer(data=request.data, partial=True)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        if "sensors" in data:
            data["sensors"] = list(dict.fromkeys(data["sensors"]))
        dataset = services.dataset_update(dataset=dataset, actor=request.user, **data)
        return Response(self.OutputSerializer(dataset).data)


class VersionSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    state = serializers.CharField()
    notes = serializers.CharField()
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True)


class DatasetVersionsApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        notes = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    OutputSerializer = VersionSummaryOutput

    @extend_schema(operation_id="datasets_versions_list", responses={200: _results(VersionSummaryOutput, "VersionList")})
    def get(self, request, slug: str):
        dataset = selectors.dataset_for_seller(user=request.user, slug=slug)
        return Response({"results": self.OutputSerializer(dataset.versions.order_by("-number")[:500], many=True).data})

    @extend_schema(request=InputSerializer, responses={201: VersionSummaryOutput})
    def post(self, request, slug: str):
        dataset = selectors.dataset_for_seller(user=request.user, slug=slug)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        version = services.version_create(dataset=dataset, actor=request.user, **s.validated_data)
        return Response(self.OutputSerializer(version).data, status=status.HTTP_201_CREATED)


class FileOutput(serializers.Serializer):
    role = serializers.CharField()
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    content_type = serializers.CharField()
    origin = serializers.CharField()


class UploadOutput(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.IntegerField(source="version_id")
    role = serializers.CharField()
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    part_size = serializers.IntegerField()
    part_count = serializers.IntegerField()
    state = serializers.CharField()
    shard = serializers.BooleanField()
    members = serializers.IntegerField(help_text="files a verified shard recorded")
    error = serializers.JSONField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    backend = serializers.SerializerMethodField()
    parts = serializers.SerializerMethodField()

    def get_backend(self, obj) -> str:
        return get_storage().backend

    def get_parts(self, obj) -> list[dict]:
        return self.context.get("parts", [])


def upload_body(upload) -> dict:
    """An upload as the client sees it, with its parts' plan (fresh presigned URLs on S3)."""
    return UploadOutput(upload, context={"parts": services.upload_parts_plan(upload=upload)}).data


class VersionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        dataset = serializers.CharField(source="dataset.slug")
        number = serializers.IntegerField()
        state = serializers.CharField()
        notes = serializers.CharField()
        created_at = serializers.DateTimeField()
        submitted_at = serializers.DateTimeField(allow_null=True)
        published_at = serializers.DateTimeField(allow_null=True)
        revocation_pending = serializers.BooleanField(help_text="a consent revocation reached it: publish a version without the withdrawn files by the deadline")
        revocation_deadline = serializers.DateTimeField(allow_null=True, help_text="when it is suspended unless replaced")
        validation_report = serializers.JSONField()
        statistics = serializers.JSONField()
        manifest = serializers.SerializerMethodField()
        uploads = serializers.SerializerMethodField()
        previews = serializers.SerializerMethodField()
        format = serializers.SerializerMethodField()

        def get_manifest(self, obj) -> list[dict]:
            qs = selectors.version_files(version=obj).exclude(role__in=[FileRole.CACHE, FileRole.PREVIEW])
            return FileOutput(qs[:5000], many=True).data

        def get_uploads(self, obj) -> list[dict]:
            return [
                {"id": str(u.pk), "name": u.name, "role": u.role, "state": u.state, "shard": u.shard, "error": u.error}
                for u in obj.uploads.exclude(state=UploadState.COMPLETE).exclude(role=FileRole.REFERENCE)[:200]
            ]

        def get_previews(self, obj) -> list[str]:
            info = selectors.version_ingest_info(version=obj)
            storage = get_storage()
            return [storage.download_url(k, ttl=600, filename=k.rsplit("/", 1)[-1]) for k in (info.previews if info else [])]

        def get_format(self, obj) -> str | None:
            info = selectors.version_ingest_info(version=obj)
            return info.format if info else None

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int):
        version = selectors.version_visible(user=request.user, version_id=version_id, access=VersionAccess.INTERNALS)
        return Response(self.OutputSerializer(version).data)


class VersionSubmitApi(APIView):
    permission_classes = [IsAuthenticated]
    OutputSerializer = VersionSummaryOutput

    @extend_schema(request=None, responses={200: VersionSummaryOutput})
    def post(self, request, version_id: int):
        version = selectors.version_visible(user=request.user, version_id=version_id, access=VersionAccess.CHANGE)
        version = services.version_submit(version=version, actor=request.user)
        return Response(self.OutputSerializer(version).data)


class UploadStartApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(
            choices=[
                (r.value, r.label)
                for r in (
                    FileRole.ANNOTATIONS,
                    FileRole.IMAGES,
                    FileRole.SECOND_PASS,
                    FileRole.VIDEO,
                    FileRole.PANOPTIC,
                    FileRole.PROVENANCE_DOCS,
                    FileRole.REFERENCE,
                )
            ],
            help_text="reference: the auditor's reference for the audit sample (a COCO JSON, or a panoptic archive), while the version is processing or in review",
        )
        name = serializers.CharField(max_length=512)
        size = serializers.IntegerField(min_value=0)
        sha256 = serializers.CharField(min_length=64, max_length=64)
        part_size = serializers.IntegerField(min_value=1, required=False)
        part_sha256 = serializers.ListField(child=serializers.CharField(min_length=64, max_length=64), required=False, max_length=10_000)
        shard = serializers.BooleanField(
            required=False, default=False, help_text="a tar of many small files (role images or panoptic): each member becomes a file of the version"
        )

    OutputSerializer = UploadOutput

    @extend_schema(request=InputSerializer, responses={201: UploadOutput})
    def post(self, request, version_id: int):
        reference = isinstance(request.data, dict) and request.data.get("role") == FileRole.REFERENCE
        access = VersionAccess.REFERENCE if reference else VersionAccess.CHANGE
        version = selectors.version_visible(user=request.user, version_id=version_id, access=access)
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        upload = services.upload_start(version=version, actor=request.user, **s.validated_data)
        return Response(upload_body(upload), status=status.HTTP_201_CREATED)


class UploadDetailApi(APIView):
    permission_classes = [IsAuthenticated]
    OutputSerializer = UploadOutput

    @extend_schema(parameters=[OpenApiParameter("upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH)], responses={200: UploadOutput})
    def get(self, request, upload_id):
        return Response(upload_body(selectors.upload_for_seller(user=request.user, upload_id=upload_id)))


class UploadPartApi(APIView):
    """Local storage: one part through the API, streamed to disk (never read whole)."""

    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]  # the body is never parsed: it is streamed below

    class OutputSerializer(serializers.Serializer):
        number = serializers.IntegerField()
        size = serializers.IntegerField()

    @extend_schema(
        parameters=[
            OpenApiParameter("upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
            OpenApiParameter("Content-Range", str, OpenApiParameter.HEADER),
        ],
        request={"application/octet-stream": OpenApiTypes.BINARY},
        responses={200: OutputSerializer},
    )
    def put(self, request, upload_id, n: int):
        upload = selectors.upload_for_seller(user=request.user, upload_id=upload_id)
        raw = request._request  # the WSGI request: a length-limited stream of the body
        declared = raw.META.get("CONTENT_LENGTH")
        length = int(declared) if declared and declared.isdigit() else None
        part = services.upload_put_part(
            upload=upload, number=n, content_range=raw.META.get("HTTP_CONTENT_RANGE"), stream=raw, length=length
        )
        return Response(self.OutputSerializer(part).data)


class UploadCompleteApi(APIView):
    permission_classes = [IsAuthenticated]
    OutputSerializer = UploadOutput

    @extend_schema(
        parameters=[OpenApiParameter("upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH)], request=None, responses={202: UploadOutput}
    )
    def post(self, request, upload_id):
        upload = selectors.upload_for_seller(user=request.user, upload_id=upload_id)
        upload = services.upload_complete(upload=upload, actor=request.user)
        return Response(upload_body(upload), status=status.HTTP_202_ACCEPTED)


class UploadAbortApi(APIView):
    permission_classes = [IsAuthenticated]
    OutputSerializer = UploadOutput

    @extend_schema(
        parameters=[OpenApiParameter("upload_id", OpenApiTypes.UUID, OpenApiParameter.PATH)], request=None, responses={200: UploadOutput}
    )
    def post(self, request, upload_id):
        upload = selectors.upload_for_seller(user=request.user, upload_id=upload_id)
        return Response(upload_body(services.upload_abort(upload=upload, actor=request.user)))


class AuditSamplesApi(APIView):
    permission_classes = [IsAuditor]

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(source="id")
        dataset = serializers.CharField(source="dataset.slug")
        number = serializers.IntegerField()
        state = serializers.CharField()
        submitted_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(responses={200: _results(OutputSerializer, "AuditSamplesPending")})
    def get(self, request):
        return Response({"results": self.OutputSerializer(selectors.audit_samples_pending()[:500], many=True).data})


class AuditFrameOutput(serializers.Serializer):
    """A sampled frame of a video version."""

    video_id = serializers.IntegerField()
    frame_index = serializers.IntegerField(help_text="the frame's position in its video, from 0")
    file_name = serializers.CharField()
    url = serializers.CharField(allow_null=True, help_text="short-lived download URL of the frame's image")


class AuditClipOutput(serializers.Serializer):
    """A drawn clip: one video and the run of its frames in the sample."""

    video_id = serializers.IntegerField()
    file = serializers.CharField(required=False, help_text="the version's annotation file holding the video")
    length = serializers.IntegerField(help_text="frames in the video (the reference's segmentations per track)")
    height = serializers.IntegerField()
    width = serializers.IntegerField()
    frame_indices = serializers.ListField(child=serializers.IntegerField())
    file_names = serializers.ListField(child=serializers.CharField(allow_blank=True), help_text="every frame of the video, in order")
    image_ids = serializers.ListField(child=serializers.IntegerField(), required=False, help_text="COCO frames: each sampled frame's image id")


class AuditSampleApi(APIView):
    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer):
        version = serializers.IntegerField()
        image_ids = serializers.ListField(child=serializers.IntegerField())
        images = serializers.ListField(child=serializers.DictField())
        # video versions: the sampled frames and the clips they come from
        frames = AuditFrameOutput(many=True)
        clips = AuditClipOutput(many=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int):
        version = selectors.version_visible(user=request.user, version_id=version_id, access=VersionAccess.AUDIT)
        listing = selectors.audit_sample_listing(version=version)
        body = {"version": version.pk, "image_ids": [i["image_id"] for i in listing["images"]], **listing}
        return Response(self.OutputSerializer(body).data)


REFERENCE_ARCHIVE_TYPES = ("application/zip", "application/x-tar", "application/gzip", "application/x-gzip")


class AuditReferenceApi(APIView):
    """The reference as the request body (bounded by the request size limit), validated
    like a seller's annotation file and stored as role ``reference``: a COCO instances JSON
    (``Content-Type: application/json``), or a panoptic reference as one zip or tar archive
    of its panoptic JSON and PNGs (``Content-Type: application/zip`` or a tar type)."""

    permission_classes = [IsAuditor]

    class OutputSerializer(serializers.Serializer):
        path = serializers.CharField()
        sha256 = serializers.CharField()
        size = serializers.IntegerField()

    @extend_schema(request={"application/json": OpenApiTypes.OBJECT, "application/zip": OpenApiTypes.BINARY}, responses={201: OutputSerializer})
    def post(self, request, version_id: int):
        version = selectors.version_visible(user=request.user, version_id=version_id, access=VersionAccess.REFERENCE)
        archive = request.content_type in REFERENCE_ARCHIVE_TYPES
        body = request.body
        fd, path = tempfile.mkstemp(suffix=".zip" if archive else ".json")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            dfile = services.audit_reference_submit(version=version, actor=request.user, path=path, archive=archive)
        finally:
            os.unlink(path)
        return Response(self.OutputSerializer(dfile).data, status=status.HTTP_201_CREATED)
