"""The Celery application: Redis as the broker, settings read from Django's CELERY_* names."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("csn_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("default"), Queue("gpu"))
app.conf.task_routes = {"training.tasks.train_run": {"queue": "gpu"}}
app.autodiscover_tasks()
