import functools

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from marketplace.accounts.login_guard import guarded_admin_login
from marketplace.core import files, health
from marketplace.listings.selectors import download_grant_live
from marketplace.listings.urls import search_urlpatterns

# Routes reachable without authentication. The anonymous URL walk test checks that every
# other route answers 401/403; a new public route must be added here deliberately.
PUBLIC_ROUTE_NAMES = {"healthz", "readyz", "schema", "docs", "auth-login", "auth-register", "signed-download", "quality-report-list", "quality-report-detail", "quality-report-plot", "version-provenance-summary", "listing-search", "listing-detail", "license-list", "listing-croissant", "vocabulary-list"}

api_v1 = [
    *search_urlpatterns,
    path("", include("marketplace.accounts.urls")),
    path("", include("marketplace.audit.urls")),
    path("", include("marketplace.members.urls")),
    path("", include("datasets.urls")),
    path("", include("licensing.urls")),
    path("", include("quality.urls")),
    path("", include("marketplace.listings.urls")),
    path("", include("marketplace.notifications.urls")),
    path("", include("workers.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # A local signed link issued under an entitlement dies with it (revocation, refund).
    path("files/<str:token>", functools.partial(files.signed_download, grant_live=download_grant_live), name="signed-download"),
    # The admin's sign-in draws on the API login's rate and back-off (accounts/login_guard.py).
    path("admin/login/", guarded_admin_login(admin.site.login), name="admin-login-guarded"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]
