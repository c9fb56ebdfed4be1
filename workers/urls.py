from django.urls import path

from workers import apis

urlpatterns = [
    path("versions/<int:version_id>/jobs/", apis.VersionJobListApi.as_view(), name="version-jobs"),
    path("versions/<int:version_id>/jobs/<str:step>/rerun/", apis.JobRerunApi.as_view(), name="version-job-rerun"),
]
