from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/v1/", include("training.urls")),
    path("api/v1/", include("annotation.api.urls")),
    path("", include("annotation.urls")),
]
