from django.urls import path

from datasets import apis

urlpatterns = [
    path("vocabularies/", apis.VocabularyListApi.as_view(), name="vocabulary-list"),
    path("datasets/", apis.DatasetListApi.as_view(), name="datasets"),
    path("datasets/<slug:slug>/", apis.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<slug:slug>/versions/", apis.DatasetVersionsApi.as_view(), name="dataset-versions"),
    path("versions/<int:version_id>/", apis.VersionDetailApi.as_view(), name="version-detail"),
    path("versions/<int:version_id>/submit/", apis.VersionSubmitApi.as_view(), name="version-submit"),
    path("versions/<int:version_id>/uploads/", apis.UploadStartApi.as_view(), name="version-uploads"),
    path("uploads/<uuid:upload_id>/", apis.UploadDetailApi.as_view(), name="upload-detail"),
    path("uploads/<uuid:upload_id>/parts/<int:n>/", apis.UploadPartApi.as_view(), name="upload-part"),
    path("uploads/<uuid:upload_id>/complete/", apis.UploadCompleteApi.as_view(), name="upload-complete"),
    path("uploads/<uuid:upload_id>/abort/", apis.UploadAbortApi.as_view(), name="upload-abort"),
    path("audit/samples/", apis.AuditSamplesApi.as_view(), name="audit-samples"),
    path("versions/<int:version_id>/audit/sample/", apis.AuditSampleApi.as_view(), name="audit-sample"),
    path("versions/<int:version_id>/audit/reference/", apis.AuditReferenceApi.as_view(), name="audit-reference"),
]
