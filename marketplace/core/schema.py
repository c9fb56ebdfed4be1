"""OpenAPI schema generation tweaks shared by every app."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Names a view's nested serializers after the view.

    Views follow the one-APIView-per-operation style with nested ``InputSerializer`` /
    ``OutputSerializer`` classes; without this every one of them would be a component
    called ``Input``/``Output`` and the schema would be wrong.
    """

    def get_serializer_name(self, serializer, direction) -> str:
        cls = serializer.__class__
        qualname = cls.__qualname__
        if "." in qualname and "<locals>" not in qualname:
            owner, _, name = qualname.rpartition(".")
            return owner.replace(".", "").removesuffix("Api") + name
        return cls.__name__


class HashedTokenScheme(OpenApiAuthenticationExtension):
    target_class = "marketplace.accounts.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "`Token <token>` from POST /api/v1/auth/login/"}


def paginated(serializer_class, name: str, **extra_fields):
    """The schema of one page as CappedPageNumberPagination answers it (count, next,
    previous, results), for APIViews that paginate by hand (drf-spectacular only wraps
    GenericAPIView lists by itself)."""
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": serializer_class(many=True),
        **extra_fields,
    }
    return inline_serializer(name=name, fields=fields)
