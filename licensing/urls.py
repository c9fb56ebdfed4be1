from django.urls import path

from licensing import apis

urlpatterns = [
    path("licenses/", apis.LicenseListApi.as_view(), name="license-list"),
    path("dataset-cards/check/", apis.DatasetCardCheckApi.as_view(), name="dataset-card-check"),
    path("versions/<int:version_id>/effective-terms/", apis.EffectiveTermsApi.as_view(), name="version-effective-terms"),
    path("versions/<int:version_id>/provenance/", apis.ProvenanceApi.as_view(), name="version-provenance"),
    path("versions/<int:version_id>/provenance/summary/", apis.ProvenanceSummaryApi.as_view(), name="version-provenance-summary"),
    path("versions/<int:version_id>/checks/", apis.ChecksApi.as_view(), name="version-checks"),
    path("versions/<int:version_id>/consent-revocations/", apis.ConsentRevocationsApi.as_view(), name="version-consent-revocations"),
    path("moderation/queue/", apis.ModerationQueueApi.as_view(), name="moderation-queue"),
    path("moderation/versions/<int:version_id>/", apis.ModerationDetailApi.as_view(), name="moderation-version"),
    path("moderation/versions/<int:version_id>/fields/", apis.ModerationFieldsApi.as_view(), name="moderation-fields"),
    path("moderation/versions/<int:version_id>/decision/", apis.ModerationDecisionApi.as_view(), name="moderation-decision"),
    path("moderation/versions/<int:version_id>/suspend/", apis.ModerationSuspendApi.as_view(), name="moderation-suspend"),
    path("moderation/versions/<int:version_id>/reinstate/", apis.ModerationReinstateApi.as_view(), name="moderation-reinstate"),
    path("listings/<slug:slug>/croissant.json", apis.ListingCroissantApi.as_view(), name="listing-croissant"),
]
