"""Requesting, claiming, finishing and publishing training runs."""

import logging
import traceback

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from annotation.models import Dataset
from training.models import ModelVersion, TrainingRun

logger = logging.getLogger(__name__)

class RunNotRunning(RuntimeError):
    pass


ACTIVE_STATUSES = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING)


def training_run_request(
    *,
    dataset: Dataset,
    variant: str = TrainingRun.Variant.LEARNED,
    settings: dict | None = None,
    requested_by: AbstractBaseUser | None = None,
    reason: str = "",
    enqueue: bool = True,
) -> tuple[TrainingRun, bool]:
    """Queue a run of the dataset, or join the run already queued or running.

    Returns the run and whether it was created. One run at a time per dataset is enforced
    by a partial unique index, so two racing requests end up sharing one run. With
    `enqueue`, the Celery task is sent once the transaction commits.
    """
    if variant not in TrainingRun.Variant.values:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(TrainingRun.Variant.values)}")

    active = TrainingRun.objects.filter(dataset=dataset, status__in=ACTIVE_STATUSES).first()
    if active is not None:
        logger.info("run %s of dataset %s is already %s; request joins it", active.pk, dataset.slug, active.status)
        return active, False

    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                dataset=dataset, variant=variant, settings=settings or {},
                requested_by=requested_by, reason=reason,
            )
            if enqueue:
                transaction.on_commit(lambda: _enqueue(run))
    except IntegrityError:
        active = TrainingRun.objects.get(dataset=dataset, status__in=ACTIVE_STATUSES)
        logger.info("run %s of dataset %s was queued concurrently; request joins it", active.pk, dataset.slug)
        return active, False

    logger.info("queued run %s of dataset %s (%s): %s", run.pk, dataset.slug, variant, reason or "no reason given")
    return run, True


def _enqueue(run: TrainingRun) -> None:
    """Send the run to the gpu queue; a broker failure leaves it queued for beat to resend."""
    from training.tasks import train_run

    try:
        result = train_run.apply_async(args=[run.pk], queue="gpu")
    except Exception:
        logger.exception("could not send run %s of dataset %s to the broker; beat sends it again later", run.pk, run.dataset.slug)
        return
    TrainingRun.objects.filter(pk=run.pk, celery_task_id="").update(celery_task_id=result.id or "")


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Mark a queued run as running; return None when it is not queued (already taken or done)."""
    now = timezone.now()
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    return TrainingRun.objects.select_related("dataset").get(pk=run_id)


def training_run_heartbeat(*, run: TrainingRun, metrics: dict | None = None) -> None:
    """Record that the run is alive, with its latest metrics."""
    fields = {"heartbeat_at": timezone.now()}
    if metrics is not None:
        fields["metrics"] = metrics
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(**fields)


def training_run_fail(*, run: TrainingRun, error: BaseException | str) -> None:
    """Mark the run failed with its error; the published model version stays as it is."""
    if isinstance(error, BaseException):
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
    else:
        text = error
    TrainingRun.objects.filter(pk=run.pk).update(
        status=TrainingRun.Status.FAILED, error=text[:10_000], finished_at=timezone.now()
    )
    logger.error("run %s of dataset %s failed: %s", run.pk, run.dataset.slug, text)


def training_run_succeed(
    *, run: TrainingRun, metrics: dict, checkpoint_path: str, triplet_count: int, publish: bool = True
) -> ModelVersion:
    """Record the run's success and create its model version, published atomically."""
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=run.dataset_id)
        status = TrainingRun.objects.select_for_update().values_list("status", flat=True).get(pk=run.pk)
        if status != TrainingRun.Status.RUNNING:
            raise RunNotRunning(f"run {run.pk} is {status}, not running; its model is not published")
        number = (ModelVersion.objects.filter(dataset_id=run.dataset_id).aggregate(top=Max("number"))["top"] or 0) + 1
        version = ModelVersion.objects.create(
            dataset_id=run.dataset_id, number=number, run=run, checkpoint_path=checkpoint_path,
            metrics=metrics, triplet_count=triplet_count,
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.SUCCEEDED, metrics=metrics, checkpoint_path=checkpoint_path,
            finished_at=timezone.now(), error="",
        )
        if publish:
            model_version_publish(version=version)

    logger.info("run %s of dataset %s succeeded as version %s", run.pk, run.dataset.slug, number)
    return version


def model_version_publish(*, version: ModelVersion) -> None:
    """Make `version` the dataset's published model; the swap is one transaction."""
    with transaction.atomic():
        ModelVersion.objects.filter(dataset_id=version.dataset_id, is_published=True).exclude(pk=version.pk).update(
            is_published=False
        )
        ModelVersion.objects.filter(pk=version.pk).update(is_published=True, published_at=timezone.now())
    version.refresh_from_db()
    logger.info("published %s", version)


def published_model_version(*, dataset: Dataset) -> ModelVersion | None:
    return ModelVersion.objects.filter(dataset=dataset, is_published=True).select_related("run").first()
