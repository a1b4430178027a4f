"""Page routes: the landing page, the annotator page and the crowd-worker entry link.

The crowd entry link is the annotator page with the platform's id parameter, for example
/annotate/shoes/?PROLIFIC_PID=... or /annotate/shoes/?workerId=...&assignmentId=...
"""

from django.urls import path

from annotation import views

app_name = "annotation"

urlpatterns = [
    path("", views.home, name="home"),
    path("annotate/<slug:dataset_slug>/", views.annotate, name="annotate"),
]
