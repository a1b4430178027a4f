"""REST API routes of the training loop, mounted under /api/v1/."""

from django.urls import path

from training.api import ModelVersionListApi, TrainingRunListApi

urlpatterns = [
    path("datasets/<slug:slug>/training-runs/", TrainingRunListApi.as_view(), name="api-training-runs"),
    path("datasets/<slug:slug>/model-versions/", ModelVersionListApi.as_view(), name="api-model-versions"),
]
