"""Page routes: the annotator page and the crowd-worker entry link."""

urlpatterns: list = []
