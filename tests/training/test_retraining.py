"""dataset_check_retraining: a run is queued once enough triplets arrived since the published model."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from training.models import LoopSettings, ModelVersion, TrainingRun
from training.services.loop import (
    REQUEUE_AFTER,
    RETRY_AFTER_FAILURE,
    dataset_check_retraining,
    triplets_since_published,
)


def add_triplets(dataset, count: int) -> None:
    from annotation.models import Triplet

    condition = dataset.conditions.first()
    item_ids = list(dataset.items.values_list("id", flat=True))
    rows = itertools.islice(itertools.cycle(itertools.permutations(item_ids, 3)), count)
    Triplet.objects.bulk_create(
        Triplet(dataset=dataset, condition=condition, anchor_id=a, closer_id=b, farther_id=c, source="import")
        for a, b, c in rows
    )


def publish_version(dataset, *, triplet_count: int) -> ModelVersion:
    run = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.SUCCEEDED)
    return ModelVersion.objects.create(
        dataset=dataset, number=1, run=run, checkpoint_path="/nonexistent.pt",
        triplet_count=triplet_count, is_published=True,
    )


@pytest.fixture
def dataset(make_dataset):
    dataset = make_dataset(n_items=6)
    LoopSettings.objects.create(
        dataset=dataset, retrain_after_triplets=10, variant="fixed", training_settings={"epochs": 1}
    )
    return dataset


def test_too_few_triplets_queue_nothing(dataset):
    add_triplets(dataset, 9)

    run = dataset_check_retraining(dataset=dataset)

    assert run is None
    assert not TrainingRun.objects.filter(dataset=dataset).exists()


def test_enough_triplets_queue_a_run(dataset, django_capture_on_commit_callbacks, sent_runs):
    add_triplets(dataset, 10)

    with django_capture_on_commit_callbacks(execute=True):
        run = dataset_check_retraining(dataset=dataset)

    assert run is not None
    assert run.status == TrainingRun.Status.QUEUED
    assert run.variant == "fixed"
    assert run.settings == {"epochs": 1}
    assert run.reason == "10 new triplets (threshold 10)"
    assert sent_runs == [([run.pk], "gpu")]
    run.refresh_from_db()
    assert run.celery_task_id == "celery-task-1"


def test_count_starts_at_the_published_model(dataset):
    add_triplets(dataset, 25)
    publish_version(dataset, triplet_count=20)

    assert triplets_since_published(dataset=dataset) == 5
    assert dataset_check_retraining(dataset=dataset) is None


def test_triplets_after_published_model_queue_run(dataset):
    add_triplets(dataset, 30)
    publish_version(dataset, triplet_count=20)

    run = dataset_check_retraining(dataset=dataset)

    assert run is not None
    assert run.reason == "10 new triplets (threshold 10)"


def test_active_run_is_joined_not_duplicated(dataset):
    add_triplets(dataset, 50)
    active = TrainingRun.objects.create(dataset=dataset, status=TrainingRun.Status.RUNNING)

    run = dataset_check_retraining(dataset=dataset)

    assert run is None
    assert list(TrainingRun.objects.filter(dataset=dataset)) == [active]


def test_disabled_loop_queues_nothing(dataset):
    LoopSettings.objects.filter(dataset=dataset).update(enabled=False)
    add_triplets(dataset, 50)

    assert dataset_check_retraining(dataset=dataset) is None


def test_lost_queued_run_is_sent_again(dataset, sent_runs):
    old = TrainingRun.objects.create(dataset=dataset)
    TrainingRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - REQUEUE_AFTER - timedelta(minutes=1))

    dataset_check_retraining(dataset=dataset)

    assert sent_runs == [([old.pk], "gpu")]


def test_recent_queued_run_is_not_sent_again(dataset, sent_runs):
    TrainingRun.objects.create(dataset=dataset)

    dataset_check_retraining(dataset=dataset)

    assert sent_runs == []


def test_loop_settings_are_created_with_defaults(make_dataset):
    dataset = make_dataset(slug="fresh")

    dataset_check_retraining(dataset=dataset)

    assert LoopSettings.objects.get(dataset=dataset).retrain_after_triplets == 200


def test_recent_failure_delays_automatic_retraining(dataset):
    add_triplets(dataset, 12)
    TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.FAILED, error="boom", finished_at=timezone.now()
    )

    assert dataset_check_retraining(dataset=dataset) is None
    assert TrainingRun.objects.filter(dataset=dataset).count() == 1


def test_old_failure_allows_automatic_retraining(dataset, django_capture_on_commit_callbacks, sent_runs):
    add_triplets(dataset, 12)
    TrainingRun.objects.create(
        dataset=dataset, status=TrainingRun.Status.FAILED, error="boom",
        finished_at=timezone.now() - RETRY_AFTER_FAILURE - timedelta(seconds=1),
    )

    with django_capture_on_commit_callbacks(execute=True):
        run = dataset_check_retraining(dataset=dataset)

    assert run is not None
    assert run.status == TrainingRun.Status.QUEUED
