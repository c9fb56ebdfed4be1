"""Listings search and detail (public), orders, entitlements and downloads (buyers), payment and revocation (staff)."""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.cache import patch_vary_headers
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.compat import split_header_value
from rest_framework.exceptions import APIException
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from datasets.models import AnnotationKind, Sensor
from datasets.selectors import dataset_for_seller
from marketplace.accounts import acting
from marketplace.accounts.anonymous_get import plain_json_get, throttles_counted
from marketplace.core.errors import DomainError, Gone, InvalidInput, field_error
from marketplace.core.pagination import CappedPageNumberPagination
from marketplace.core.renderers import drf_json
from marketplace.core.schema import paginated
from marketplace.core.storage import get_storage
from marketplace.listings import catalogue_index, search, selectors, services
from marketplace.listings.errors import ListingErrorCode
from marketplace.listings.models import OrderState, SalesTerms
from marketplace.listings.subsets import subset_parse


class IsFinanceStaff(BasePermission):
    """Marking orders paid and revoking entitlements: Django staff (B2B invoicing is handled by the platform team)."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or user.is_superuser))


def _link(serializer: serializers.Serializer, route: str, **kwargs) -> str:
    """An absolute URL when the serializer has the request (every API answer), else the path."""
    path = _route_path(route, kwargs)
    context = serializer.context
    request = context.get("request")
    if request is None:
        return path
    base = context.get("_link_base")
    if base is None:  # scheme and host, once per answer (a search page holds ~150 links)
        base = context["_link_base"] = request.build_absolute_uri("/")[:-1]
    return base + path


# reverse() costs ~50 us; a page of search results asks for ~150 links. A route's path is
# reversed once with placeholder arguments and filled in after (arguments of plain URL-safe
# characters only, which reverse() would not quote either).
_SAFE_ARGUMENT = re.compile(r"[A-Za-z0-9_.~-]+\Z")
_route_templates: dict[tuple[str, str, tuple[str, ...]], tuple[str, tuple[str, ...]] | None] = {}


def _route_path(route: str, kwargs: dict) -> str:
    if not all(_SAFE_ARGUMENT.match(str(v)) for v in kwargs.values()):
        return reverse(route, kwargs=kwargs)
    names = tuple(sorted(kwargs))
    key = (get_script_prefix(), route, names)
    if key not in _route_templates:
        marks = tuple(f"{9182736450 + i}" for i in range(len(names)))
        try:
            template = reverse(route, kwargs=dict(zip(names, (int(m) for m in marks), strict=True)))
        except NoReverseMatch:  # a converter refuses numbers: this route is reversed each time
            _route_templates[key] = None
        else:
            _route_templates[key] = (template, marks) if all(template.count(m) == 1 for m in marks) else None
    found = _route_templates[key]
    if found is None:
        return reverse(route, kwargs=kwargs)
    path, marks = found
    for name, mark in zip(names, marks, strict=True):
        path = path.replace(mark, str(kwargs[name]))
    return path


class ReportLinkSerializer(serializers.Serializer):
    kind = serializers.CharField()
    url = serializers.CharField(help_text="the report: figures, intervals, short-lived links to its plots and full JSON")
    plots = serializers.DictField(child=serializers.CharField(), help_text="plot name -> the plot's PNG")


class EvidenceSerializer(serializers.Serializer):
    reports = ReportLinkSerializer(many=True)
    provenance = serializers.CharField(help_text="the public provenance summary: field values and statuses, consent records counted")
    checks = serializers.CharField(help_text="every provenance and license check with its evidence")
    checks_summary = serializers.DictField(help_text="counts by result, failed check codes by severity")
    effective_terms = serializers.CharField()
    evaluation_split = serializers.CharField(help_text="the public evaluation split's images (signed-in buyers)")
    evaluations = serializers.CharField(help_text="POST COCO results for the split here")


class FigureSerializer(serializers.Serializer):
    value = serializers.FloatField()
    ci = serializers.ListField(child=serializers.FloatField(), allow_null=True, help_text="95 % interval, when computed")
    n = serializers.IntegerField(allow_null=True, help_text="sample size")
    status = serializers.ChoiceField(choices=["verified", "measured", "self-declared"])


class PerClassSerializer(serializers.Serializer):
    category_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    instances = serializers.IntegerField(help_text="instances of the class in the version")
    ap = FigureSerializer(allow_null=True, help_text="AP of the class against the reference (video AP for video), verified only")


class PerFrameSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    p90 = serializers.IntegerField(help_text="nearest rank: the smallest count at least 90 % of the frames do not exceed")


class SizeSharesSerializer(serializers.Serializer):
    small = serializers.FloatField(allow_null=True, help_text="share of instances under 32² pixels")
    medium = serializers.FloatField(allow_null=True, help_text="32² to 96² pixels")
    large = serializers.FloatField(allow_null=True, help_text="96² pixels and more")


class SceneFiguresSerializer(serializers.Serializer):
    frames = serializers.IntegerField()
    instances = serializers.IntegerField(help_text="crowd regions are not instances")
    instances_per_frame = PerFrameSerializer()
    occlusion = serializers.FloatField(allow_null=True, help_text="share of instances whose mask overlaps or touches another instance")
    sizes = SizeSharesSerializer()
    categories_per_frame = PerFrameSerializer(help_text="clutter")


class SceneSerializer(SceneFiguresSerializer):
    splits = serializers.DictField(child=SceneFiguresSerializer(), help_text="the same figures per split (annotation file)")


class DiversityInputsSerializer(serializers.Serializer):
    embodiments = serializers.IntegerField()
    frames_per_embodiment = serializers.DictField(child=serializers.IntegerField(), allow_null=True)
    effective_embodiments = serializers.FloatField(help_text="exp(entropy) of the frames per embodiment, else the number of embodiments")
    tasks = serializers.IntegerField()
    scene_types = serializers.IntegerField()
    source = serializers.ChoiceField(choices=["annotations", "dataset"], help_text="where the embodiments and tasks were declared")
    params = serializers.DictField(child=serializers.FloatField())
    formula = serializers.CharField()


class CoverageCountSerializer(serializers.Serializer):
    frames = serializers.IntegerField(allow_null=True, help_text="null: declared for the whole dataset, not per frame")
    episodes = serializers.IntegerField(allow_null=True, help_text="videos (episodes); lone images are none")


class CoverageSerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=["annotations", "dataset"], help_text="declared per image or video in the annotations, or for the dataset")
    embodiments = serializers.DictField(child=CoverageCountSerializer())
    tasks = serializers.DictField(child=CoverageCountSerializer())
    sensor_frames = serializers.DictField(child=serializers.IntegerField(), allow_null=True, help_text="frames per sensor where images or videos say")


class ListingOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    url = serializers.SerializerMethodField(help_text="this listing's detail")
    title = serializers.CharField()
    summary = serializers.CharField()
    seller = serializers.CharField(source="seller_slug")
    seller_name = serializers.CharField()
    annotation_kind = serializers.ChoiceField(choices=AnnotationKind.choices, help_text="what the annotations are (was modality)")
    sensors = serializers.ListField(child=serializers.ChoiceField(choices=Sensor.choices), help_text="the sensor modalities the seller declares")
    version = serializers.IntegerField(source="version_number")
    version_id = serializers.IntegerField(help_text="the id the version's quality, provenance, checks and terms routes take")
    published_at = serializers.DateTimeField()
    revocation_pending = serializers.SerializerMethodField(
        help_text="data subjects withdrew consent for some of this version's files: it is sold without them until the seller publishes a version without them"
    )
    revocation_deadline = serializers.DateTimeField(
        allow_null=True, help_text="by when the seller must publish a version without the withdrawn files, else this one is suspended (null: none pending)"
    )
    embodiments = serializers.JSONField()
    tasks = serializers.JSONField()
    scene_types = serializers.JSONField()
    categories = serializers.JSONField()
    licenses = serializers.JSONField()
    frames = serializers.IntegerField()
    instances = serializers.IntegerField()
    has_tracks = serializers.BooleanField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    quality = serializers.JSONField()
    tier = serializers.CharField()
    inconsistent_labeling = serializers.BooleanField(allow_null=True, help_text="the seller's two annotation passes agree less than the platform's threshold (null: not measured)")
    commercial_use = serializers.BooleanField()
    derivatives = serializers.BooleanField()
    share_alike = serializers.BooleanField()
    provenance_completeness = serializers.FloatField(allow_null=True)
    provenance_verified_share = serializers.FloatField(allow_null=True)
    quality_adjusted_cost = serializers.FloatField(allow_null=True)
    quality_adjusted_cost_inputs = serializers.JSONField(source="cost_inputs")
    instances_per_frame = serializers.FloatField(allow_null=True, help_text="mean instances per frame, measured at ingest")
    occlusion = serializers.FloatField(allow_null=True, help_text="share of instances whose mask overlaps or touches another instance")
    scene = serializers.SerializerMethodField(help_text="scene complexity measured at ingest, per version and per split (null: not measured)")
    embodiment_count = serializers.IntegerField(help_text="embodiments the data covers")
    task_count = serializers.IntegerField(help_text="tasks the data covers")
    diversity = serializers.FloatField(allow_null=True, help_text="the diversity score the diversity ordering sorts by")
    coverage = serializers.SerializerMethodField(help_text="frames and episodes per embodiment and task, frames per sensor")
    diversity_inputs = serializers.SerializerMethodField(help_text="the score's inputs, parameters and formula (null: not computed)")
    per_class = PerClassSerializer(many=True)
    evidence = serializers.SerializerMethodField(help_text="links to every piece of evidence behind the listing")

    def get_revocation_pending(self, listing) -> bool:
        return listing.revocation_deadline is not None

    @extend_schema_field(SceneSerializer(allow_null=True))
    def get_scene(self, listing) -> dict | None:
        return listing.scene or None

    @extend_schema_field(CoverageSerializer(allow_null=True))
    def get_coverage(self, listing) -> dict | None:
        return listing.coverage or None

    @extend_schema_field(DiversityInputsSerializer(allow_null=True))
    def get_diversity_inputs(self, listing) -> dict | None:
        return listing.diversity_inputs or None

    def get_url(self, listing) -> str:
        return _link(self, "listing-detail", slug=listing.slug)

    @extend_schema_field(EvidenceSerializer)
    def get_evidence(self, listing) -> dict:
        vid = listing.version_id
        stored = listing.evidence or {}
        reports = [
            {
                "kind": r["kind"],
                "url": _link(self, "quality-report-detail", version_id=vid, kind=r["kind"]),
                "plots": {name: _link(self, "quality-report-plot", version_id=vid, kind=r["kind"], name=name) for name in r.get("plots", [])},
            }
            for r in stored.get("reports", [])
        ]
        return {
            "reports": reports,
            "provenance": _link(self, "version-provenance-summary", version_id=vid),
            "checks": _link(self, "version-checks", version_id=vid),
            "checks_summary": stored.get("checks") or {},
            "effective_terms": _link(self, "version-effective-terms", version_id=vid),
            "evaluation_split": _link(self, "listing-evaluation-split", slug=listing.slug),
            "evaluations": _link(self, "listing-evaluation-create", slug=listing.slug),
        }


def search_parameters() -> list[OpenApiParameter]:
    """The search's query parameters, typed as the parser reads them (numbers, booleans,
    enumerations), so a generated client checks them before sending."""
    fractions = {*(f"min_{f}" for f in search.MIN_FIGURES), *(k for k, (_c, kind) in search.SCENE_MINIMUMS.items() if kind == "fraction")}
    numbers = {"price_min", "price_max", *(k for k, (_c, kind) in search.SCENE_MINIMUMS.items() if kind == "number")}
    integers = {"frames_min", "frames_max", *(k for k, (_c, kind) in search.SCENE_MINIMUMS.items() if kind == "integer")}
    described = {
        "ordering": "relevance (with q), else the newest first; diversity: see diversity_inputs",
        "embodiment": "slug, name or alias (ur5e, UR5e, ur5-e)",
        "q": "full-text query (websearch syntax)",
    }
    params = []
    for name in sorted(search.KNOWN_PARAMS - {"page", "page_size"}):
        kwargs: dict = {"many": name in search.MULTI, "description": described.get(name, "")}
        if name in fractions:
            kwargs.update(type=OpenApiTypes.DOUBLE, description="between 0 and 1")
        elif name in numbers:
            kwargs.update(type=OpenApiTypes.DOUBLE, description="at least 0")
        elif name in integers:
            kwargs.update(type=OpenApiTypes.INT, description="at least 0")
        elif name in search.BOOLS:
            kwargs.update(type=OpenApiTypes.BOOL)
        elif name in search.CHOICES:
            kwargs.update(type=str, enum=list(search.CHOICES[name]))
        elif name == "ordering":
            kwargs.update(type=str, enum=list(search.ORDERINGS))
        else:
            kwargs.update(type=str)
        params.append(OpenApiParameter(name, **kwargs))
    return params


class ListingSearchApi(APIView):
    """The public search. An anonymous ``GET`` asking for JSON (the search's common case) is
    answered without DRF's request cycle (:meth:`dispatch`); any other request, and every
    error, goes through DRF's."""

    permission_classes = [AllowAny]

    class Pagination(CappedPageNumberPagination):
        django_paginator_class = search.ListingPaginator

    OutputSerializer = ListingOutputSerializer

    @extend_schema(
        operation_id="listings_search",
        parameters=search_parameters(),
        responses={200: paginated(ListingOutputSerializer, "ListingSearchPage", facets=serializers.DictField())},
    )
    def get(self, request):
        context = {"request": request}
        head, cards, facets = self._search_page(
            request._request, variant="", render=lambda rows: self.OutputSerializer(rows, many=True, context=context).data
        )
        return Response({**head, "results": cards, "facets": facets})

    def _search_page(self, request: HttpRequest, *, variant: str, render) -> tuple[dict, list, dict]:
        """The page's parts for ``request`` (a Django request): head (count, next, previous),
        the result cards as ``render(listings)`` gives them, and the facets. Both ways of
        answering (DRF's cycle and the anonymous one) go through here."""
        filters = search.listing_filters_parse(request.GET)
        results, facets, paginator_class = search.listing_search_results(filters=filters)
        paginator = self.Pagination()
        paginator.django_paginator_class = paginator_class
        page = paginator.paginate(results, request, view=self)
        if isinstance(results, catalogue_index.SearchResult):
            # Cards of unchanged listings are rendered once per variant of rendering (catalogue_index.result_cards).
            cards = catalogue_index.result_cards(page, variant=variant + request.build_absolute_uri("/"), render=render)
        else:
            cards = render(page)
        head = {"count": paginator.page.paginator.count, "next": paginator.get_next_link(), "previous": paginator.get_previous_link()}
        return head, cards, facets

    def dispatch(self, request, *args, **kwargs):
        """The anonymous JSON ``GET`` as DRF would answer it, without DRF's request cycle:
        the same throttles counted, the same page as bytes (each result card kept as the
        JSON DRF writes for it, the page spliced around them), the same headers. A refused
        request or an error goes through DRF's cycle with the throttles' decisions made
        here (counted once), so its answer is DRF's."""
        if not plain_json_get(self, request):
            return super().dispatch(request, *args, **kwargs)
        decisions = throttles_counted(self, request)
        if decisions is None:  # a throttle this cannot count
            return super().dispatch(request, *args, **kwargs)
        if not all(allowed for allowed, _retry in decisions.values()):
            request._sliding_window_counted = decisions
            return super().dispatch(request, *args, **kwargs)
        try:
            content = self._page_json(request)
        except (DomainError, APIException):
            request._sliding_window_counted = decisions
            return super().dispatch(request, *args, **kwargs)
        response = HttpResponse(content, content_type="application/json")
        headers = self.default_response_headers
        vary = headers.pop("Vary", None)
        if vary is not None:
            patch_vary_headers(response, list(split_header_value(vary)))
        for key, value in headers.items():
            response[key] = value
        return response

    def _page_json(self, request: HttpRequest) -> bytes:
        """The search page's JSON for an anonymous request (DRF's bytes for ``get``'s answer)."""
        context = {"request": request}

        def render(rows) -> list[bytes]:
            return [drf_json(card) for card in self.OutputSerializer(rows, many=True, context=context).data]

        # Cards kept as their JSON apart from get's (the same key with a distinct variant).
        head, cards, facets = self._search_page(request, variant="json ", render=render)
        return b"".join((drf_json(head)[:-1], b',"results":[', b",".join(cards), b'],"facets":', drf_json(facets), b"}"))


class SalesTermsSerializer(serializers.Serializer):
    requires_approval = serializers.BooleanField(help_text="each order waits for a seller member's approval; the buyer states an intended use")
    free_update_months = serializers.IntegerField(
        allow_null=True, min_value=0, max_value=120, help_text="months after purchase during which newer versions are claimed free; null: none"
    )
    subset_prices = serializers.DictField(
        child=serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0),
        required=False,
        default=dict,
        help_text='prices of declared subsets by key ("commercial", "split:train"); others pro rata by frames',
    )

    def validate_subset_prices(self, value: dict) -> dict:
        for key in value:
            if key != "commercial" and not (key.startswith("split:") and len(key) > 6):
                raise serializers.ValidationError(f"{key!r}: a key is commercial or split:<name>")
        return {k: str(v) for k, v in value.items()}


class ListingDetailApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(ListingOutputSerializer):
        description = serializers.CharField()
        terms = serializers.JSONField()
        previews = serializers.SerializerMethodField()
        sales_terms = serializers.SerializerMethodField()
        subsets = serializers.SerializerMethodField(help_text="declared subsets a buyer may order instead of the whole version")

        def get_sales_terms(self, listing) -> SalesTermsSerializer:
            terms = getattr(listing.dataset, "sales_terms", None)
            return SalesTermsSerializer(terms or SalesTerms()).data

        def get_subsets(self, listing) -> dict:
            return selectors.listing_subsets(listing=listing)

        def get_previews(self, listing) -> list[dict]:
            # Previews are public: short-lived URLs to the overlay images only.
            storage, ttl = get_storage(), int(settings.PRESIGNED_URL_TTL_SECONDS)
            return [{"path": p["path"], "url": storage.download_url(p["storage_key"], ttl=ttl)} for p in listing.previews]

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, slug: str):
        listing = selectors.listing_public_get(slug=slug)
        return Response(self.OutputSerializer(listing, context={"request": request}).data)


class OrderOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    listing = serializers.CharField(source="listing.slug")
    version = serializers.IntegerField(source="version.number")
    buyer = serializers.CharField(source="buyer.slug")
    state = serializers.CharField()
    license = serializers.CharField()
    accepted_by = serializers.CharField(source="accepted_by.username")
    accepted_at = serializers.DateTimeField()
    intended_use = serializers.CharField()
    price = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True, help_text="when a seller member approved or rejected it")
    decision_reason = serializers.CharField()
    closed_at = serializers.DateTimeField(allow_null=True, help_text="cancelled, rejected or refunded at")
    claimed_from = serializers.IntegerField(source="claimed_from_id", allow_null=True, help_text="a free update claimed with this entitlement")
    subset = serializers.JSONField(help_text="the declared subset ordered; {} for the whole version")
    entitlement = serializers.SerializerMethodField()

    def get_entitlement(self, order) -> int | None:
        ent = getattr(order, "entitlement", None) if order.state == "paid" else None
        return ent.pk if ent else None


class OrderCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        license = serializers.CharField(max_length=64)
        version = serializers.IntegerField(min_value=1)
        organization = serializers.SlugField(required=False, help_text="the buyer organization, when you buy for more than one (or the X-Organization header)")
        intended_use = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="", help_text="required when the listing needs the seller's approval")
        subset = serializers.JSONField(
            required=False, default=None,
            help_text='a declared subset instead of the whole version: {"kind": "commercial"}, {"kind": "split", "split": "train"} or {"kind": "categories", "categories": [...]}',
        )

    OutputSerializer = OrderOutputSerializer

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)],
        responses={201: OutputSerializer, 200: OutputSerializer},
    )
    def post(self, request, slug: str):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        key = (request.headers.get("Idempotency-Key") or "").strip()
        if not key or len(key) > 128:
            raise InvalidInput(
                "An Idempotency-Key header (1-128 characters) is required.",
                code=ListingErrorCode.IDEMPOTENCY_KEY_REQUIRED,
                details=[field_error("Idempotency-Key", "required, at most 128 characters", "required")],
            )
        listing = selectors.listing_public_get(slug=slug)
        buyer = selectors.buyer_organization_for(user=request.user, slug=acting.requested_slug(request, field="organization"))
        order, created = services.order_create(
            listing=listing,
            buyer=buyer,
            user=request.user,
            license=data.validated_data["license"],
            version_number=data.validated_data["version"],
            idempotency_key=key,
            intended_use=data.validated_data["intended_use"],
            subset=subset_parse(data.validated_data["subset"]),
        )
        order = selectors.order_get(order_id=order.pk)
        return Response(self.OutputSerializer(order).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class OrderListApi(APIView):
    OutputSerializer = OrderOutputSerializer

    @extend_schema(responses={200: paginated(OrderOutputSerializer, "OrderPage")})
    def get(self, request):
        paginator = CappedPageNumberPagination()
        orders = selectors.orders_for_buyer(user=request.user, slug=acting.requested_slug(request))
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class OrderMarkPaidApi(APIView):
    permission_classes = [IsFinanceStaff]
    OutputSerializer = OrderOutputSerializer

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request, order_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.order_payment_record(
            order=selectors.order_get(order_id=order_id), actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data)


class EntitlementOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    listing = serializers.CharField(source="listing.slug")
    version = serializers.IntegerField(source="version.number")
    buyer = serializers.CharField(source="buyer.slug")
    order = serializers.IntegerField(source="order_id")
    license = serializers.CharField()
    granted_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    live = serializers.BooleanField(source="is_live")
    subset = serializers.JSONField(help_text="the declared subset it covers; {} for the whole version")
    current_version = serializers.IntegerField(source="listing.version_number", allow_null=True, help_text="the listing's published version")
    free_updates_until = serializers.SerializerMethodField(help_text="until when newer versions are claimed free (null: never)")

    def get_free_updates_until(self, entitlement) -> str | None:
        terms = getattr(entitlement.listing.dataset, "sales_terms", None)
        until = services.update_claim_until(entitlement=entitlement, terms=terms) if terms else None
        return until.isoformat() if until else None


class EntitlementListApi(APIView):
    OutputSerializer = EntitlementOutputSerializer

    @extend_schema(responses={200: paginated(EntitlementOutputSerializer, "EntitlementPage")})
    def get(self, request):
        paginator = CappedPageNumberPagination()
        entitlements = selectors.entitlements_for_buyer(user=request.user, slug=acting.requested_slug(request))
        page = paginator.paginate_queryset(entitlements, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class EntitlementRevokeApi(APIView):
    permission_classes = [IsFinanceStaff]
    OutputSerializer = EntitlementOutputSerializer

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=500)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request, entitlement_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ent = services.entitlement_revoke(
            entitlement=selectors.entitlement_get(entitlement_id=entitlement_id), actor=request.user, reason=data.validated_data["reason"]
        )
        return Response(self.OutputSerializer(selectors.entitlement_get(entitlement_id=ent.pk)).data)


class OrderDecisionInput(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class OrderApproveApi(APIView):
    """A seller member approves an order for one of their listings that awaits approval."""

    InputSerializer = OrderDecisionInput
    OutputSerializer = OrderOutputSerializer

    @extend_schema(request=OrderDecisionInput, responses={200: OrderOutputSerializer})
    def post(self, request, order_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = selectors.order_for_seller_member(user=request.user, order_id=order_id)
        order = services.order_approve(order=order, actor=request.user, reason=data.validated_data["reason"])
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data)


class OrderRejectApi(APIView):
    """A seller member rejects an order that awaits approval (a reason is required)."""

    InputSerializer = OrderDecisionInput
    OutputSerializer = OrderOutputSerializer

    @extend_schema(request=OrderDecisionInput, responses={200: OrderOutputSerializer})
    def post(self, request, order_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = selectors.order_for_seller_member(user=request.user, order_id=order_id)
        order = services.order_reject(order=order, actor=request.user, reason=data.validated_data["reason"])
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data)


class OrderCancelApi(APIView):
    """A buyer member withdraws an order of their organization while it is not paid."""

    InputSerializer = OrderDecisionInput
    OutputSerializer = OrderOutputSerializer

    @extend_schema(request=OrderDecisionInput, responses={200: OrderOutputSerializer})
    def post(self, request, order_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = selectors.order_for_buyer_member(user=request.user, order_id=order_id)
        order = services.order_cancel(order=order, actor=request.user, reason=data.validated_data["reason"])
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data)


class OrderRefundApi(APIView):
    """Staff refund a paid order; its entitlement is revoked."""

    permission_classes = [IsFinanceStaff]
    OutputSerializer = OrderOutputSerializer

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=2000)

    @extend_schema(request=InputSerializer, responses={200: OrderOutputSerializer})
    def post(self, request, order_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.order_refund(order=selectors.order_get(order_id=order_id), actor=request.user, reason=data.validated_data["reason"])
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data)


class SellerOrderListApi(APIView):
    """Orders for the listings of your seller organizations (``?state=awaiting_approval``
    for the ones waiting on you; ``X-Organization`` for one organization)."""

    OutputSerializer = OrderOutputSerializer

    class FilterSerializer(serializers.Serializer):
        state = serializers.ChoiceField(choices=OrderState.choices, required=False)

    @extend_schema(parameters=[FilterSerializer], responses={200: paginated(OrderOutputSerializer, "SellerOrderPage")})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.orders_for_seller(user=request.user, slug=acting.requested_slug(request), state=filters.validated_data.get("state"))
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class SalesTermsApi(APIView):
    """How the seller sells a dataset: approval of each order, free updates."""

    InputSerializer = SalesTermsSerializer
    OutputSerializer = SalesTermsSerializer

    @extend_schema(responses={200: SalesTermsSerializer})
    def get(self, request, slug: str):
        dataset = dataset_for_seller(user=request.user, slug=slug)
        return Response(self.OutputSerializer(services.sales_terms_for(dataset=dataset)).data)

    @extend_schema(request=SalesTermsSerializer, responses={200: SalesTermsSerializer})
    def put(self, request, slug: str):
        dataset = dataset_for_seller(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        terms = services.sales_terms_set(dataset=dataset, actor=request.user, **data.validated_data)
        return Response(self.OutputSerializer(terms).data)


class EntitlementClaimUpdateApi(APIView):
    """Claim the listing's newer version free under its update policy (a buyer member)."""

    OutputSerializer = OrderOutputSerializer

    @extend_schema(request=None, responses={201: OrderOutputSerializer, 200: OrderOutputSerializer})
    def post(self, request, entitlement_id: int):
        entitlement = selectors.entitlement_for_buyer_member(user=request.user, entitlement_id=entitlement_id)
        order, created = services.entitlement_update_claim(entitlement=entitlement, user=request.user)
        return Response(self.OutputSerializer(selectors.order_get(order_id=order.pk)).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class WithdrawnFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    role = serializers.CharField()
    code = serializers.CharField(help_text="consent_revoked")
    revocation = serializers.IntegerField()
    requested_on = serializers.DateField()


class EntitlementFilesApi(APIView):
    class OutputSerializer(serializers.Serializer):
        path = serializers.CharField(source="file.path")
        role = serializers.CharField(source="file.role")
        size = serializers.IntegerField(source="file.size")
        sha256 = serializers.CharField(source="file.sha256")
        content_type = serializers.CharField(source="file.content_type")
        url = serializers.CharField()
        expires_at = serializers.DateTimeField()

    class FilterSerializer(serializers.Serializer):
        path = serializers.ListField(child=serializers.CharField(max_length=1024), required=False, max_length=1000, help_text="only these files (repeat the parameter)")

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: paginated(
                OutputSerializer,
                "EntitlementFilesPage",
                pending=serializers.BooleanField(help_text="a subset's files are still being prepared"),
                withdrawn=WithdrawnFileSerializer(many=True, help_text="the version's files a consent revocation withdrew (never served)"),
            )
        },
    )
    def get(self, request, entitlement_id: int):
        """The files the entitlement serves (the version's, or its subset's with annotation
        files generated for it), each with a short-lived URL. ``pending`` while a worker
        still prepares a subset's files: ask again shortly. ``withdrawn`` lists the files a
        consent revocation took out; asking for one by ``path`` answers 410
        ``consent_revoked`` with the files refused."""
        entitlement = selectors.entitlement_live_for_buyer(user=request.user, entitlement_id=entitlement_id)
        filters = self.FilterSerializer(data={"path": request.query_params.getlist("path")} if "path" in request.query_params else {})
        filters.is_valid(raise_exception=True)
        paths = filters.validated_data.get("path")
        withdrawn = selectors.entitlement_withdrawn_files(entitlement=entitlement)
        if paths:
            refused = [w for w in withdrawn if w["path"] in set(paths)]
            if refused:
                raise Gone(
                    "Consent was revoked for these files: they are no longer served; delete any copy you hold.",
                    code=ListingErrorCode.CONSENT_REVOKED,
                    details=[field_error("path", f"{w['path']}: consent revoked (revocation {w['revocation']})", ListingErrorCode.CONSENT_REVOKED) for w in refused],
                )
        files, pending = services.entitlement_serving(entitlement=entitlement, withheld_file_ids=[w["id"] for w in withdrawn])
        if paths:
            files = files.filter(path__in=paths)
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(files, request, view=self)
        issued = services.download_urls_issue(entitlement=entitlement, user=request.user, files=page)
        response = paginator.get_paginated_response(self.OutputSerializer(issued, many=True).data)
        response.data["pending"] = pending
        response.data["withdrawn"] = WithdrawnFileSerializer(withdrawn, many=True).data
        return response


class ConsentNoticeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    organization = serializers.CharField(source="buyer.slug")
    listing = serializers.CharField(source="listing.slug")
    version = serializers.IntegerField(source="version.number")
    files = serializers.ListField(child=serializers.DictField(), help_text="the withdrawn files this organization downloaded: delete them")
    requested_on = serializers.DateField()
    created_at = serializers.DateTimeField()
    acknowledged_at = serializers.DateTimeField(allow_null=True)
    acknowledged_by = serializers.CharField(source="acknowledged_by.username", allow_null=True, default=None)


class ConsentNoticeListApi(APIView):
    """Notices to delete files whose consent was revoked, for your buyer organizations
    (``?acknowledged=false`` for the open ones; ``X-Organization`` for one organization)."""

    OutputSerializer = ConsentNoticeOutput

    class FilterSerializer(serializers.Serializer):
        acknowledged = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[FilterSerializer], responses={200: paginated(ConsentNoticeOutput, "ConsentNoticePage")})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        notices = selectors.consent_notices_for_buyer(user=request.user, slug=acting.requested_slug(request), acknowledged=filters.validated_data["acknowledged"])
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(notices, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class SellerConsentNoticeListApi(APIView):
    """The consent notices sent to your listings' buyers (``?acknowledged=false`` for the
    organizations that have not yet confirmed deleting the files; ``X-Organization`` for one
    seller organization)."""

    OutputSerializer = ConsentNoticeOutput
    FilterSerializer = ConsentNoticeListApi.FilterSerializer

    @extend_schema(parameters=[ConsentNoticeListApi.FilterSerializer], responses={200: paginated(ConsentNoticeOutput, "SellerConsentNoticePage")})
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        notices = selectors.consent_notices_for_seller(user=request.user, slug=acting.requested_slug(request), acknowledged=filters.validated_data["acknowledged"])
        paginator = CappedPageNumberPagination()
        page = paginator.paginate_queryset(notices, request, view=self)
        return paginator.get_paginated_response(self.OutputSerializer(page, many=True).data)


class ConsentNoticeAcknowledgeApi(APIView):
    """A buyer member confirms the organization deleted the notice's files."""

    OutputSerializer = ConsentNoticeOutput

    @extend_schema(request=None, responses={200: ConsentNoticeOutput})
    def post(self, request, notice_id: int):
        notice = selectors.consent_notice_for_buyer_member(user=request.user, notice_id=notice_id)
        notice = services.consent_notice_acknowledge(notice=notice, actor=request.user)
        return Response(self.OutputSerializer(selectors.consent_notice_for_buyer_member(user=request.user, notice_id=notice.pk)).data)
