"""HTTP endpoints for licenses, provenance, checks, moderation and the Croissant export.
Croissant export. Views parse, call one service or selector, and serialize."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.selectors import VersionAccess, version_published_for_slug, version_visible
from licensing import selectors, services
from licensing.cards import card_check
from licensing.croissant import listing_croissant
from licensing.errors import LicensingErrorCode
from licensing.models import FieldStatus, LegalBasis
from marketplace.accounts.acting import acting_organization, requested_slug
from marketplace.accounts.models import OrganizationRole
from marketplace.core.errors import InvalidInput
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.permissions import IsModerator
from marketplace.core.schema import paginated


class LicenseListApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        spdx_id = serializers.CharField()
        name = serializers.CharField()
        url = serializers.CharField()
        commercial_use = serializers.BooleanField()
        derivatives = serializers.BooleanField()
        share_alike = serializers.BooleanField()
        attribution = serializers.BooleanField()
        redistribution = serializers.BooleanField()

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request):
        return Response(self.OutputSerializer(selectors.license_list(), many=True).data)


class EffectiveTermsSerializer(serializers.Serializer):
    commercial_use = serializers.BooleanField()
    derivatives = serializers.BooleanField()
    share_alike = serializers.BooleanField()
    attribution = serializers.BooleanField()
    redistribution = serializers.BooleanField()
    annotation_license = serializers.CharField(allow_null=True)
    licenses = serializers.ListField(child=serializers.DictField())
    images = serializers.IntegerField()
    images_without_license = serializers.IntegerField()
    commercial_images = serializers.IntegerField()
    unknown = serializers.ListField(child=serializers.DictField())
    conflicts = serializers.ListField(child=serializers.DictField())


class EffectiveTermsApi(APIView):
    @extend_schema(responses={200: EffectiveTermsSerializer})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.EVIDENCE)
        return Response(EffectiveTermsSerializer(selectors.version_effective_terms(version=version)).data)


class ProvenanceOutputSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    state = serializers.CharField()
    fields = serializers.DictField(child=serializers.DictField())
    consent_records = serializers.ListField(child=serializers.DictField(), required=False, help_text="the seller's members and staff only")
    consent_summary = serializers.DictField(help_text="records, sessions, legal_bases (count per basis), with_document: no ids")
    completeness = serializers.FloatField()
    verified_share = serializers.FloatField()


class ProvenanceApi(APIView):
    class ConsentSerializer(serializers.Serializer):
        """One consent ledger entry: what it covers (a session, or lists of sessions,
        episodes, videos or file paths; or the images and videos whose ``consent_id``
        attribute in the annotations equals this record's), its basis, scope, date and
        document."""

        session_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        consent_id = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        legal_basis = serializers.ChoiceField(choices=LegalBasis.choices)
        scope = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        given_on = serializers.DateField(required=False, allow_null=True, default=None)
        sessions = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list, max_length=10000)
        episodes = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list, max_length=10000)
        videos = serializers.ListField(child=serializers.CharField(max_length=200), required=False, default=list, max_length=10000)
        files = serializers.ListField(child=serializers.CharField(max_length=1024), required=False, default=list, max_length=10000)
        document_file_id = serializers.IntegerField(required=False, allow_null=True, default=None)
        document = serializers.CharField(
            max_length=1024, required=False, allow_blank=True, help_text="the path of a provenance document of the version, instead of document_file_id"
        )

    class InputSerializer(serializers.Serializer):
        # Values only: ``fields`` maps a provenance name to its value. Statuses are set
        # through the moderation routes; a status sent here is refused by the value checks.
        fields = serializers.DictField(required=False, default=dict)
        consent_records = serializers.ListField(required=False, allow_null=True, default=None)

        def validate(self, attrs):
            unknown = set(self.initial_data) - {"fields", "consent_records"}
            if unknown:
                raise serializers.ValidationError({k: "not accepted here" for k in sorted(unknown)})
            if attrs.get("consent_records") is not None:
                consent = ProvenanceApi.ConsentSerializer(data=attrs["consent_records"], many=True)
                consent.is_valid(raise_exception=True)
                attrs["consent_records"] = [dict(c) for c in consent.validated_data]
            return attrs

    @extend_schema(responses={200: ProvenanceOutputSerializer})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.EVIDENCE)
        return Response(ProvenanceOutputSerializer(selectors.version_provenance_shown(user=request.user, version=version)).data)

    @extend_schema(request=InputSerializer, responses={200: ProvenanceOutputSerializer})
    def put(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.CHANGE)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.provenance_update(version=version, actor=request.user, **data.validated_data)
        return Response(ProvenanceOutputSerializer(selectors.version_provenance_shown(user=request.user, version=version)).data)


class DatasetCardCheckApi(APIView):
    """Check a whole dataset card before anything is written: the dataset fields as the
    dataset routes take them, the license against the catalogue, split names, provenance
    values and consent records. 200 when the server accepts the whole card, else 400
    ``invalid_card`` with every error located by card key. Writes nothing."""

    class InputSerializer(serializers.Serializer):
        slug = serializers.CharField(max_length=200, help_text="the dataset's slug (created from the card when the seller has none)")
        card = serializers.JSONField(help_text="the card: dataset fields, splits, provenance, consent_records")
        submit = serializers.BooleanField(required=False, default=False, help_text="also require what submitting a version needs")

    class OutputSerializer(serializers.Serializer):
        valid = serializers.BooleanField()
        exists = serializers.BooleanField(help_text="the seller has a dataset by that slug (the card updates it)")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        acting_organization(user=request.user, role=OrganizationRole.SELLER, slug=requested_slug(request))
        s = self.InputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        errors, facts = card_check(user=request.user, **s.validated_data)
        if errors:
            raise InvalidInput(f"The dataset card has {len(errors)} error(s).", code=LicensingErrorCode.INVALID_CARD, details=errors)
        return Response(self.OutputSerializer({"valid": True, **facts}).data)
class ProvenanceSummaryApi(APIView):
    """The public part of a version's provenance record, for buyers comparing listings:
    every field's value and status (verified / disputed / self-declared), consent records
    counted by legal basis, completeness. No consent or session ids, notes or documents."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        version_id = serializers.IntegerField()
        fields = serializers.DictField(child=serializers.DictField(), help_text='name -> {"label", "status", "required", "value"} ("count" instead of "value" for fields that may name people)')
        consent_records = serializers.DictField(help_text='{"records", "sessions", "legal_bases" (count per basis), "with_document"}: no ids')
        completeness = serializers.FloatField()
        verified_share = serializers.FloatField()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.EVIDENCE)
        return Response(self.OutputSerializer(selectors.version_provenance_public(version=version)).data)


class CheckSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    evidence = serializers.JSONField()
    created_at = serializers.DateTimeField(required=False)


class ChecksApi(APIView):
    @extend_schema(responses={200: CheckSerializer(many=True)})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.EVIDENCE)
        return Response(CheckSerializer(selectors.version_checks_shown(user=request.user, version=version), many=True).data)


# ---------------------------------------------------------------- moderation


class ModerationQueueApi(APIView):
    permission_classes = [IsModerator]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        dataset = serializers.CharField(source="dataset.slug")
        organization = serializers.CharField(source="dataset.owner.slug")
        number = serializers.IntegerField()
        state = serializers.CharField()
        submitted_at = serializers.DateTimeField()

    @extend_schema(responses={200: paginated(OutputSerializer, "ModerationQueuePage")})
    def get(self, request):
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.moderation_queue(), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class ModerationDetailApi(APIView):
    permission_classes = [IsModerator]

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        dataset = serializers.CharField()
        organization = serializers.CharField()
        number = serializers.IntegerField()
        state = serializers.CharField()
        submitted_at = serializers.DateTimeField(allow_null=True)
        statistics = serializers.JSONField()
        checks = CheckSerializer(many=True)
        effective_terms = EffectiveTermsSerializer()
        quality_summary = serializers.JSONField(allow_null=True)
        inconsistent_labeling = serializers.BooleanField(allow_null=True)
        provenance = ProvenanceOutputSerializer()

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        return Response(self.OutputSerializer(selectors.moderation_detail(version=version)).data)


class ModerationFieldsApi(APIView):
    permission_classes = [IsModerator]

    class InputSerializer(serializers.Serializer):
        class ReviewSerializer(serializers.Serializer):
            name = serializers.CharField(max_length=64)
            status = serializers.ChoiceField(choices=FieldStatus.choices)
            note = serializers.CharField(required=False, allow_blank=True, default="")

        fields = ReviewSerializer(many=True, allow_empty=False)

    @extend_schema(request=InputSerializer, responses={200: ProvenanceOutputSerializer})
    def post(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.provenance_fields_review(version=version, actor=request.user, reviews=[dict(r) for r in data.validated_data["fields"]])
        return Response(ProvenanceOutputSerializer(selectors.version_provenance_shown(user=request.user, version=version)).data)


class VersionStateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()


class ModerationDecisionApi(APIView):
    permission_classes = [IsModerator]

    class InputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(choices=services.Decision.ALL)
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    @extend_schema(request=InputSerializer, responses={200: VersionStateSerializer})
    def post(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = services.moderation_decide(version=version, actor=request.user, **data.validated_data)
        return Response(VersionStateSerializer(version).data)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ModerationSuspendApi(APIView):
    permission_classes = [IsModerator]

    @extend_schema(request=ReasonSerializer, responses={200: VersionStateSerializer})
    def post(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(VersionStateSerializer(services.version_suspend(version=version, actor=request.user, **data.validated_data)).data)


class ModerationReinstateApi(APIView):
    permission_classes = [IsModerator]

    @extend_schema(request=ReasonSerializer, responses={200: VersionStateSerializer})
    def post(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.MODERATE)
        data = ReasonSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(VersionStateSerializer(services.version_reinstate(version=version, actor=request.user, **data.validated_data)).data)


class ListingCroissantApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={(200, "application/ld+json"): OpenApiTypes.OBJECT})
    def get(self, request, slug: str):
        version = version_published_for_slug(slug=slug)
        return Response(listing_croissant(version=version, base_url=request.build_absolute_uri("/")), content_type="application/ld+json")


# ---------------------------------------------------------------- the consent ledger


class ConsentRevocationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    version = serializers.IntegerField(source="version_id")
    requested_on = serializers.DateField()
    reason = serializers.CharField()
    state = serializers.CharField(help_text="pending (publish a version without the files by the deadline), resolved or suspended")
    deadline = serializers.DateTimeField()
    records = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField(help_text="the version's files it withdraws; empty until listed (files_listed_at)")
    frames = serializers.IntegerField()
    files_listed_at = serializers.DateTimeField(allow_null=True)
    recorded_by = serializers.CharField(source="recorded_by.username")
    recorded_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)

    def get_records(self, obj) -> list[str]:
        return [r.consent_id or r.session_id for r in obj.records.all()]

    def get_files(self, obj) -> list[dict]:
        return [{"path": f["path"], "role": f.get("role", ""), "sha256": f.get("sha256", "")} for f in obj.files]


class ConsentRevocationsApi(APIView):
    """A version's consent revocations: its seller members record one (on the data
    subject's request) and read them; staff read them."""

    OutputSerializer = ConsentRevocationOutput

    class InputSerializer(serializers.Serializer):
        requested_on = serializers.DateField(help_text="when the data subject asked")
        reason = serializers.CharField(max_length=2000)
        records = serializers.ListField(
            child=serializers.CharField(max_length=200), min_length=1, max_length=1000, help_text="the consent records revoked: their consent_id (or session_id)"
        )

    @extend_schema(responses={200: paginated(ConsentRevocationOutput, "ConsentRevocationPage")})
    def get(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.INTERNALS)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(selectors.consent_revocations(version=version), request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ConsentRevocationOutput})
    def post(self, request, version_id: int):
        version = version_visible(user=request.user, version_id=version_id, access=VersionAccess.CHANGE)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        revocation = services.consent_revocation_record(
            version=version,
            actor=request.user,
            requested_on=data.validated_data["requested_on"],
            reason=data.validated_data["reason"],
            consent_ids=data.validated_data["records"],
        )
        return Response(self.OutputSerializer(selectors.consent_revocation_get(revocation_id=revocation.pk)).data, status=201)
