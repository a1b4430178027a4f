"""Deciding when a dataset is retrained, and cleaning up after workers that died."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotation.models import Dataset, Triplet
from training.models import LoopSettings, TrainingRun
from training.services.runs import published_model_version, training_run_request

logger = logging.getLogger(__name__)

# A queued run whose Celery message was lost (broker restart) is sent again after this long.
REQUEUE_AFTER = timedelta(minutes=10)
# After a failed run, automatic retraining waits this long, so a broken setting cannot keep
# the gpu queue busy with one failing run per beat.
RETRY_AFTER_FAILURE = timedelta(minutes=15)


def loop_settings_for(*, dataset: Dataset) -> LoopSettings:
    loop_settings, _ = LoopSettings.objects.get_or_create(dataset=dataset)
    return loop_settings


def triplets_since_published(*, dataset: Dataset) -> int:
    """Count the dataset's triplets stored after the published model's training began."""
    total = Triplet.objects.filter(dataset=dataset).count()
    version = published_model_version(dataset=dataset)
    return total - (version.triplet_count if version else 0)


def dataset_check_retraining(*, dataset: Dataset) -> TrainingRun | None:
    """Queue a run when enough new triplets arrived; return the run queued, if any."""
    loop_settings = loop_settings_for(dataset=dataset)
    active = TrainingRun.objects.filter(dataset=dataset, status__in=["queued", "running"]).first()
    if active is not None:
        _requeue_if_lost(active)
        return None
    if not loop_settings.enabled:
        return None

    new_triplets = triplets_since_published(dataset=dataset)
    if new_triplets < loop_settings.retrain_after_triplets:
        return None
    if failed_recently(dataset):
        return None

    run, created = training_run_request(
        dataset=dataset,
        variant=loop_settings.variant,
        settings=loop_settings.training_settings,
        reason=f"{new_triplets} new triplets (threshold {loop_settings.retrain_after_triplets})",
    )
    return run if created else None


# Runs whose retry wait was already logged, so beat logs it once, not every few seconds.
_reported_failures: set[int] = set()


def failed_recently(dataset: Dataset) -> bool:
    """Return whether the latest run failed less than RETRY_AFTER_FAILURE ago; log the wait once per run."""
    latest = TrainingRun.objects.filter(dataset=dataset).order_by("-created_at").first()
    if latest is None or latest.status != TrainingRun.Status.FAILED or latest.finished_at is None:
        return False
    if timezone.now() - latest.finished_at >= RETRY_AFTER_FAILURE:
        return False
    if latest.pk in _reported_failures:
        return True
    _reported_failures.add(latest.pk)
    logger.warning(
        "dataset %s: run %s failed at %s; automatic retraining waits until %s (request a run to retry now)",
        dataset.slug, latest.pk, latest.finished_at, latest.finished_at + RETRY_AFTER_FAILURE,
    )
    return True


def _requeue_if_lost(run: TrainingRun) -> None:
    if run.status != TrainingRun.Status.QUEUED or timezone.now() - run.created_at < REQUEUE_AFTER:
        return
    from training.tasks import train_run

    logger.warning("run %s of dataset %s waited %s in the queue; sending it again", run.pk, run.dataset.slug, REQUEUE_AFTER)
    train_run.apply_async(args=[run.pk], queue="gpu")


def runs_fail_stale(*, now=None) -> list[int]:
    """Mark running runs without a recent heartbeat as failed: their worker died mid-run."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CSN_RUN_HEARTBEAT_TIMEOUT)
    stale = TrainingRun.objects.filter(status=TrainingRun.Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = []
    for run in stale.select_related("dataset"):
        last_sign = run.heartbeat_at or run.started_at
        marked = TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING, heartbeat_at=run.heartbeat_at).update(
            status=TrainingRun.Status.FAILED,
            error=f"no heartbeat since {last_sign:%Y-%m-%d %H:%M:%S} UTC: the worker stopped mid-run",
            finished_at=now,
        )
        if marked:
            logger.error("run %s of dataset %s: worker stopped mid-run; marked failed", run.pk, run.dataset.slug)
            failed.append(run.pk)
    return failed
