"""REST API routes, mounted under /api/v1/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation.api.datasets import DatasetDetailApi, DatasetListApi, TripletExportApi
from annotation.api.images import ItemImageApi
from annotation.api.tasks import JudgementMineApi, TaskAnswerApi, TaskNextApi

urlpatterns = [
    path("tasks/next/", TaskNextApi.as_view(), name="api-task-next"),
    path("tasks/<int:task_id>/answer/", TaskAnswerApi.as_view(), name="api-task-answer"),
    path("judgements/mine/", JudgementMineApi.as_view(), name="api-judgements-mine"),
    path(
        "items/<int:item_id>/image/<str:content_hash>/",
        ItemImageApi.as_view(),
        name="api-item-image",
    ),
    path("datasets/", DatasetListApi.as_view(), name="api-dataset-list"),
    path("datasets/<slug:slug>/", DatasetDetailApi.as_view(), name="api-dataset-detail"),
    path(
        "datasets/<slug:slug>/triplets/export/",
        TripletExportApi.as_view(),
        name="api-triplet-export",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
