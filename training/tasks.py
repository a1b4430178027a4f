"""Celery tasks of the active-learning loop: thin wrappers around the training services."""

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from annotation.models import Dataset

logger = logging.getLogger(__name__)


@shared_task(
    name="training.tasks.train_run",
    acks_late=True,
    soft_time_limit=settings.CSN_TRAIN_SOFT_TIME_LIMIT,
    time_limit=settings.CSN_TRAIN_SOFT_TIME_LIMIT + 120,
)
def train_run(run_id: int) -> int | None:
    """Train a queued run, publish its model and start a selection round; return the version id."""
    from training.services.execute import training_run_execute
    from training.services.runs import training_run_fail
    from training.models import TrainingRun

    logger.info("worker starts run %s", run_id)
    try:
        version = training_run_execute(run_id=run_id)
    except SoftTimeLimitExceeded:
        run = TrainingRun.objects.select_related("dataset").get(pk=run_id)
        training_run_fail(run=run, error=f"timed out after {settings.CSN_TRAIN_SOFT_TIME_LIMIT} s")
        return None
    except Exception:
        # The service recorded the failure on the run; the published model keeps serving.
        logger.exception("run %s failed", run_id)
        return None

    if version is None:
        return None
    selection_after_publish.delay(version.pk)
    return version.pk


@shared_task(name="training.tasks.selection_after_publish", acks_late=True, time_limit=1800)
def selection_after_publish(model_version_id: int) -> list[int]:
    """Run a selection round for every active condition of the version's dataset."""
    from training.services.selection import selection_rounds_for_version

    rounds = selection_rounds_for_version(model_version_id=model_version_id)
    return [selection_round.pk for selection_round in rounds]


@shared_task(name="training.tasks.check_retraining", time_limit=300)
def check_retraining() -> list[int]:
    """Beat task: fail runs whose worker died, then queue runs for datasets that need one."""
    from training.services.loop import dataset_check_retraining, runs_fail_stale

    runs_fail_stale()
    queued = []
    for dataset in Dataset.objects.all():
        run = dataset_check_retraining(dataset=dataset)
        if run is not None:
            queued.append(run.pk)
    return queued
