from django.urls import path

from quality import apis

urlpatterns = [
    path("versions/<int:version_id>/quality/", apis.ReportListApi.as_view(), name="quality-report-list"),
    path("versions/<int:version_id>/quality/<str:kind>/", apis.ReportDetailApi.as_view(), name="quality-report-detail"),
    path("versions/<int:version_id>/quality/<str:kind>/plots/<str:name>/", apis.ReportPlotApi.as_view(), name="quality-report-plot"),
    path("listings/<slug:slug>/evaluation-split/", apis.EvaluationSplitApi.as_view(), name="listing-evaluation-split"),
    path("listings/<slug:slug>/evaluations/", apis.EvaluationCreateApi.as_view(), name="listing-evaluation-create"),
    path("evaluations/<int:evaluation_id>/", apis.EvaluationDetailApi.as_view(), name="evaluation-detail"),
]
