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
